/**
 * The notification corpus (corpus/notifications/*.case): one hostile
 * request per file. A file is a header of `# key: value` lines, a blank
 * line, and the body:
 *
 * ```
 * # attack: what the body attacks (one line)
 * # expect: 400 INGEST_ERR_INVALID_JSON                      (a 4xx and its JSON code)
 * # expect: 200 dead-letter=invalid_fields,unknown_action published=1 duplicates=0 ignored=0
 * # authorization: secret | none | wrong | bearer-secret      (default secret)
 * # content-type: <value> | none                             (default Distribution's envelope type)
 * # content-encoding: gzip                                    (the body is gzipped before sending)
 * # escapes: hex                                              (\xNN in the body is the byte NN)
 *
 * {"events": [...]}
 * ```
 *
 * `{{repeat "TEXT" N}}` in the body (TEXT a JSON string) is TEXT N times,
 * so a 2 MiB or 100,000-event body stays a readable file. Events of the body
 * whose id starts with `valid-` are the valid neighbours that must be
 * published; with `200`, `dead-letter` lists the reason of every other event.
 */
import { readdir, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

export const CORPUS_DIR = fileURLToPath(new URL("../../corpus/notifications/", import.meta.url));
/** Distribution's notification envelope media type (ingest's default content type here). */
export const ENVELOPE_MEDIA_TYPE = "application/vnd.docker.distribution.events.v1+json";

export type Authorization = "secret" | "none" | "wrong" | "bearer-secret";

export type Expectation =
  | { readonly status: number; readonly code: string }
  | { readonly status: 200; readonly deadLetters: readonly string[]; readonly published: number; readonly duplicates: number; readonly ignored: number };

export interface CorpusCase {
  readonly file: string;
  readonly attack: string;
  readonly expectLine: string;
  readonly expect: Expectation;
  readonly authorization: Authorization;
  /** `undefined`: no Content-Type header. */
  readonly contentType: string | undefined;
  readonly contentEncoding: string | undefined;
  readonly body: Buffer;
}

const REPEAT = /\{\{repeat ("(?:[^"\\]|\\.)*") (\d+)\}\}/g;

function expand(text: string): string {
  return text.replace(REPEAT, (_m, quoted: string, count: string) => (JSON.parse(quoted) as string).repeat(Number(count)));
}

/** Text with `\xNN` escapes as bytes; the rest as UTF-8. */
function hexEscapes(text: string): Buffer {
  const parts: Buffer[] = [];
  let last = 0;
  for (const m of text.matchAll(/\\x([0-9A-Fa-f]{2})/g)) {
    parts.push(Buffer.from(text.slice(last, m.index), "utf8"), Buffer.from([parseInt(m[1]!, 16)]));
    last = m.index + m[0].length;
  }
  parts.push(Buffer.from(text.slice(last), "utf8"));
  return Buffer.concat(parts);
}

function parseExpectation(file: string, line: string): Expectation {
  const [statusText = "", ...rest] = line.trim().split(/\s+/);
  const status = Number(statusText);
  if (!Number.isInteger(status)) throw new Error(`${file}: "expect" must start with an HTTP status, got ${JSON.stringify(line)}`);
  if (status !== 200) {
    if (rest.length !== 1 || !/^[A-Z][A-Z0-9_]+$/.test(rest[0]!)) throw new Error(`${file}: a ${status} expectation names exactly one error code`);
    return { status, code: rest[0]! };
  }
  const fields = new Map(rest.map((kv) => kv.split("=", 2) as [string, string]));
  for (const key of fields.keys()) if (!["dead-letter", "published", "duplicates", "ignored"].includes(key)) throw new Error(`${file}: unknown expectation field ${key}`);
  const deadLetter = fields.get("dead-letter");
  return {
    status: 200,
    deadLetters: deadLetter === undefined ? [] : deadLetter.split(","),
    published: Number(fields.get("published") ?? 0),
    duplicates: Number(fields.get("duplicates") ?? 0),
    ignored: Number(fields.get("ignored") ?? 0),
  };
}

export function parseCase(file: string, raw: string): CorpusCase {
  const split = raw.indexOf("\n\n");
  if (split < 0) throw new Error(`${file}: no blank line between the header and the body`);
  const header = new Map<string, string>();
  for (const line of raw.slice(0, split).split("\n")) {
    const m = /^# ([a-z-]+): (.*)$/.exec(line);
    if (m === null) throw new Error(`${file}: header line ${JSON.stringify(line)} is not "# key: value"`);
    header.set(m[1]!, m[2]!);
  }
  const attack = header.get("attack");
  const expectLine = header.get("expect");
  if (attack === undefined || expectLine === undefined) throw new Error(`${file}: "attack" and "expect" are required`);
  let bodyText = expand(raw.slice(split + 2));
  if (bodyText.endsWith("\n")) bodyText = bodyText.slice(0, -1);
  let body = header.get("escapes") === "hex" ? hexEscapes(bodyText) : Buffer.from(bodyText, "utf8");
  const contentEncoding = header.get("content-encoding");
  if (contentEncoding === "gzip") body = gzipSync(body);
  else if (contentEncoding !== undefined) throw new Error(`${file}: unsupported content-encoding ${contentEncoding}`);
  const contentType = header.get("content-type") ?? ENVELOPE_MEDIA_TYPE;
  const authorization = (header.get("authorization") ?? "secret") as Authorization;
  if (!["secret", "none", "wrong", "bearer-secret"].includes(authorization)) throw new Error(`${file}: unknown authorization ${authorization}`);
  return {
    file,
    attack,
    expectLine,
    expect: parseExpectation(file, expectLine),
    authorization,
    contentType: contentType === "none" ? undefined : contentType,
    contentEncoding,
    body,
  };
}

/** Every case of the corpus, in file order. */
export async function loadCorpus(): Promise<CorpusCase[]> {
  const files = (await readdir(CORPUS_DIR)).filter((f) => f.endsWith(".case")).sort();
  return Promise.all(files.map(async (f) => parseCase(f, await readFile(join(CORPUS_DIR, f), "utf8"))));
}
