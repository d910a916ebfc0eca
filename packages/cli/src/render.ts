/**
 * Text output: aligned tables, key/value blocks, optional ANSI colours, a
 * progress indicator, and the formatting of times, sizes and digests. Pure
 * apart from the progress indicator, which writes to the stream it is given.
 */

/** ANSI SGR codes of the colours the CLI uses. */
const SGR = { red: 31, green: 32, yellow: 33, dim: 2, bold: 1 } as const;

/** Colouring functions; identity functions when colours are off. */
export type Palette = { readonly [K in keyof typeof SGR]: (text: string) => string };

/** A palette that colours when `enabled`, and leaves text alone otherwise. */
export function palette(enabled: boolean): Palette {
  const make = (code: number) => (enabled ? (text: string) => `\u001b[${code}m${text}\u001b[0m` : (text: string) => text);
  return { red: make(SGR.red), green: make(SGR.green), yellow: make(SGR.yellow), dim: make(SGR.dim), bold: make(SGR.bold) };
}

// eslint-disable-next-line no-control-regex -- ANSI escape sequences are exactly what is stripped
const ANSI = /\u001b\[[0-9;]*m/g;

/** Columns a string takes on a terminal (ANSI colour codes take none; every code point counts as one column). */
export const displayWidth = (text: string): number => [...text.replace(ANSI, "")].length;

/** `text` cut to `max` columns with a trailing `…` (plain text only). */
export function truncate(text: string, max: number): string {
  const chars = [...text];
  return chars.length <= max ? text : `${chars.slice(0, Math.max(0, max - 1)).join("")}…`;
}

/** A table column. */
export interface Column {
  readonly header: string;
  /** Numbers read best right-aligned. */
  readonly align?: "left" | "right";
  /** Longer cells are cut with `…` (applied before colouring: pass `color` to colour a cut cell). */
  readonly maxWidth?: number;
  /** Colours a cell after it was cut. */
  readonly color?: (text: string, row: readonly string[]) => string;
}

/** Styles the text of a padded cell but not its padding, so that trailing padding can still be trimmed. */
function styleText(padded: string, style: ((text: string) => string) | undefined): string {
  if (style === undefined) return padded;
  const match = /^(\s*)(.*?)(\s*)$/s.exec(padded);
  const [, before = "", text = "", after = ""] = match ?? [];
  return text === "" ? padded : `${before}${style(text)}${after}`;
}

/**
 * Renders rows as aligned columns separated by two spaces, a header line
 * first; no trailing spaces. Returns the lines joined with `\n` and a final
 * newline, or `""` for no columns.
 */
export function renderTable(columns: readonly Column[], rows: readonly (readonly string[])[], options: { headerStyle?: (text: string) => string } = {}): string {
  if (columns.length === 0) return "";
  const cells = rows.map((row) => columns.map((column, i) => (column.maxWidth === undefined ? (row[i] ?? "") : truncate(row[i] ?? "", column.maxWidth))));
  const widths = columns.map((column, i) => Math.max(displayWidth(column.header), ...cells.map((row) => displayWidth(row[i] ?? ""))));
  const pad = (text: string, i: number) => {
    const fill = " ".repeat((widths[i] ?? 0) - displayWidth(text));
    return columns[i]?.align === "right" ? fill + text : text + fill;
  };
  const line = (row: readonly string[], style: (text: string, i: number) => string) => row.map((text, i) => style(pad(text, i), i)).join("  ").trimEnd();
  const header = line(
    columns.map((c) => c.header),
    (text) => styleText(text, options.headerStyle),
  );
  const body = cells.map((row, r) =>
    line(row, (text, i) => {
      const color = columns[i]?.color;
      return styleText(text, color === undefined ? undefined : (t) => color(t, rows[r] ?? []));
    }),
  );
  return `${[header, ...body].join("\n")}\n`;
}

/** `key   value` lines with the keys padded to one width. */
export function renderFields(fields: readonly (readonly [string, string])[]): string {
  const width = Math.max(0, ...fields.map(([key]) => displayWidth(key)));
  return fields.map(([key, value]) => `${key}${" ".repeat(width - displayWidth(key))}  ${value}`.trimEnd()).join("\n") + (fields.length > 0 ? "\n" : "");
}

/** `2026-11-26 17:00:01Z` from an ISO time; `-` for null. */
export function formatTime(iso: string | null | undefined): string {
  if (iso === null || iso === undefined || iso === "") return "-";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : `${date.toISOString().slice(0, 19).replace("T", " ")}Z`;
}

/** `512 B`, `1.5 KiB`, `12.3 MiB`… */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined) return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(value >= 100 ? 0 : 1)} ${units[unit]}`;
}

/** `850 ms`, `1.2 s`, `3 min 5 s`; `-` for null. */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "-";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
}

/** Seconds with up to 2 decimals; `-` for null. */
export const formatSeconds = (seconds: number | null | undefined): string => (seconds === null || seconds === undefined ? "-" : `${Number(seconds.toFixed(2))} s`);

/** `sha256:0123456789ab` (12 hex digits, as docker shows image IDs); `-` for null. */
export function shortDigest(digest: string | null | undefined): string {
  if (digest === null || digest === undefined) return "-";
  const colon = digest.indexOf(":");
  return colon === -1 ? digest : digest.slice(0, colon + 13);
}

/** A stream the progress indicator can write to. */
export interface ProgressStream {
  write(text: string): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

/** Progress of a long operation over `total` items. */
export interface Progress {
  /** One more item done; `label` names it (shown on a terminal). */
  tick(label?: string): void;
  /** Clears the bar (terminal) or writes the count reached (otherwise). */
  done(): void;
}

/** How often a non-terminal progress line is written. */
export const DEFAULT_PROGRESS_INTERVAL_MS = 5000;
const BAR_WIDTH = 24;

/**
 * A progress indicator on `stream`: on a terminal a bar redrawn in place
 * (`[#####-----]  40/200  team/app`), otherwise a plain line at most every
 * `intervalMs` (`verify: 40/200 (20%)`) and one at the end, so logs of CI
 * jobs stay readable.
 */
export function createProgress(options: { stream: ProgressStream; total: number; label: string; intervalMs?: number; now?: () => number }): Progress {
  const { stream, total, label } = options;
  const now = options.now ?? Date.now;
  const interval = options.intervalMs ?? DEFAULT_PROGRESS_INTERVAL_MS;
  const tty = stream.isTTY === true;
  let count = 0;
  let lastLine = now();
  const percent = () => (total === 0 ? 100 : Math.floor((count / total) * 100));
  const draw = (item: string | undefined) => {
    const filled = total === 0 ? BAR_WIDTH : Math.round((count / total) * BAR_WIDTH);
    const text = `${label} [${"#".repeat(filled)}${"-".repeat(BAR_WIDTH - filled)}] ${count}/${total}${item === undefined ? "" : `  ${item}`}`;
    // A pty without a size reports 0 columns.
    const columns = stream.columns !== undefined && stream.columns >= 20 ? stream.columns : 80;
    stream.write(`\r\u001b[2K${truncate(text, columns - 1)}`);
  };
  return {
    tick(item) {
      count++;
      if (tty) return draw(item);
      if (now() - lastLine >= interval) {
        lastLine = now();
        stream.write(`${label}: ${count}/${total} (${percent()}%)\n`);
      }
    },
    done() {
      if (tty) stream.write("\r\u001b[2K");
      else stream.write(`${label}: ${count}/${total} (${percent()}%)\n`);
    },
  };
}
