/**
 * The background checker: while a fault is in effect, it reads the secondary
 * the way a user pulling from it would, every ~200 ms, and records every tag
 * it could see whose content was not all there (DESIGN.md: "a secondary never
 * serves a tag whose content is incomplete").
 */
import type { RegistryClient } from "@georep/registry-client";
import { forEachLimited, isNotFound, missingContent } from "./verify.js";

/** How often, and how far apart, a listed tag whose manifest is unknown is read again before it counts (1 s in all). */
const UNRESOLVED_TAG_RECHECKS = 10;
const UNRESOLVED_TAG_RECHECK_MS = 100;

/** One incomplete thing the checker saw. */
export interface Violation {
  /** ISO time of the observation. */
  readonly at: string;
  readonly repository: string;
  readonly tag: string;
  readonly problem: string;
}

/** What a checker saw from start to stop. */
export interface CheckerSummary {
  readonly rounds: number;
  /** Tags checked, summed over rounds. */
  readonly tagChecks: number;
  readonly violations: readonly Violation[];
  /** Reads that failed with something other than a 404 (they prove nothing either way). */
  readonly errors: number;
  readonly lastError: string | undefined;
}

export interface Checker {
  /** Ends the loop after the round in progress and returns what it saw. */
  stop(): Promise<CheckerSummary>;
}

export interface CheckerOptions {
  /** A client of the secondary registry (with short timeouts: the checker must not stall). */
  readonly secondary: RegistryClient;
  /** Repositories whose name starts with one of these are checked (the secondary's catalog, filtered). */
  readonly prefixes: readonly string[];
  /** Pause between rounds (default 200 ms). */
  readonly intervalMs?: number;
  /** Tags checked at once (default 4). */
  readonly concurrency?: number;
}

/**
 * Starts checking: each round lists the secondary's repositories (catalog),
 * their tags, GETs each tag's manifest and HEADs every blob and child it
 * references. A tag that is listed but whose child or blob is missing is a
 * violation, and so is one whose own manifest stays unknown for a second
 * while it is listed.
 */
export function startChecker(options: CheckerOptions): Checker {
  const { secondary } = options;
  const violations: Violation[] = [];
  let rounds = 0;
  let tagChecks = 0;
  let errors = 0;
  let lastError: string | undefined;
  let running = true;
  let wake: (() => void) | undefined;

  const failed = (error: unknown) => {
    errors++;
    lastError = error instanceof Error ? error.message : String(error);
  };

  async function checkTag(repository: string, tag: string): Promise<void> {
    tagChecks++;
    try {
      let problems = await missingContent(secondary, repository, tag);
      // Distribution links a tag into its index (what tags/list reads) before it writes the tag's
      // current pointer (what a GET by tag reads): for that moment a listed tag is "manifest
      // unknown". A pull then fails; nothing incomplete is served. Only a listed tag that stays
      // unresolvable is reported (a tag deleted meanwhile is not listed any more).
      const unresolved = () => problems.length === 1 && problems[0] === `${repository}@${tag}: manifest unknown`;
      for (let attempt = 0; unresolved() && attempt < UNRESOLVED_TAG_RECHECKS; attempt++) {
        await new Promise((resolve) => setTimeout(resolve, UNRESOLVED_TAG_RECHECK_MS));
        problems = await missingContent(secondary, repository, tag);
      }
      if (unresolved() && !(await secondary.listTags(repository).catch(() => [] as string[])).includes(tag)) problems = [];
      for (const problem of problems) violations.push({ at: new Date().toISOString(), repository, tag, problem });
    } catch (error) {
      failed(error);
    }
  }

  async function round(): Promise<void> {
    let repositories: string[];
    try {
      repositories = (await secondary.catalog()).filter((r) => options.prefixes.some((p) => r.startsWith(p)));
    } catch (error) {
      failed(error);
      return;
    }
    const tags: { repository: string; tag: string }[] = [];
    await forEachLimited(repositories, options.concurrency ?? 4, async (repository) => {
      try {
        for (const tag of await secondary.listTags(repository)) tags.push({ repository, tag });
      } catch (error) {
        // A repository with blobs and no tag yet is not an error.
        if (!isNotFound(error)) failed(error);
      }
    });
    await forEachLimited(tags, options.concurrency ?? 4, ({ repository, tag }) => checkTag(repository, tag));
  }

  const loop = (async () => {
    while (running) {
      await round();
      rounds++;
      if (!running) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, options.intervalMs ?? 200);
      });
      wake = undefined;
    }
  })();

  return {
    async stop() {
      running = false;
      wake?.();
      await loop;
      return { rounds, tagChecks, violations: [...violations], errors, lastError };
    },
  };
}
