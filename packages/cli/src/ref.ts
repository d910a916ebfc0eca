/**
 * Repository names and `REPO[:TAG|@DIGEST]` references as the CLI takes
 * them: a repository path of the site's registry (no registry host), as in
 * the OCI distribution spec's `<name>` and `<reference>` grammar. Pure, no I/O.
 */
import { UsageError } from "./errors.js";

/** Longest repository name the registries accept. */
export const NAME_MAX_LENGTH = 255;
/** Longest tag. */
export const TAG_MAX_LENGTH = 128;
/** What `wait REPO` waits for when neither tag nor digest is given (as `docker pull`). */
export const DEFAULT_TAG = "latest";

/** A `wait` target: a repository and exactly one of tag or digest. */
export type WaitReference = { readonly repository: string; readonly tag: string } | { readonly repository: string; readonly digest: string };

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^\w[\w.-]*$/;
const DIGEST = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/;
/** Hex lengths of the digest algorithms the registries know. */
const HEX_LENGTH: Readonly<Record<string, number>> = { sha256: 64, sha512: 128 };

const REFERENCE_HINT = "expected REPO[:TAG|@DIGEST], e.g. team/app:v1 or team/app@sha256:<64 hex digits>";
const NAME_HINT = "repository names are lowercase path components such as team/app";

/** What is wrong with a repository name, or `undefined`. */
export function repositoryProblem(name: string): string | undefined {
  if (name === "") return "the repository name is empty";
  if (name.length > NAME_MAX_LENGTH) return `the repository name is ${name.length} characters long; the limit is ${NAME_MAX_LENGTH}`;
  if (/[A-Z]/.test(name)) return `repository name "${name}" must be lowercase`;
  for (const component of name.split("/")) {
    if (component === "") return `repository name "${name}" has an empty path component (leading, trailing or doubled "/")`;
    if (COMPONENT.test(component)) continue;
    if (component.includes(":")) return `repository name "${name}" contains ":" (a registry host or port?)`;
    const bad = /[^a-z0-9._-]/.exec(component);
    if (bad) return `repository name "${name}" contains the invalid character ${JSON.stringify(bad[0])}`;
    return `path component "${component}" of "${name}" must start and end with a letter or digit, with single ".", "_", "__" or "-" runs between`;
  }
  return undefined;
}

/** What is wrong with a tag, or `undefined`. */
export function tagProblem(tag: string): string | undefined {
  if (tag === "") return "the tag is empty";
  if (tag.length > TAG_MAX_LENGTH) return `the tag is ${tag.length} characters long; the limit is ${TAG_MAX_LENGTH}`;
  if (TAG.test(tag)) return undefined;
  const bad = /[^\w.-]/.exec(tag);
  return bad ? `tag "${tag}" contains the invalid character ${JSON.stringify(bad[0])}` : `tag "${tag}" must start with a letter, digit or "_"`;
}

/** What is wrong with a digest, or `undefined`. */
export function digestProblem(digest: string): string | undefined {
  const match = DIGEST.exec(digest);
  if (!match) return `digest "${digest}" is not ALGORITHM:HEX`;
  const [, algorithm = "", hex = ""] = match;
  const length = HEX_LENGTH[algorithm];
  if (length === undefined) return `digest algorithm "${algorithm}" is not supported (sha256 or sha512)`;
  if (hex.length !== length || !/^[a-f0-9]+$/.test(hex)) return `a ${algorithm} digest has ${length} lowercase hex digits, got "${hex}"`;
  return undefined;
}

/**
 * Checks a repository name given on the command line.
 * @throws UsageError naming the problem.
 */
export function parseRepositoryName(name: string): string {
  const problem = repositoryProblem(name);
  if (problem !== undefined) throw new UsageError(`bad repository name: ${problem}`, { hint: NAME_HINT });
  return name;
}

/**
 * Parses `REPO[:TAG|@DIGEST]`; a bare `REPO` means tag {@link DEFAULT_TAG}.
 * The tag separator is the last `:` after the last `/`, so `a:b/c` is a bad
 * repository name (a registry host), not a tag.
 * @throws UsageError naming the problem: bad name, tag or digest, both tag and digest.
 */
export function parseWaitReference(input: string): WaitReference {
  const fail = (problem: string): never => {
    throw new UsageError(`bad reference "${input}": ${problem}`, { hint: REFERENCE_HINT });
  };
  if (input === "") fail("it is empty");
  const at = input.indexOf("@");
  const named = at === -1 ? input : input.slice(0, at);
  const digest = at === -1 ? undefined : input.slice(at + 1);
  const colon = named.lastIndexOf(":");
  const hasTag = colon > named.lastIndexOf("/");
  const repository = hasTag ? named.slice(0, colon) : named;
  const tag = hasTag ? named.slice(colon + 1) : undefined;

  const nameProblem = repositoryProblem(repository);
  if (nameProblem !== undefined) fail(nameProblem);
  if (digest !== undefined) {
    if (tag !== undefined) fail("give a tag or a digest, not both");
    const problem = digestProblem(digest);
    if (problem !== undefined) fail(problem);
    return { repository, digest: digest };
  }
  if (tag !== undefined) {
    const problem = tagProblem(tag);
    if (problem !== undefined) fail(problem);
  }
  return { repository, tag: tag ?? DEFAULT_TAG };
}

/** `repo:tag` or `repo@digest`. */
export function formatWaitReference(reference: WaitReference): string {
  return "digest" in reference ? `${reference.repository}@${reference.digest}` : `${reference.repository}:${reference.tag}`;
}
