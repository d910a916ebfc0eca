/**
 * `georep verify [NAME]`: compares the primary's and the secondary's digest
 * of every tag now (the repository detail reads both registries), for NAME
 * or for every repository the site tracks, and reports drifted tags, failed
 * repositories and repositories whose tags could not be read. Exit 1 when
 * any of those exist.
 */
import type { Command } from "../args.js";
import { listRepositories } from "../client.js";
import type { RepositoryDetail, StatusClient, TagComparison } from "../client.js";
import { ApiError, EXIT_CODES } from "../errors.js";
import type { ExitCode } from "../errors.js";
import { createProgress, renderTable, shortDigest } from "../render.js";
import type { Palette, Progress } from "../render.js";
import { printJson } from "./context.js";
import type { Context } from "./context.js";
import { drifted } from "./repo.js";

/** Repository details fetched at once (each reads both registries). */
export const VERIFY_CONCURRENCY = 4;

/** What verify found (also the `--json` output). */
export interface VerifyReport {
  readonly checked: number;
  readonly drifted: { readonly repository: string; readonly tags: readonly TagComparison[] }[];
  readonly failed: { readonly repository: string; readonly last_sync_failure: string | null }[];
  readonly not_compared: { readonly repository: string; readonly tags_error: string }[];
  /** Listed, but gone before its detail was read. */
  readonly vanished: string[];
  readonly ok: boolean;
}

/** Folds repository details into a report. */
export function verifyReport(details: readonly RepositoryDetail[], vanished: readonly string[] = []): VerifyReport {
  const report = {
    checked: details.length,
    drifted: details.flatMap((d) => {
      const tags = d.tags.filter(drifted);
      return tags.length === 0 ? [] : [{ repository: d.repository.repository, tags }];
    }),
    failed: details.filter((d) => d.repository.state === "failed").map((d) => ({ repository: d.repository.repository, last_sync_failure: d.repository.last_sync_failure })),
    not_compared: details.flatMap((d) => (d.tags_error === null ? [] : [{ repository: d.repository.repository, tags_error: d.tags_error }])),
    vanished: [...vanished],
  };
  return { ...report, ok: report.drifted.length === 0 && report.failed.length === 0 && report.not_compared.length === 0 };
}

/** The report as text: a table of drifted tags, the failed and uncompared repositories, a summary line. */
export function renderVerifyReport(report: VerifyReport, colors: Palette): string {
  let text = "";
  if (report.drifted.length > 0) {
    text += renderTable(
      [{ header: "REPOSITORY" }, { header: "TAG" }, { header: "PRIMARY" }, { header: "SECONDARY" }],
      report.drifted.flatMap((d) => d.tags.map((t) => [d.repository, t.tag, shortDigest(t.primary_digest), shortDigest(t.secondary_digest)])),
      { headerStyle: colors.bold },
    );
  }
  for (const f of report.failed) text += `${colors.red("failed")}        ${f.repository}: ${f.last_sync_failure ?? "(no failure recorded)"}\n`;
  for (const n of report.not_compared) text += `${colors.yellow("not compared")}  ${n.repository}: ${n.tags_error}\n`;
  const tags = report.drifted.reduce((sum, d) => sum + d.tags.length, 0);
  const parts = [
    report.drifted.length === 0 ? colors.green("no drift") : colors.red(`${report.drifted.length} with drift (${tags} ${tags === 1 ? "tag" : "tags"})`),
    ...(report.failed.length === 0 ? [] : [colors.red(`${report.failed.length} failed`)]),
    ...(report.not_compared.length === 0 ? [] : [colors.yellow(`${report.not_compared.length} not compared`)]),
    ...(report.vanished.length === 0 ? [] : [`${report.vanished.length} gone while verifying`]),
  ];
  return `${text}verified ${report.checked} ${report.checked === 1 ? "repository" : "repositories"}: ${parts.join(", ")}\n`;
}

/** Reads every detail with bounded concurrency; a repository deleted since the listing (404) is set aside. */
async function readDetails(client: StatusClient, names: readonly string[], progress: Progress | undefined): Promise<{ details: RepositoryDetail[]; vanished: string[] }> {
  const details: (RepositoryDetail | undefined)[] = new Array<RepositoryDetail | undefined>(names.length);
  const vanished: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < names.length) {
      const index = next++;
      const name = names[index]!;
      try {
        details[index] = await client.repository(name);
      } catch (error) {
        if (!(error instanceof ApiError && error.status === 404)) throw error;
        vanished.push(name);
      }
      progress?.tick(name);
    }
  };
  await Promise.all(Array.from({ length: Math.min(VERIFY_CONCURRENCY, names.length) }, worker));
  return { details: details.filter((d) => d !== undefined), vanished };
}

/** Verifies NAME or every repository; `--json`: the {@link VerifyReport}. */
export async function runVerify(ctx: Context, command: Extract<Command, { name: "verify" }>): Promise<ExitCode> {
  let report: VerifyReport;
  if (command.repository !== undefined) {
    report = verifyReport([await ctx.client.repository(command.repository)]);
  } else {
    const names = (await listRepositories(ctx.client, {})).items.map((r) => r.repository);
    const progress = names.length > 1 ? createProgress({ stream: ctx.out.stderr, total: names.length, label: "verify" }) : undefined;
    try {
      const { details, vanished } = await readDetails(ctx.client, names, progress);
      report = verifyReport(details, vanished);
    } finally {
      progress?.done();
    }
  }
  if (ctx.out.settings.json) printJson(ctx.out, report);
  else ctx.out.stdout.write(renderVerifyReport(report, ctx.out.colors));
  return report.ok ? EXIT_CODES.ok : EXIT_CODES.failure;
}
