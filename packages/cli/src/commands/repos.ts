/** `georep repos`: the tracked repositories, every page (or the first `--limit`), as a table. */
import type { Command } from "../args.js";
import { listRepositories } from "../client.js";
import type { RepositoryRow } from "../client.js";
import { EXIT_CODES } from "../errors.js";
import type { ExitCode } from "../errors.js";
import { formatBytes, formatTime, renderTable } from "../render.js";
import type { Palette } from "../render.js";
import { printJson } from "./context.js";
import type { Context } from "./context.js";

/** Widest failure text shown in the list (`georep repo NAME` shows it whole). */
const FAILURE_WIDTH = 60;

/** Colour of a tracking state. */
export const stateColor = (colors: Palette) => (state: string) =>
  state === "failed" ? colors.red(state) : state === "synced" ? colors.green(state) : colors.yellow(state);

/** Repository rows as a table. */
export function renderRepositories(rows: readonly RepositoryRow[], colors: Palette): string {
  return renderTable(
    [
      { header: "REPOSITORY" },
      { header: "STATE", color: stateColor(colors) },
      { header: "RETRIES", align: "right" },
      { header: "LAST SYNCED" },
      { header: "COPIED", align: "right" },
      { header: "LAST FAILURE", maxWidth: FAILURE_WIDTH },
    ],
    rows.map((r) => [r.repository, r.state, String(r.retry_count), formatTime(r.last_synced_at), formatBytes(r.bytes_copied), r.last_sync_failure ?? ""]),
    { headerStyle: colors.bold },
  );
}

/** Lists the repositories; `--json`: `{"items": [...every row...], "next_cursor": null or where the listing stopped}`. */
export async function runRepos(ctx: Context, command: Extract<Command, { name: "repos" }>): Promise<ExitCode> {
  const query = { ...(command.state === undefined ? {} : { state: command.state }), ...(command.nameFilter === undefined ? {} : { name: command.nameFilter }) };
  const page = await listRepositories(ctx.client, query, command.limit);
  if (ctx.out.settings.json) {
    printJson(ctx.out, page);
    return EXIT_CODES.ok;
  }
  if (page.items.length === 0) {
    ctx.out.stdout.write("no repositories\n");
    return EXIT_CODES.ok;
  }
  ctx.out.stdout.write(renderRepositories(page.items, ctx.out.colors));
  const more = page.next_cursor === null ? "" : ` (more exist; raise --limit)`;
  ctx.out.stdout.write(`${page.items.length} ${page.items.length === 1 ? "repository" : "repositories"}${more}\n`);
  return EXIT_CODES.ok;
}
