/** `georep status`: this site's summary, then every site's health, counts and lag (the sites view). */
import type { SiteSummary, SiteView } from "../client.js";
import { EXIT_CODES } from "../errors.js";
import type { ExitCode } from "../errors.js";
import { formatBytes, formatSeconds, formatTime, renderFields, renderTable } from "../render.js";
import type { Palette } from "../render.js";
import { printJson } from "./context.js";
import type { Context } from "./context.js";

/** The site summary as `key  value` lines. */
export function renderSummary(summary: SiteSummary, colors: Palette): string {
  const { counts } = summary;
  const fields: [string, string][] = [
    ["site", `${colors.bold(summary.site)} (${summary.role})`],
    ["replication", summary.paused ? colors.yellow("paused") : "running"],
  ];
  if (summary.role === "secondary") {
    const failed = counts.failed > 0 ? colors.red(`${counts.failed} failed`) : "0 failed";
    fields.push(
      ["repositories", `${summary.total}: ${counts.synced} synced, ${failed}, ${counts.pending} pending, ${counts.started} started (${(summary.progress * 100).toFixed(1)}% synced)`],
      ["lag (last hour)", `p50 ${formatSeconds(summary.lag_seconds.p50)}, p99 ${formatSeconds(summary.lag_seconds.p99)}`],
      ["copied", `${formatBytes(summary.bytes_copied)} in ${summary.blobs_copied} blobs, ${summary.blobs_mounted} mounted`],
      ["last synced", formatTime(summary.last_synced_at)],
      ["missing on primary", String(summary.missing_on_primary)],
      ["unremovable tags", String(summary.unremovable_tags)],
    );
  }
  fields.push(["last event", formatTime(summary.last_event_at)]);
  if (summary.events !== null) {
    const dead = summary.events.dead_letters > 0 ? colors.red(`${summary.events.dead_letters} dead letters`) : "0 dead letters";
    fields.push(["events", `${summary.events.total} recorded (last id ${summary.events.last_id ?? "-"}), ${dead}`]);
  }
  fields.push(["generated at", formatTime(summary.generated_at)]);
  return renderFields(fields);
}

/** The sites view as a table. */
export function renderSites(sites: readonly SiteView[], colors: Palette): string {
  const health = (text: string) => (text === "ok" ? colors.green(text) : text === "failing" ? colors.red(text) : colors.yellow(text));
  return renderTable(
    [
      { header: "SITE" },
      { header: "ROLE" },
      { header: "HEALTH", color: health },
      { header: "PAUSED" },
      { header: "PENDING", align: "right" },
      { header: "STARTED", align: "right" },
      { header: "SYNCED", align: "right" },
      { header: "FAILED", align: "right" },
      { header: "LAG P50", align: "right" },
      { header: "LAG P99", align: "right" },
      { header: "COPIED", align: "right" },
      { header: "LAST SEEN" },
    ],
    sites.map((s) => {
      const r = s.report;
      return [
        s.site,
        s.role,
        s.health,
        r.paused === true ? "yes" : "no",
        String(r.counts.pending),
        String(r.counts.started),
        String(r.counts.synced),
        String(r.counts.failed),
        formatSeconds(r.lag_seconds.p50),
        formatSeconds(r.lag_seconds.p99),
        formatBytes(r.bytes_copied),
        formatTime(s.last_seen_at),
      ];
    }),
    { headerStyle: colors.bold },
  );
}

/** Prints the summary and the sites view; `--json`: `{"site": <summary>, "sites": <sites view>}`. */
export async function runStatus(ctx: Context): Promise<ExitCode> {
  const [summary, sites] = await Promise.all([ctx.client.site(), ctx.client.sites()]);
  if (ctx.out.settings.json) {
    printJson(ctx.out, { site: summary, sites });
    return EXIT_CODES.ok;
  }
  const { colors } = ctx.out;
  ctx.out.stdout.write(renderSummary(summary, colors));
  ctx.out.stdout.write("\n");
  ctx.out.stdout.write(sites.items.length === 0 ? "no site has reported yet\n" : renderSites(sites.items, colors));
  return EXIT_CODES.ok;
}
