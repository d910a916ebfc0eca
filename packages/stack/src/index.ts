/** @georep/stack: the local multi-site stack (`make up`), its description and its teardown. */
export { startStack, stopStack, readStack, stackFile, stackProcesses, PRIMARY_SITE, DEFAULT_SECONDARIES, MAX_SECONDARIES, MAX_REPLICAS, TOKEN_ISSUER } from "./stack.js";
export type { StackDescription, StackSite, StackOptions, StackControl, SiteRole } from "./stack.js";
