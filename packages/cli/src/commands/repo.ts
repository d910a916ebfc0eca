/** `georep repo NAME`: one repository's row, its tags on both sides with drift marked, its last failure and recent syncs. */
import type { Command } from "../args.js";
import type { RepositoryDetail, TagComparison } from "../client.js";
import { EXIT_CODES } from "../errors.js";
import type { ExitCode } from "../errors.js";
import { formatBytes, formatDuration, formatTime, renderFields, renderTable, shortDigest } from "../render.js";
import type { Palette } from "../render.js";
import { printJson } from "./context.js";
import type { Context } from "./context.js";
import { stateColor } from "./repos.js";

/** Whether a tag differs between the sides (a tag on one side only differs). */
export const drifted = (tag: TagComparison): boolean => tag.primary_digest !== tag.secondary_digest;

/** The mark of the SYNC column: `ok`, or `DRIFT` for a tag whose digests differ. */
export const DRIFT_MARK = "DRIFT";

/** Tags as a table, drifted ones marked. */
export function renderTags(tags: readonly TagComparison[], colors: Palette): string {
  return renderTable(
    [{ header: "TAG" }, { header: "PRIMARY" }, { header: "SECONDARY" }, { header: "SYNC", color: (text) => (text === DRIFT_MARK ? colors.red(text) : colors.green(text)) }],
    tags.map((t) => [t.tag, shortDigest(t.primary_digest), shortDigest(t.secondary_digest), drifted(t) ? DRIFT_MARK : "ok"]),
    { headerStyle: colors.bold },
  );
}

/** The whole detail view. */
export function renderRepository(detail: RepositoryDetail, colors: Palette): string {
  const row = detail.repository;
  const state = stateColor(colors)(row.state);
  const retry = row.retry_count > 0 ? ` (retry ${row.retry_count}${row.retry_at === null ? "" : `, next at ${formatTime(row.retry_at)}`})` : "";
  const fields: [string, string][] = [
    ["repository", colors.bold(row.repository)],
    ["state", `${state}${retry}`],
    ["generation", `synced ${row.synced_generation} of ${row.pending_generation}`],
    ["last event", formatTime(row.last_event_at)],
    ["last synced", formatTime(row.last_synced_at)],
    ["last verified", formatTime(row.verified_at)],
    ["last sync took", formatDuration(row.last_duration_ms)],
    ["copied", `${formatBytes(row.bytes_copied)} in ${row.blobs_copied} blobs, ${row.blobs_mounted} mounted`],
    ["updated", formatTime(row.updated_at)],
  ];
  if (row.missing_on_primary) fields.push(["missing on primary", colors.yellow("yes (the primary no longer has it)")]);
  for (const u of row.unremovable_tags) fields.push(["unremovable tag", `${u.tag}: ${u.reason}`]);
  fields.push(["last failure", row.last_sync_failure === null ? "-" : colors.red(row.last_sync_failure)]);

  const drift = detail.tags.filter(drifted).length;
  let text = renderFields(fields);
  text += "\n";
  if (detail.tags_error !== null) text += `${colors.red("tags could not be compared:")} ${detail.tags_error}\n`;
  else if (detail.tags.length === 0) text += "no tags on either side\n";
  else text += `${renderTags(detail.tags, colors)}${detail.tags.length} tags, ${drift === 0 ? colors.green("no drift") : colors.red(`${drift} drifted`)}\n`;
  text += "\n";
  if (detail.recent_syncs.length === 0) return `${text}no syncs recorded\n`;
  return (
    text +
    renderTable(
      [
        { header: "STARTED" },
        { header: "OUTCOME", color: (o) => (o === "failed" ? colors.red(o) : colors.green(o)) },
        { header: "REASON" },
        { header: "GEN", align: "right" },
        { header: "TOOK", align: "right" },
        { header: "COPIED", align: "right" },
        { header: "BLOBS", align: "right" },
        { header: "MOUNTED", align: "right" },
        { header: "ERROR", maxWidth: 70 },
      ],
      detail.recent_syncs.map((s) => [
        formatTime(s.started_at),
        s.outcome,
        s.reason ?? "-",
        String(s.generation),
        formatDuration(s.duration_ms),
        formatBytes(s.bytes_copied),
        String(s.blobs_copied),
        String(s.blobs_mounted),
        s.error ?? "",
      ]),
      { headerStyle: colors.bold },
    )
  );
}

/** Prints one repository; `--json`: the API's detail object. */
export async function runRepo(ctx: Context, command: Extract<Command, { name: "repo" }>): Promise<ExitCode> {
  const detail = await ctx.client.repository(command.repository);
  if (ctx.out.settings.json) printJson(ctx.out, detail);
  else ctx.out.stdout.write(renderRepository(detail, ctx.out.colors));
  return EXIT_CODES.ok;
}
