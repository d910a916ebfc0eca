/**
 * The opaque cursor of `GET /api/v1/repositories`: the sort, the order and
 * the last row's sort key and repository, as base64url JSON. Pure (no I/O).
 */

/** Sort keys of the repositories list. */
export const REPOSITORY_SORTS = ["repository", "updated_at", "last_synced_at", "retry_count"] as const;
/** One of {@link REPOSITORY_SORTS}. */
export type RepositorySort = (typeof REPOSITORY_SORTS)[number];

/** Sort orders. */
export const SORT_ORDERS = ["asc", "desc"] as const;
/** One of {@link SORT_ORDERS}. */
export type SortOrder = (typeof SORT_ORDERS)[number];

/**
 * Where a page ends. `key` is the sort column's value as Postgres printed
 * it (timestamps as text, so no microsecond is lost; `-infinity` for a
 * repository never synced), a number for `retry_count`, and the repository
 * itself for `repository`.
 */
export interface RepositoryCursor {
  readonly sort: RepositorySort;
  readonly order: SortOrder;
  readonly key: string | number;
  readonly repository: string;
}

/** Why a cursor was refused. */
export type CursorProblem = "malformed" | "mismatch";

/** A timestamptz as Postgres prints it (`2026-11-26 17:00:00.123456+00`), or `-infinity`. */
const PG_TIMESTAMP = /^(-infinity|\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?[+-]\d{2}(:\d{2}){0,2})$/;
/** Largest `retry_count` (a Postgres `integer`). */
const MAX_INTEGER = 2_147_483_647;

/**
 * True when a {@link PG_TIMESTAMP} names a real instant Postgres accepts: a
 * tampered cursor with month 13, hour 25 or year 0 would otherwise reach the
 * query and fail there (a 500 instead of a 400).
 */
function isRealTimestamp(text: string): boolean {
  if (text === "-infinity") return true;
  const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.\d{1,6})?[+-](\d{2})(?::(\d{2}))?(?::(\d{2}))?$/.exec(text);
  if (m === null) return false;
  const [year, month, day, hour, minute, second, offsetHours, offsetMinutes = 0, offsetSeconds = 0] = m.slice(1).map((v) => (v === undefined ? undefined : Number(v)));
  if (year === undefined || month === undefined || day === undefined || hour === undefined || minute === undefined || second === undefined || offsetHours === undefined) return false;
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day); // not Date.UTC, which reads years below 100 as 19xx
  const realDay = year >= 1 && date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
  return realDay && hour < 24 && minute < 60 && second < 60 && offsetHours <= 15 && offsetMinutes < 60 && offsetSeconds < 60;
}

/** Encodes a cursor (base64url of a compact JSON array). */
export function encodeCursor(cursor: RepositoryCursor): string {
  return Buffer.from(JSON.stringify([1, cursor.sort, cursor.order, cursor.key, cursor.repository]), "utf8").toString("base64url");
}

/**
 * Decodes a cursor made by {@link encodeCursor} for the same sort and order.
 *
 * @returns the cursor, or why it is refused: `malformed` (not ours, or
 * tampered with) or `mismatch` (made for another sort or order).
 */
export function decodeCursor(text: string, sort: RepositorySort, order: SortOrder): { ok: true; cursor: RepositoryCursor } | { ok: false; problem: CursorProblem } {
  if (!/^[A-Za-z0-9_-]{1,2048}$/.test(text)) return { ok: false, problem: "malformed" };
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(text, "base64url").toString("utf8"));
  } catch {
    return { ok: false, problem: "malformed" };
  }
  if (!Array.isArray(parsed) || parsed.length !== 5 || parsed[0] !== 1) return { ok: false, problem: "malformed" };
  const [, s, o, key, repository] = parsed as unknown[];
  if (!(REPOSITORY_SORTS as readonly unknown[]).includes(s) || !(SORT_ORDERS as readonly unknown[]).includes(o)) return { ok: false, problem: "malformed" };
  // Postgres text cannot hold NUL: a tampered repository with one would fail the query.
  if (typeof repository !== "string" || repository === "" || repository.length > 255 || repository.includes("\u0000")) return { ok: false, problem: "malformed" };
  const cursorSort = s as RepositorySort;
  const validKey =
    cursorSort === "retry_count"
      ? typeof key === "number" && Number.isSafeInteger(key) && key >= 0 && key <= MAX_INTEGER
      : cursorSort === "repository"
        ? key === repository
        : typeof key === "string" && PG_TIMESTAMP.test(key) && isRealTimestamp(key) && (cursorSort === "last_synced_at" || key !== "-infinity");
  if (!validKey) return { ok: false, problem: "malformed" };
  if (cursorSort !== sort || o !== order) return { ok: false, problem: "mismatch" };
  return { ok: true, cursor: { sort: cursorSort, order: o as SortOrder, key: key as string | number, repository } };
}
