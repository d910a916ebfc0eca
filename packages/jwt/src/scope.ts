/**
 * Docker token-auth scopes and `access` claims. Pure: no I/O.
 *
 * Grammar (docker/distribution docs/spec/auth/scope.md):
 * ```
 * scope        := resourcetype ":" resourcename ":" action [ "," action ]*
 * resourcetype := resourcetypevalue [ "(" resourcetypevalue ")" ]   e.g. repository(plugin)
 * resourcename := [ hostname "/" ] component [ "/" component ]*
 * action       := /[a-z]*\/   ("*" too, for registry:catalog:*)
 * ```
 * The type ends at the first `:` and the actions start after the last one,
 * so a name with a registry host and port (`host:5000/team/app`) survives.
 */
import { ScopeError } from "./errors.js";

/** One entry of a token's `access` claim: what may be done to which resource. */
export interface ResourceAccess {
  /** Resource type, e.g. `repository`, `repository(plugin)`, `registry`. */
  readonly type: string;
  /** Resource name, e.g. `team/app` or `catalog`. */
  readonly name: string;
  /** Granted or requested actions, e.g. `["pull", "push"]` or `["*"]`. */
  readonly actions: readonly string[];
}

/** Actions that Distribution checks on repositories, and the catalog wildcard. */
export const ACTIONS = {
  pull: "pull",
  push: "push",
  delete: "delete",
  all: "*",
} as const;

/** One of {@link ACTIONS}. */
export type Action = (typeof ACTIONS)[keyof typeof ACTIONS];

const TYPE_PATTERN = /^[a-z0-9]+(?:\([a-z0-9]+\))?$/;
const ACTION_PATTERN = /^(?:[a-z]+|\*)$/;
// OCI distribution-spec repository name: path components, optionally behind a registry host[:port].
const COMPONENT_PATTERN = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const HOST_PATTERN = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?$/;
const OTHER_NAME_PATTERN = /^[^\s:,]+$/;
/** Distribution refuses repository names longer than this. */
const MAX_NAME_LENGTH = 255;

function isRepositoryType(type: string): boolean {
  return type === "repository" || type.startsWith("repository(");
}

function checkRepositoryName(scope: string, name: string): void {
  if (name.length > MAX_NAME_LENGTH) throw new ScopeError(scope, `repository name longer than ${MAX_NAME_LENGTH} characters`);
  const components = name.split("/");
  const first = components[0] ?? "";
  // A first component with a dot, a port or "localhost" is a registry host (as in docker/reference).
  const hasHost = components.length > 1 && (first.includes(".") || first.includes(":") || first === "localhost");
  const path = hasHost ? components.slice(1) : components;
  if (hasHost && !HOST_PATTERN.test(first)) throw new ScopeError(scope, `invalid registry host ${JSON.stringify(first)}`);
  for (const component of path) {
    if (component === "") throw new ScopeError(scope, "empty path component in repository name");
    if (!COMPONENT_PATTERN.test(component)) {
      throw new ScopeError(
        scope,
        `invalid repository path component ${JSON.stringify(component)} (lowercase letters, digits and single . _ __ or - separators)`,
      );
    }
  }
}

/**
 * Parses one Docker scope string. Duplicate actions are dropped; order is kept.
 * @throws {ScopeError} with the offending scope when the string is malformed.
 */
export function parseScope(scope: string): ResourceAccess {
  const first = scope.indexOf(":");
  const last = scope.lastIndexOf(":");
  if (first <= 0 || last === first) {
    throw new ScopeError(scope, "expected type:name:actions, e.g. repository:team/app:pull");
  }
  const type = scope.slice(0, first);
  const name = scope.slice(first + 1, last);
  const actionList = scope.slice(last + 1);
  if (!TYPE_PATTERN.test(type)) throw new ScopeError(scope, `invalid resource type ${JSON.stringify(type)}`);
  if (name === "") throw new ScopeError(scope, "empty resource name");
  if (isRepositoryType(type)) checkRepositoryName(scope, name);
  else if (!OTHER_NAME_PATTERN.test(name.replaceAll(":", "_"))) {
    throw new ScopeError(scope, `invalid resource name ${JSON.stringify(name)}`);
  }
  if (actionList === "") throw new ScopeError(scope, "no actions");
  const actions: string[] = [];
  for (const action of actionList.split(",")) {
    if (!ACTION_PATTERN.test(action)) throw new ScopeError(scope, `invalid action ${JSON.stringify(action)}`);
    if (!actions.includes(action)) actions.push(action);
  }
  return { type, name, actions };
}

/**
 * Parses every scope of a request. A `scope` value may itself hold several
 * scopes separated by spaces (RFC 6749 §3.3), which some clients send.
 * @throws {ScopeError} on the first malformed scope.
 */
export function parseScopes(scopes: readonly string[]): ResourceAccess[] {
  const out: ResourceAccess[] = [];
  for (const value of scopes) {
    for (const part of value.split(" ")) {
      if (part !== "") out.push(parseScope(part));
    }
  }
  return out;
}

/** Formats an access entry as a Docker scope string (`repository:team/app:pull,push`). */
export function formatScope(access: ResourceAccess): string {
  return `${access.type}:${access.name}:${access.actions.join(",")}`;
}

/** Pull on one repository. */
export function pullAccess(repository: string): ResourceAccess {
  return { type: "repository", name: repository, actions: [ACTIONS.pull] };
}

/** Pull and push on one repository (Distribution needs both for uploads). */
export function pushAccess(repository: string): ResourceAccess {
  return { type: "repository", name: repository, actions: [ACTIONS.pull, ACTIONS.push] };
}

/** The catalog (`registry:catalog:*`), needed for `GET /v2/_catalog`. */
export function catalogAccess(): ResourceAccess {
  return { type: "registry", name: "catalog", actions: [ACTIONS.all] };
}

/**
 * Merges entries for the same resource (union of actions) and drops entries
 * without actions, so a token's `access` claim lists each resource once.
 * Order follows first appearance; actions are sorted for stable tokens and cache keys.
 */
export function normalizeAccess(access: readonly ResourceAccess[]): ResourceAccess[] {
  const merged = new Map<string, { type: string; name: string; actions: Set<string> }>();
  for (const entry of access) {
    const key = `${entry.type}\u0000${entry.name}`;
    let slot = merged.get(key);
    if (slot === undefined) {
      slot = { type: entry.type, name: entry.name, actions: new Set() };
      merged.set(key, slot);
    }
    for (const action of entry.actions) slot.actions.add(action);
  }
  const out: ResourceAccess[] = [];
  for (const slot of merged.values()) {
    if (slot.actions.size > 0) out.push({ type: slot.type, name: slot.name, actions: [...slot.actions].sort() });
  }
  return out;
}
