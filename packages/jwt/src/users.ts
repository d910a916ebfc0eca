/**
 * The users of a site's token endpoint: a JSON file of bcrypt password hashes
 * and access rules, parsed once and checked against its schema.
 *
 * ```json
 * { "users": [ { "username": "ci", "password_hash": "$2b$10$…",
 *                "access": [ { "repositories": "team/*", "actions": ["pull", "push"] },
 *                            { "catalog": true } ] } ] }
 * ```
 * In `repositories`, `*` matches within one path component, `**` across
 * components (`team/**` is every repository under `team/`), `?` one character.
 */
import { readFile } from "node:fs/promises";
import { Type } from "@sinclair/typebox";
import type { Static } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import bcrypt from "bcryptjs";
import { UsersFileError } from "./errors.js";
import type { ResourceAccess } from "./scope.js";
import { ACTIONS, normalizeAccess } from "./scope.js";

/** bcrypt cost of {@link hashPassword}: bcryptjs is pure JS and every token request verifies one hash. */
export const DEFAULT_BCRYPT_ROUNDS = 10;

const BCRYPT_HASH_PATTERN = "^\\$2[abxy]\\$\\d{2}\\$[./A-Za-z0-9]{53}$";

/** Schema of one access rule: repositories by glob with actions, or the catalog. */
export const UserAccessRuleSchema = Type.Union([
  Type.Object(
    {
      repositories: Type.String({ minLength: 1, description: "glob: * within a component, ** across, ? one character" }),
      actions: Type.Array(Type.String({ pattern: "^(?:[a-z]+|\\*)$" }), { minItems: 1 }),
    },
    { additionalProperties: false },
  ),
  Type.Object({ catalog: Type.Literal(true) }, { additionalProperties: false }),
]);

/** One access rule of a user. */
export type UserAccessRule = Static<typeof UserAccessRuleSchema>;

/** Schema of one user. */
export const UserSchema = Type.Object(
  {
    username: Type.String({ minLength: 1, pattern: "^[^:]+$" }),
    password_hash: Type.String({ pattern: BCRYPT_HASH_PATTERN }),
    access: Type.Array(UserAccessRuleSchema),
  },
  { additionalProperties: false },
);

/** One user of the token endpoint. */
export type User = Static<typeof UserSchema>;

/** Schema of the users file. */
export const UsersFileSchema = Type.Object({ users: Type.Array(UserSchema) }, { additionalProperties: false });

/** Contents of a users file. */
export type UsersFile = Static<typeof UsersFileSchema>;

/**
 * Checks parsed users-file data against the schema and for duplicate names.
 * @throws {UsersFileError} listing every problem.
 */
export function parseUsersFile(data: unknown, path?: string): UsersFile {
  const where = path === undefined ? {} : { path };
  if (!Value.Check(UsersFileSchema, data)) {
    const problems = [...Value.Errors(UsersFileSchema, data)].slice(0, 10).map((e) => `${e.path === "" ? "(root)" : e.path}: ${e.message}`);
    throw new UsersFileError(`does not match the schema: ${problems.join("; ")}`, where);
  }
  const seen = new Set<string>();
  for (const user of data.users) {
    if (seen.has(user.username)) throw new UsersFileError(`user ${JSON.stringify(user.username)} is listed twice`, where);
    seen.add(user.username);
  }
  return data;
}

/**
 * Reads and checks a users file (JSON).
 * @throws {UsersFileError} when it is missing, unreadable, not JSON or not valid.
 */
export async function loadUsersFile(path: string): Promise<UsersFile> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (cause) {
    throw new UsersFileError(`cannot read: ${cause instanceof Error ? cause.message : String(cause)}`, { path, cause });
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (cause) {
    throw new UsersFileError(`not valid JSON: ${cause instanceof Error ? cause.message : String(cause)}`, { path, cause });
  }
  return parseUsersFile(data, path);
}

/** bcrypt hash of a password, for the users file's `password_hash`. */
export async function hashPassword(password: string, options: { rounds?: number } = {}): Promise<string> {
  return bcrypt.hash(password, options.rounds ?? DEFAULT_BCRYPT_ROUNDS);
}

/** Compiles a repository glob to a regular expression. */
export function globToRegExp(glob: string): RegExp {
  let pattern = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] ?? "";
    if (c === "*" && glob[i + 1] === "*") {
      pattern += ".*";
      i++;
    } else if (c === "*") pattern += "[^/]*";
    else if (c === "?") pattern += "[^/]";
    else pattern += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${pattern}$`);
}

type CompiledRule = { readonly kind: "catalog" } | { readonly kind: "repositories"; readonly match: RegExp; readonly actions: ReadonlySet<string> };

/** Users compiled for fast checks. */
export interface UserDirectory {
  /** The user with these credentials, or `undefined` (unknown user or wrong password, indistinguishably). */
  authenticate(username: string, password: string): Promise<User | undefined>;
  /** The subset of `requested` that `user` may have; scopes the user has no rule for grant nothing. */
  authorize(user: User, requested: readonly ResourceAccess[]): ResourceAccess[];
}

/** Compiles users-file data into a {@link UserDirectory}. */
export function createUserDirectory(file: UsersFile): UserDirectory {
  const byName = new Map(file.users.map((u) => [u.username, u] as const));
  const rules = new Map(
    file.users.map((u) => [
      u,
      u.access.map((rule): CompiledRule =>
        "catalog" in rule ? { kind: "catalog" } : { kind: "repositories", match: globToRegExp(rule.repositories), actions: new Set(rule.actions) },
      ),
    ]),
  );
  // Compared against for unknown users so they take as long as known ones.
  let dummyHash: string | undefined;

  return {
    async authenticate(username, password) {
      const user = byName.get(username);
      if (user === undefined) {
        dummyHash ??= await bcrypt.hash("georep-dummy-password", DEFAULT_BCRYPT_ROUNDS);
        await bcrypt.compare(password, dummyHash);
        return undefined;
      }
      return (await bcrypt.compare(password, user.password_hash)) ? user : undefined;
    },
    authorize(user, requested) {
      const userRules = rules.get(user) ?? [];
      const granted: ResourceAccess[] = [];
      for (const entry of requested) {
        if (entry.type === "registry" && entry.name === "catalog") {
          if (userRules.some((r) => r.kind === "catalog")) granted.push({ ...entry, actions: entry.actions.filter((a) => a === ACTIONS.all) });
          continue;
        }
        if (entry.type !== "repository") continue; // plugins and other resource types are never granted
        const allowed = new Set<string>();
        for (const rule of userRules) {
          if (rule.kind === "repositories" && rule.match.test(entry.name)) for (const action of rule.actions) allowed.add(action);
        }
        const actions = allowed.has(ACTIONS.all) ? entry.actions : entry.actions.filter((a) => allowed.has(a));
        granted.push({ ...entry, actions });
      }
      return normalizeAccess(granted);
    },
  };
}
