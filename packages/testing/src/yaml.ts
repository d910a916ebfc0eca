/**
 * The YAML renderer of the server configs lives in `@georep/deploy-templates`
 * (shared with the compose files); re-exported here for the kit's users.
 */
export { toYaml } from "@georep/deploy-templates";
export type { YamlValue } from "@georep/deploy-templates";
