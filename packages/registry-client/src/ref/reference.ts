/**
 * Image references `[host[:port]/]path[:tag][@digest]`, following the
 * grammar of github.com/distribution/reference (reference.go) and Docker's
 * normalisation (normalize.go) for names without a registry host.
 */
import { InvalidReferenceError } from "../errors.js";
import { digestProblem } from "./digest.js";

/** A parsed, normalised reference. */
export interface Reference {
  /** Registry host with optional port, e.g. `docker.io`, `localhost:5000`, `[::1]:5000`. */
  readonly registry: string;
  /** Repository path inside the registry, e.g. `library/alpine`. */
  readonly repository: string;
  readonly tag?: string;
  /** When both tag and digest are given, the digest is what is fetched; see {@link referenceTarget}. */
  readonly digest?: string;
}

/** Options of {@link parseReference}. */
export interface ParseReferenceOptions {
  /**
   * Registry for references without a host. Defaults to
   * {@link DOCKER_HUB_REGISTRY}; the `library/` prefix of single-component
   * names is applied only when the registry is Docker Hub.
   */
  readonly defaultRegistry?: string;
}

/** Docker Hub's canonical registry name. */
export const DOCKER_HUB_REGISTRY = "docker.io";

/** The tag a reference without tag or digest points at. */
export const DEFAULT_TAG = "latest";

/** Longest `registry/repository` accepted (distribution/reference `NameTotalLengthMax`). */
export const NAME_TOTAL_LENGTH_MAX = 255;

/** Longest tag accepted. */
export const TAG_MAX_LENGTH = 128;

// Path component: alpha-numeric runs joined by ".", "_", "__" or one or more "-".
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
// Host: DNS-ish components (no leading/trailing "-") or a bracketed IPv6 address, optional port.
// Written without nested optional repeats so it cannot backtrack badly.
const DOMAIN = /^(?:[a-zA-Z0-9]+(?:-+[a-zA-Z0-9]+)*(?:\.[a-zA-Z0-9]+(?:-+[a-zA-Z0-9]+)*)*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$/;
const TAG = /^\w[\w.-]*$/;
// Docker refuses names that look like an image ID, to avoid confusing the two.
const IMAGE_ID = /^[a-f0-9]{64}$/;

/** What is wrong with a repository path, or `undefined` when it is valid. */
function repositoryProblem(name: string): string | undefined {
  if (name === "") return "repository name is empty";
  if (name.length > NAME_TOTAL_LENGTH_MAX) {
    return `repository name is ${name.length} characters long; the limit is ${NAME_TOTAL_LENGTH_MAX}`;
  }
  if (/[A-Z]/.test(name)) return "repository name must be lowercase";
  for (const component of name.split("/")) {
    if (component === "") return 'repository name has an empty path component (leading, trailing or doubled "/")';
    if (PATH_COMPONENT.test(component)) continue;
    const shown = JSON.stringify(component);
    const bad = /[^a-z0-9._-]/.exec(component);
    if (bad) return `path component ${shown} contains invalid character ${JSON.stringify(bad[0])}`;
    if (component.includes("..")) return `path component ${shown} contains ".."`;
    if (!/^[a-z0-9]/.test(component) || !/[a-z0-9]$/.test(component)) {
      return `path component ${shown} must start and end with a lowercase letter or digit`;
    }
    return `path component ${shown} has an invalid separator (allowed between letters and digits: ".", "_", "__", "-")`;
  }
  return undefined;
}

/** What is wrong with a tag, or `undefined` when it is valid. */
function tagProblem(tag: string): string | undefined {
  if (tag === "") return "tag is empty";
  if (tag.length > TAG_MAX_LENGTH) return `tag is ${tag.length} characters long; the limit is ${TAG_MAX_LENGTH}`;
  if (TAG.test(tag)) return undefined;
  const bad = /[^\w.-]/.exec(tag);
  if (bad) return `tag ${JSON.stringify(tag)} contains invalid character ${JSON.stringify(bad[0])}`;
  return `tag ${JSON.stringify(tag)} must start with a letter, digit or "_"`;
}

/**
 * Checks a repository path (without registry host): lowercase path
 * components of `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*` separated by `/`, at
 * most 255 characters.
 * @throws InvalidReferenceError naming the problem.
 */
export function validateRepositoryName(name: string): void {
  const problem = repositoryProblem(name);
  if (problem !== undefined) throw new InvalidReferenceError(name, problem);
}

/**
 * Checks a tag: `[\w][\w.-]{0,127}`.
 * @throws InvalidReferenceError naming the problem.
 */
export function validateTag(tag: string): void {
  const problem = tagProblem(tag);
  if (problem !== undefined) throw new InvalidReferenceError(tag, problem);
}

/**
 * Parses `[host[:port]/]path[:tag][@digest]`.
 *
 * The first path component is a registry host when it contains `.` or `:`,
 * is `localhost`, or has upper-case letters (exactly Docker's rule, so a
 * string means the same registry here as in `docker pull`). Without a host
 * the registry is `defaultRegistry` (Docker Hub by default), and Docker Hub
 * names of one component get the `library/` prefix. `index.docker.io` is
 * normalised to `docker.io`. A reference with neither tag nor digest is
 * returned without one; {@link referenceTarget} supplies `latest`.
 *
 * @throws InvalidReferenceError naming the problem: empty or upper-case
 *   name, empty component, `..`, invalid characters, a name over 255
 *   characters, a bad tag, a bad digest or a bad host.
 */
export function parseReference(input: string, options: ParseReferenceOptions = {}): Reference {
  const fail = (problem: string): never => {
    throw new InvalidReferenceError(input, problem);
  };
  if (input === "") fail("reference is empty");

  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    const problem = digestProblem(digest);
    if (problem !== undefined) fail(problem);
  }

  let tag: string | undefined;
  const colon = rest.lastIndexOf(":");
  // A ":" before the last "/" belongs to the host's port, not to a tag.
  if (colon !== -1 && colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    const problem = tagProblem(tag);
    if (problem !== undefined) fail(problem);
  }

  let registry: string;
  let repository: string;
  const slash = rest.indexOf("/");
  const first = slash === -1 ? "" : rest.slice(0, slash);
  if (slash !== -1 && (/[.:]/.test(first) || first === "localhost" || first !== first.toLowerCase())) {
    registry = first;
    repository = rest.slice(slash + 1);
    if (!DOMAIN.test(registry)) fail(`registry ${JSON.stringify(registry)} is not a valid host[:port]`);
  } else {
    if (IMAGE_ID.test(rest)) fail("a 64-character hex string is an image ID, not a repository name");
    registry = options.defaultRegistry ?? DOCKER_HUB_REGISTRY;
    repository = rest;
  }
  if (registry === "index.docker.io") registry = DOCKER_HUB_REGISTRY;
  if (registry === DOCKER_HUB_REGISTRY && repository !== "" && !repository.includes("/")) {
    repository = `library/${repository}`;
  }

  const problem = repositoryProblem(repository);
  if (problem !== undefined) fail(problem);
  const nameLength = registry.length + 1 + repository.length;
  if (nameLength > NAME_TOTAL_LENGTH_MAX) {
    fail(`name (registry/repository) is ${nameLength} characters long; the limit is ${NAME_TOTAL_LENGTH_MAX}`);
  }

  return {
    registry,
    repository,
    ...(tag === undefined ? {} : { tag }),
    ...(digest === undefined ? {} : { digest }),
  };
}

/** `registry/repository[:tag][@digest]`; `parseReference(formatReference(r))` gives `r` back. */
export function formatReference(ref: Reference): string {
  return `${ref.registry}/${ref.repository}${ref.tag === undefined ? "" : `:${ref.tag}`}${
    ref.digest === undefined ? "" : `@${ref.digest}`
  }`;
}

/**
 * What to put in `/v2/<name>/manifests/<reference>`: the digest when there
 * is one (it pins the content even if the tag moved), else the tag, else
 * {@link DEFAULT_TAG}.
 */
export function referenceTarget(ref: Reference): string {
  return ref.digest ?? ref.tag ?? DEFAULT_TAG;
}
