// @ts-check
/**
 * The georep status dashboard (docs/status-api.md, "Dashboard"): one page per
 * site, served by that site's status service, talking only to its API.
 *
 * Every piece of data reaches the page through `textContent`, text nodes or
 * attributes set with `setAttribute`: never `innerHTML`. Repository names,
 * tags and error messages come from registries and users, so they are shown
 * literally whatever characters they hold.
 */

/** How often the page reloads its data. */
const REFRESH_MS = 5000;
/** Where the admin token is kept in this browser. */
const TOKEN_STORAGE_KEY = "georep.status.admin-token";
/** Repositories per page of the repositories table. */
const PAGE_SIZE = 50;
/** Failing repositories listed at most (the repositories table pages through the rest). */
const FAILED_LIMIT = 100;
/** The repository detail route: `#/repo/<name>` (the name may hold `/`). */
const REPO_ROUTE = "#/repo/";

// ---------------------------------------------------------------------------
// DOM helpers

/**
 * Creates an element. `props`: `text` (textContent), `className`, `testid`
 * (data-testid), `on<event>` listeners, anything else as an attribute
 * (skipped when null/undefined/false). Children: nodes or strings (text nodes).
 * @param {string} tag
 * @param {Record<string, unknown>} [props]
 * @param {...(Node | string | number | null | undefined | false)} children
 * @returns {HTMLElement}
 */
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") el.textContent = String(value);
    else if (key === "className") el.className = String(value);
    else if (key === "testid") el.dataset.testid = String(value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), /** @type {EventListener} */ (value));
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.append(typeof child === "number" ? String(child) : child);
  }
  return el;
}

/**
 * @param {string} id
 * @returns {HTMLElement}
 */
function byId(id) {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`the page has no #${id}`);
  return el;
}

/**
 * @param {HTMLElement} el
 * @param {string | null | undefined} text  hides the element when empty
 */
function setNotice(el, text) {
  el.textContent = text ?? "";
  el.hidden = text === null || text === undefined || text === "";
}

// ---------------------------------------------------------------------------
// Formatting

const numberFormat = new Intl.NumberFormat("en-US");

/** @param {number | string | null | undefined} n */
function formatNumber(n) {
  if (n === null || n === undefined) return "—";
  const value = Number(n);
  return Number.isFinite(value) ? numberFormat.format(value) : String(n);
}

/**
 * "1 repository", "3 repositories".
 * @param {number | null | undefined} n
 * @param {string} one
 * @param {string} many
 */
function plural(n, one, many) {
  return `${formatNumber(n)} ${n === 1 ? one : many}`;
}

/** @param {number | string | null | undefined} bytes */
function formatBytes(bytes) {
  if (bytes === null || bytes === undefined) return "—";
  let value = Number(bytes);
  if (!Number.isFinite(value)) return String(bytes);
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

/** @param {number | null | undefined} seconds */
function formatSeconds(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** @param {number | null | undefined} ms */
function formatDuration(ms) {
  return ms === null || ms === undefined ? "—" : formatSeconds(ms / 1000);
}

/**
 * A completion percentage that never rounds up to 100 % before everything is synced.
 * @param {number} progress 0..1
 */
function formatPercent(progress) {
  if (progress >= 1) return "100 %";
  const tenths = Math.floor(Math.max(0, progress) * 1000) / 10;
  return `${tenths.toFixed(1)} %`;
}

/** @param {number} n */
const pad = (n) => String(n).padStart(2, "0");

/**
 * Local date and time, `YYYY-MM-DD HH:MM:SS`.
 * @param {Date} d
 */
function localTime(d) {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/**
 * "12 s ago", "3 min ago", "in 40 s".
 * @param {Date} d
 */
function relativeTime(d) {
  const seconds = Math.round((Date.now() - d.getTime()) / 1000);
  const abs = Math.abs(seconds);
  const text = abs < 60 ? `${abs} s` : abs < 3600 ? `${Math.floor(abs / 60)} min` : abs < 86400 ? `${Math.floor(abs / 3600)} h` : `${Math.floor(abs / 86400)} d`;
  return seconds >= 0 ? `${text} ago` : `in ${text}`;
}

/**
 * A `<time>` element: absolute local time, or relative with the absolute time as its tooltip.
 * @param {string | null | undefined} iso
 * @param {{ relative?: boolean, testid?: string }} [options]
 */
function timeNode(iso, options = {}) {
  if (iso === null || iso === undefined) return h("span", { className: "muted", text: "—", testid: options.testid });
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return h("span", { text: iso, testid: options.testid });
  return h("time", { datetime: iso, title: `${localTime(d)} (${iso})`, testid: options.testid, text: options.relative ? relativeTime(d) : localTime(d) });
}

/**
 * A digest shortened for tables; the full value is the tooltip and stays selectable.
 * @param {string | null | undefined} digest
 */
function digestNode(digest) {
  if (digest === null || digest === undefined) return h("span", { className: "muted", text: "absent" });
  const [algorithm, hex] = digest.split(":", 2);
  const short = hex === undefined ? digest : `${algorithm}:${hex.slice(0, 12)}`;
  return h("code", { title: digest, className: "digest", "aria-label": digest, text: short });
}

/**
 * A state (or health) badge: the word, coloured; never colour alone.
 * @param {string} value
 * @param {string} [testid]
 */
function badge(value, testid) {
  return h("span", { className: `badge badge-${/^[a-z]+$/.test(value) ? value : "other"}`, testid, text: value });
}

/**
 * A progress bar with its percentage and "n of m".
 * @param {number} synced
 * @param {number} total
 * @param {number} progress 0..1
 * @param {string} label what the bar measures, for assistive technology
 * @param {string} [testid]
 */
function progressBar(synced, total, progress, label, testid) {
  const percent = formatPercent(progress);
  const fill = h("div", { className: "progress-fill" });
  fill.style.width = `${Math.min(100, Math.max(0, progress * 100))}%`;
  const bar = h(
    "div",
    {
      className: `progress${progress >= 1 ? " complete" : ""}`,
      role: "progressbar",
      "aria-label": label,
      "aria-valuemin": "0",
      "aria-valuemax": "100",
      "aria-valuenow": String(Math.round(progress * 1000) / 10),
      "aria-valuetext": `${percent}: ${synced} of ${total} synced`,
      testid,
      "data-synced": String(synced),
      "data-total": String(total),
    },
    fill,
  );
  return h("div", { className: "progress-block" }, bar, h("span", { className: "progress-text" }, h("strong", { text: percent, testid: testid ? `${testid}-percent` : undefined }), ` ${formatNumber(synced)} of ${formatNumber(total)} synced`));
}

/**
 * A link to a repository's detail view.
 * @param {string} name
 */
function repoLink(name) {
  return h("a", { href: repoHref(name), className: "repo-name", text: name });
}

/** @param {string} name */
function repoHref(name) {
  return REPO_ROUTE + name.split("/").map(encodeURIComponent).join("/");
}

/** @param {string} name the API path of a repository */
function repoApiPath(name) {
  return `api/v1/repositories/${name.split("/").map(encodeURIComponent).join("/")}`;
}

// ---------------------------------------------------------------------------
// API

/** An API answer that is not 2xx, or no answer at all (status 0). */
class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   */
  constructor(status, code, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

/** @returns {string} */
function adminToken() {
  try {
    return localStorage.getItem(TOKEN_STORAGE_KEY) ?? "";
  } catch {
    return /** @type {HTMLInputElement} */ (byId("admin-token")).value;
  }
}

/**
 * Calls the status API (relative to the page, so a path prefix in front of the service works).
 * @param {string} path
 * @param {{ method?: string, body?: unknown, admin?: boolean }} [options]
 * @returns {Promise<any>}
 */
async function api(path, options = {}) {
  /** @type {Record<string, string>} */
  const headers = { accept: "application/json" };
  if (options.body !== undefined) headers["content-type"] = "application/json";
  if (options.admin) {
    const token = adminToken().trim();
    if (token !== "") headers.authorization = `Bearer ${token}`;
  }
  let res;
  try {
    res = await fetch(path, {
      method: options.method ?? "GET",
      headers,
      cache: "no-store",
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    });
  } catch (error) {
    throw new ApiError(0, "unreachable", `the status service cannot be reached (${error instanceof Error ? error.message : String(error)})`);
  }
  const text = await res.text();
  /** @type {any} */
  let data = null;
  try {
    data = text === "" ? null : JSON.parse(text);
  } catch {
    data = null;
  }
  if (!res.ok) {
    const code = data !== null && typeof data.code === "string" ? data.code : `http_${res.status}`;
    const message = data !== null && typeof data.message === "string" ? data.message : text.slice(0, 300) || res.statusText;
    throw new ApiError(res.status, code, message);
  }
  return data;
}

/**
 * What a failed call says to a person: the API's `{code, message}`.
 * @param {unknown} error
 */
function describeError(error) {
  if (error instanceof ApiError) {
    if (error.status === 401 || error.status === 403) return `admin token missing/wrong — ${error.code}: ${error.message}`;
    if (error.status === 0) return error.message;
    return `${error.code}: ${error.message} (HTTP ${error.status})`;
  }
  return error instanceof Error ? error.message : String(error);
}

// ---------------------------------------------------------------------------
// State

/** @type {{ summary: any, repos: { name: string, state: string, sort: string, cursor: string | null, previous: (string | null)[], next: string | null }, rendered: Map<string, string>, refreshing: boolean, again: boolean, timer: number | undefined, messageTimer: number | undefined }} */
const state = {
  summary: null,
  repos: { name: "", state: "", sort: "repository:asc", cursor: null, previous: [], next: null },
  /** Per part of the page, the data it was last drawn from (unchanged data is not redrawn, so focus and selection survive a refresh). */
  rendered: new Map(),
  refreshing: false,
  again: false,
  timer: undefined,
  messageTimer: undefined,
};

/**
 * Redraws a part of the page only when its data changed.
 * @param {string} key
 * @param {unknown} data
 * @param {() => void} draw
 */
function drawIfChanged(key, data, draw) {
  const json = JSON.stringify(data);
  if (state.rendered.get(key) === json) return;
  draw();
  state.rendered.set(key, json);
}

/** @returns {{ view: "overview" } | { view: "repo", name: string } | { view: "bad", hash: string }} */
function currentRoute() {
  const hash = location.hash;
  if (!hash.startsWith(REPO_ROUTE)) return { view: "overview" };
  try {
    const name = decodeURIComponent(hash.slice(REPO_ROUTE.length));
    return name === "" ? { view: "overview" } : { view: "repo", name };
  } catch {
    return { view: "bad", hash };
  }
}

// ---------------------------------------------------------------------------
// Header

/** @param {any} summary */
function renderHeader(summary) {
  byId("site-name").textContent = summary.site;
  const role = byId("site-role");
  role.textContent = summary.role;
  role.className = `badge badge-role-${summary.role === "primary" ? "primary" : "secondary"}`;
  role.hidden = false;
  byId("paused-badge").hidden = summary.paused !== true;
  document.title = `${summary.paused ? "PAUSED · " : ""}${summary.site} · georep status`;
  const secondary = summary.role === "secondary";
  byId("pause-controls").hidden = !secondary;
  byId("pause-button").hidden = summary.paused === true;
  byId("resume-button").hidden = summary.paused !== true;
}

// ---------------------------------------------------------------------------
// Overview cards

/**
 * @param {string} title
 * @param {...(Node | string | null | false)} body
 */
function card(title, ...body) {
  return h("article", { className: "card" }, h("h3", { text: title }), ...body);
}

/**
 * A labelled figure of a card.
 * @param {string} label
 * @param {Node | string} value
 * @param {string} [testid]
 * @param {string} [className]
 */
function figure(label, value, testid, className) {
  return h("div", { className: `figure${className ? ` ${className}` : ""}` }, h("dt", { text: label }), h("dd", { testid }, value));
}

/** @param {any} s the site summary */
function renderCards(s) {
  const cards = byId("cards");
  const nodes = [];
  if (s.role === "secondary") {
    nodes.push(
      card(
        "Replication",
        progressBar(s.counts.synced, s.total, s.progress, `Repositories synced at ${s.site}`, "progress"),
        h(
          "dl",
          { className: "figures counts" },
          figure("Pending", formatNumber(s.counts.pending), "count-pending"),
          figure("Started", formatNumber(s.counts.started), "count-started"),
          figure("Synced", formatNumber(s.counts.synced), "count-synced", "ok"),
          figure("Failed", formatNumber(s.counts.failed), "count-failed", s.counts.failed > 0 ? "bad" : undefined),
          figure("Total", formatNumber(s.total), "count-total"),
        ),
      ),
      card(
        "Lag (last hour)",
        h(
          "dl",
          { className: "figures" },
          figure("p50", formatSeconds(s.lag_seconds.p50), "lag-p50"),
          figure("p99", formatSeconds(s.lag_seconds.p99), "lag-p99"),
        ),
        s.lag_seconds.p50 === null ? h("p", { className: "hint", text: "No sync covered a push in the last hour." }) : null,
      ),
      card(
        "Copied",
        h(
          "dl",
          { className: "figures" },
          figure("Bytes", h("span", { title: `${formatNumber(s.bytes_copied)} bytes`, text: formatBytes(s.bytes_copied) }), "bytes-copied"),
          figure("Blobs copied", formatNumber(s.blobs_copied), "blobs-copied"),
          figure("Blobs mounted", formatNumber(s.blobs_mounted), "blobs-mounted"),
        ),
      ),
      card(
        "Activity",
        h(
          "dl",
          { className: "figures" },
          figure("Last event", timeNode(s.last_event_at, { relative: true }), "last-event-at"),
          figure("Last synced", timeNode(s.last_synced_at, { relative: true }), "last-synced-at"),
          figure("Missing on primary", formatNumber(s.missing_on_primary), "missing-on-primary", s.missing_on_primary > 0 ? "warn" : undefined),
          figure("Unremovable tags", formatNumber(s.unremovable_tags), "unremovable-tags", s.unremovable_tags > 0 ? "warn" : undefined),
        ),
      ),
    );
  } else {
    const events = s.events ?? { total: 0, last_id: null, dead_letters: 0 };
    nodes.push(
      card(
        "Event log",
        h(
          "dl",
          { className: "figures" },
          figure("Events recorded", formatNumber(events.total), "events-total"),
          figure("Last event id", events.last_id ?? "—", "events-last-id"),
          figure("Dead letters", formatNumber(events.dead_letters), "events-dead-letters", events.dead_letters > 0 ? "bad" : undefined),
          figure("Last event", timeNode(s.last_event_at, { relative: true }), "last-event-at"),
        ),
      ),
    );
  }
  cards.replaceChildren(...nodes);
}

// ---------------------------------------------------------------------------
// Sites (primary)

/**
 * @param {any} item an entry of GET /api/v1/sites
 */
function siteRow(item) {
  const report = item.report ?? {};
  const counts = report.counts ?? { pending: 0, started: 0, synced: 0, failed: 0 };
  const total = counts.pending + counts.started + counts.synced + counts.failed;
  const secondary = item.role === "secondary";
  const lag = report.lag_seconds ?? { p50: null, p99: null };
  const nameCell = h("th", { scope: "row" }, h("span", { className: "site-name", text: item.site }));
  if (report.paused === true) nameCell.append(" ", h("span", { className: "badge badge-paused", text: "PAUSED", testid: "site-paused" }));
  const healthCell = h("td", {}, badge(item.health, "site-health"));
  if (item.stale) healthCell.append(" ", h("span", { className: "stale-note", text: "no recent report" }));
  const action = secondary
    ? h("button", {
        type: "button",
        testid: "site-resync-failed",
        "aria-label": `Resync the failed repositories of ${item.site}`,
        text: "Resync failed",
        onclick: (/** @type {Event} */ event) =>
          runAction(/** @type {HTMLButtonElement} */ (event.currentTarget), `api/v1/sites/${encodeURIComponent(item.site)}/resync`, { scope: "failed" }, (r) => `${item.site}: ${plural(r?.accepted, "failed repository", "failed repositories")} will be synced again.`),
      })
    : null;
  return h(
    "tr",
    { testid: "site-row", "data-site": item.site, "data-health": item.health, className: item.stale ? "stale" : undefined },
    nameCell,
    h("td", {}, badge(item.role)),
    healthCell,
    h("td", {}, secondary ? progressBar(counts.synced, total, total === 0 ? 1 : counts.synced / total, `Repositories synced at ${item.site}`, "site-progress") : h("span", { className: "muted", text: "source of replication" })),
    h("td", { className: `num${counts.failed > 0 ? " bad" : ""}`, testid: "site-failed", text: secondary ? formatNumber(counts.failed) : "—" }),
    h("td", { className: "num", testid: "site-lag", text: secondary ? `${formatSeconds(lag.p50)} / ${formatSeconds(lag.p99)}` : "—" }),
    h("td", { className: "num", text: secondary ? formatBytes(report.bytes_copied) : "—" }),
    h("td", {}, timeNode(report.last_event_at, { relative: true })),
    h("td", {}, timeNode(item.last_seen_at, { relative: true, testid: "site-last-seen" })),
    h("td", {}, action),
  );
}

async function refreshSites() {
  const error = byId("sites-error");
  try {
    const data = await api("api/v1/sites");
    setNotice(error, null);
    // Relative times change every refresh, so the rows are always redrawn (they hold no focusable state but the button).
    const body = byId("sites-body");
    const focused = document.activeElement instanceof HTMLElement && body.contains(document.activeElement) ? document.activeElement.closest("tr")?.dataset.site : undefined;
    body.replaceChildren(...(data.items.length === 0 ? [h("tr", {}, h("td", { colspan: "10", className: "empty", text: "No site has reported yet." }))] : data.items.map(siteRow)));
    if (focused !== undefined) /** @type {HTMLElement | null} */ (body.querySelector(`tr[data-site="${CSS.escape(focused)}"] button`))?.focus();
  } catch (e) {
    setNotice(error, `Cannot load the sites: ${describeError(e)}`);
  }
}

// ---------------------------------------------------------------------------
// Failing repositories (secondary)

/** @param {any} row a RepositoryRow */
function failedRow(row) {
  return h(
    "tr",
    { testid: "failed-row", "data-repository": row.repository },
    h("th", { scope: "row" }, repoLink(row.repository)),
    h("td", { className: "num", text: formatNumber(row.retry_count) }),
    h("td", {}, timeNode(row.retry_at)),
    h("td", {}, h("pre", { className: "error-text", testid: "failed-error", text: row.last_sync_failure ?? "(no message recorded)" })),
    h(
      "td",
      {},
      h("button", {
        type: "button",
        testid: "resync-button",
        "aria-label": `Resync ${row.repository}`,
        text: "Resync",
        onclick: (/** @type {Event} */ event) => resyncRepository(/** @type {HTMLButtonElement} */ (event.currentTarget), row.repository),
      }),
    ),
  );
}

async function refreshFailed() {
  const error = byId("failed-error");
  try {
    const data = await api(`api/v1/repositories?state=failed&limit=${FAILED_LIMIT}`);
    setNotice(error, null);
    drawIfChanged("failed", data, () => {
      byId("failed-body").replaceChildren(...data.items.map(failedRow));
      byId("failed-table").hidden = data.items.length === 0;
      byId("failed-empty").hidden = data.items.length !== 0;
      byId("failed-more").hidden = data.next_cursor === null;
      byId("resync-failed-button").hidden = data.items.length === 0;
    });
  } catch (e) {
    setNotice(error, `Cannot load the failing repositories: ${describeError(e)}`);
  }
}

// ---------------------------------------------------------------------------
// Repositories table (secondary)

/** @param {any} row a RepositoryRow */
function repoRow(row) {
  const behind = Number(row.synced_generation) < Number(row.pending_generation);
  return h(
    "tr",
    { testid: "repo-row", "data-repository": row.repository, "data-state": row.state },
    h("th", { scope: "row" }, repoLink(row.repository), row.missing_on_primary ? h("span", { className: "badge badge-warn", text: "missing on primary" }) : null),
    h("td", {}, badge(row.state, "repo-state")),
    h("td", { className: `num${behind ? " warn" : ""}`, text: `${row.synced_generation} / ${row.pending_generation}` }),
    h("td", {}, timeNode(row.last_synced_at)),
    h("td", {}, timeNode(row.last_event_at)),
    h("td", { className: "num", text: formatNumber(row.retry_count) }),
    h("td", { className: "num", text: formatBytes(row.bytes_copied) }),
  );
}

function reposQuery() {
  const r = state.repos;
  const [sort, order] = r.sort.split(":");
  const q = new URLSearchParams({ sort: sort ?? "repository", order: order ?? "asc", limit: String(PAGE_SIZE) });
  if (r.name !== "") q.set("name", r.name);
  if (r.state !== "") q.set("state", r.state);
  if (r.cursor !== null) q.set("cursor", r.cursor);
  return `api/v1/repositories?${q.toString()}`;
}

async function refreshRepos() {
  const error = byId("repos-error");
  const r = state.repos;
  try {
    let data;
    try {
      data = await api(reposQuery());
    } catch (e) {
      // A page cursor can go bad (the service restarted with another format): start again from the first page.
      if (!(e instanceof ApiError && e.status === 400 && r.cursor !== null)) throw e;
      r.cursor = null;
      r.previous = [];
      data = await api(reposQuery());
    }
    setNotice(error, null);
    r.next = data.next_cursor;
    drawIfChanged("repos", { query: reposQuery(), data }, () => {
      byId("repos-body").replaceChildren(...data.items.map(repoRow));
      byId("repos-empty").hidden = data.items.length !== 0;
    });
    /** @type {HTMLButtonElement} */ (byId("repos-prev")).disabled = r.previous.length === 0;
    /** @type {HTMLButtonElement} */ (byId("repos-next")).disabled = r.next === null;
    byId("repos-page").textContent = `Page ${r.previous.length + 1}`;
  } catch (e) {
    setNotice(error, `Cannot load the repositories: ${describeError(e)}`);
  }
}

/** Filters changed: back to the first page. */
function resetRepoPaging() {
  state.repos.cursor = null;
  state.repos.previous = [];
  state.repos.next = null;
}

// ---------------------------------------------------------------------------
// Repository detail (secondary)

/**
 * @param {string} label
 * @param {Node | string} value
 */
function field(label, value) {
  return h("div", { className: "field" }, h("dt", { text: label }), h("dd", {}, value));
}

/** @param {any} tag */
function tagRow(tag) {
  const note = tag.in_sync ? "in sync" : tag.primary_digest === null ? "only on the secondary" : tag.secondary_digest === null ? "missing on the secondary" : "drift: digests differ";
  return h(
    "tr",
    { testid: "tag-row", "data-tag": tag.tag, "data-in-sync": String(tag.in_sync), className: tag.in_sync ? undefined : "drift" },
    h("th", { scope: "row" }, h("code", { text: tag.tag })),
    h("td", {}, digestNode(tag.primary_digest)),
    h("td", {}, digestNode(tag.secondary_digest)),
    h("td", {}, h("span", { className: tag.in_sync ? "ok" : "drift-note", testid: "tag-sync", text: `${tag.in_sync ? "✓" : "✗"} ${note}` })),
  );
}

/** @param {any} s a recent sync */
function syncRow(s) {
  return h(
    "tr",
    { testid: "sync-row", className: s.outcome === "failed" ? "failed" : undefined },
    h("td", {}, timeNode(s.finished_at)),
    h("td", {}, badge(s.outcome)),
    h("td", { text: s.reason ?? "—" }),
    h("td", { className: "num", text: String(s.generation) }),
    h("td", { className: "num", text: formatDuration(s.duration_ms) }),
    h("td", { className: "num", text: formatBytes(s.bytes_copied) }),
    h("td", { className: "num", text: `${formatNumber(s.blobs_copied)} / ${formatNumber(s.blobs_mounted)}` }),
    h("td", {}, s.error === null || s.error === undefined ? h("span", { className: "muted", text: "—" }) : h("pre", { className: "error-text", text: s.error })),
  );
}

/** @param {any} detail GET /api/v1/repositories/<name> */
function renderDetail(detail) {
  const row = detail.repository;
  const stateBadge = byId("detail-state");
  stateBadge.textContent = row.state;
  stateBadge.className = `badge badge-${row.state}`;
  stateBadge.hidden = false;
  const unremovable = Array.isArray(row.unremovable_tags) ? row.unremovable_tags : [];
  byId("detail-fields").replaceChildren(
    field("State", row.state),
    field("Generation synced / wanted", `${row.synced_generation} / ${row.pending_generation}`),
    field("Retries", formatNumber(row.retry_count)),
    field("Next retry", timeNode(row.retry_at)),
    field("Last synced", timeNode(row.last_synced_at)),
    field("Last event", timeNode(row.last_event_at)),
    field("Updated", timeNode(row.updated_at)),
    field("Verified", timeNode(row.verified_at)),
    field("Checksum", row.verification_checksum === null ? h("span", { className: "muted", text: "—" }) : h("code", { className: "digest", text: row.verification_checksum })),
    field("Last sync took", formatDuration(row.last_duration_ms)),
    field("Copied", `${formatBytes(row.bytes_copied)} · ${formatNumber(row.blobs_copied)} blobs copied · ${formatNumber(row.blobs_mounted)} mounted`),
    field("Missing on primary", row.missing_on_primary ? "yes: the next sync removes it here" : "no"),
    field(
      "Unremovable tags",
      unremovable.length === 0
        ? "none"
        : h("ul", { className: "plain" }, ...unremovable.map((/** @type {any} */ t) => h("li", {}, h("code", { text: String(t?.tag ?? t) }), t?.reason ? `: ${t.reason}` : ""))),
    ),
  );
  const failure = byId("detail-failure");
  failure.textContent = row.last_sync_failure ?? "none";
  failure.classList.toggle("muted", row.last_sync_failure === null);

  setNotice(byId("tags-error"), detail.tags_error === null ? null : `Tags could not be compared: ${detail.tags_error}`);
  const drift = detail.tags.filter((/** @type {any} */ t) => !t.in_sync).length;
  const driftCount = byId("drift-count");
  driftCount.textContent = drift === 0 ? "" : `${drift} out of sync`;
  driftCount.hidden = drift === 0;
  byId("tags-body").replaceChildren(...detail.tags.map(tagRow));
  byId("tags-empty").hidden = detail.tags.length !== 0 || detail.tags_error !== null;
  byId("syncs-body").replaceChildren(...detail.recent_syncs.map(syncRow));
  byId("syncs-empty").hidden = detail.recent_syncs.length !== 0;
  byId("detail-body").hidden = false;
}

/** @param {string} name */
async function refreshDetail(name) {
  const error = byId("detail-error");
  try {
    const detail = await api(repoApiPath(name));
    setNotice(error, null);
    byId("detail-resync").hidden = false;
    drawIfChanged(`detail:${name}`, detail, () => renderDetail(detail));
  } catch (e) {
    state.rendered.delete(`detail:${name}`);
    byId("detail-body").hidden = true;
    byId("detail-state").hidden = true;
    byId("detail-resync").hidden = !(e instanceof ApiError && e.status !== 404 && e.status !== 409);
    const text = e instanceof ApiError && e.status === 404 ? `No tracking row for this repository at this site (${e.message}).` : `Cannot load the repository: ${describeError(e)}`;
    setNotice(error, text);
  }
}

// ---------------------------------------------------------------------------
// Actions

/**
 * Shows the outcome of an action for a while.
 * @param {string} text
 * @param {"ok" | "error"} kind
 */
function showMessage(text, kind) {
  const el = byId("action-message");
  el.textContent = text;
  el.className = `notice ${kind === "ok" ? "notice-ok" : "notice-error"}`;
  el.dataset.kind = kind;
  el.hidden = false;
  window.clearTimeout(state.messageTimer);
  state.messageTimer = window.setTimeout(() => {
    el.hidden = true;
  }, kind === "ok" ? 8000 : 20000);
}

/**
 * Sends an admin POST from a button, shows the answer, and refreshes.
 * @param {HTMLButtonElement} button
 * @param {string} path
 * @param {unknown} body undefined for no body
 * @param {(result: any) => string} success
 */
async function runAction(button, path, body, success) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    const result = await api(path, { method: "POST", body, admin: true });
    showMessage(success(result), "ok");
  } catch (e) {
    showMessage(describeError(e), "error");
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
    state.rendered.clear();
    void refresh();
  }
}

/**
 * @param {HTMLButtonElement} button
 * @param {string} name
 */
function resyncRepository(button, name) {
  return runAction(button, `${repoApiPath(name)}/resync`, undefined, () => `Resync of ${name} requested.`);
}

// ---------------------------------------------------------------------------
// Refresh loop

/** Shows the view of the current route. */
function showView() {
  const route = currentRoute();
  byId("overview-view").hidden = route.view !== "overview";
  byId("detail-view").hidden = route.view === "overview";
  if (route.view === "repo") {
    // Nothing of the previous repository stays on screen while this one loads.
    byId("detail-name").textContent = route.name;
    byId("detail-body").hidden = true;
    byId("detail-state").hidden = true;
    setNotice(byId("detail-error"), null);
    state.rendered.clear();
    document.getElementById("main")?.focus({ preventScroll: true });
  } else if (route.view === "bad") {
    byId("detail-name").textContent = route.hash;
    byId("detail-body").hidden = true;
    byId("detail-resync").hidden = true;
    setNotice(byId("detail-error"), "This address does not name a repository (it is not valid percent-encoding).");
  }
}

/** Loads everything the current view shows; a call during a refresh runs once more after it. */
async function refresh() {
  if (state.refreshing) {
    state.again = true;
    return;
  }
  state.refreshing = true;
  try {
    do {
      state.again = false;
      await refreshOnce();
    } while (state.again);
  } finally {
    state.refreshing = false;
  }
}

async function refreshOnce() {
  const loadError = byId("load-error");
  let summary;
  try {
    summary = await api("api/v1/site");
  } catch (e) {
    setNotice(loadError, `Cannot load the site summary: ${describeError(e)}`);
    byId("updated-at").classList.add("outdated");
    return;
  }
  setNotice(loadError, null);
  state.summary = summary;
  renderHeader(summary);
  const route = currentRoute();
  const secondary = summary.role === "secondary";
  if (route.view === "overview") {
    renderCards(summary);
    byId("sites-section").hidden = secondary;
    byId("failed-section").hidden = !secondary;
    byId("repos-section").hidden = !secondary;
    if (secondary) await Promise.all([refreshFailed(), refreshRepos()]);
    else await refreshSites();
  } else if (route.view === "repo") {
    if (secondary) await refreshDetail(route.name);
    else {
      byId("detail-body").hidden = true;
      byId("detail-resync").hidden = true;
      setNotice(byId("detail-error"), "Repository details are kept by the secondary sites: open the dashboard of a secondary.");
    }
  }
  const updated = byId("updated-at");
  const now = new Date();
  updated.textContent = `updated at ${localTime(now)}`;
  updated.setAttribute("title", now.toISOString());
  updated.classList.remove("outdated");
}

function start() {
  const tokenInput = /** @type {HTMLInputElement} */ (byId("admin-token"));
  try {
    tokenInput.value = localStorage.getItem(TOKEN_STORAGE_KEY) ?? "";
  } catch {
    // Storage disabled: the field still works for this page.
  }
  tokenInput.addEventListener("input", () => {
    try {
      if (tokenInput.value === "") localStorage.removeItem(TOKEN_STORAGE_KEY);
      else localStorage.setItem(TOKEN_STORAGE_KEY, tokenInput.value);
    } catch {
      // adminToken() falls back to the field.
    }
  });

  byId("refresh-button").addEventListener("click", () => void refresh());
  byId("pause-button").addEventListener("click", (event) =>
    runAction(/** @type {HTMLButtonElement} */ (event.currentTarget), "api/v1/pause", undefined, () => "Replication paused at this site: nothing is dispatched or copied until it is resumed."),
  );
  byId("resume-button").addEventListener("click", (event) =>
    runAction(/** @type {HTMLButtonElement} */ (event.currentTarget), "api/v1/resume", undefined, () => "Replication resumed at this site."),
  );
  byId("resync-failed-button").addEventListener("click", (event) =>
    runAction(/** @type {HTMLButtonElement} */ (event.currentTarget), "api/v1/resync", { scope: "failed" }, (r) => `${plural(r?.accepted, "failed repository", "failed repositories")} will be synced again.`),
  );
  byId("detail-resync").addEventListener("click", (event) => {
    const route = currentRoute();
    if (route.view === "repo") void resyncRepository(/** @type {HTMLButtonElement} */ (event.currentTarget), route.name);
  });

  const filter = /** @type {HTMLInputElement} */ (byId("repo-filter"));
  /** @type {number | undefined} */
  let debounce;
  filter.addEventListener("input", () => {
    window.clearTimeout(debounce);
    debounce = window.setTimeout(() => {
      if (filter.value === state.repos.name) return;
      state.repos.name = filter.value;
      resetRepoPaging();
      void refresh();
    }, 250);
  });
  byId("repos-filters").addEventListener("submit", (event) => event.preventDefault());
  const stateSelect = /** @type {HTMLSelectElement} */ (byId("repo-state"));
  stateSelect.addEventListener("change", () => {
    state.repos.state = stateSelect.value;
    resetRepoPaging();
    void refresh();
  });
  const sortSelect = /** @type {HTMLSelectElement} */ (byId("repo-sort"));
  sortSelect.addEventListener("change", () => {
    state.repos.sort = sortSelect.value;
    resetRepoPaging();
    void refresh();
  });
  byId("repos-next").addEventListener("click", () => {
    if (state.repos.next === null) return;
    state.repos.previous.push(state.repos.cursor);
    state.repos.cursor = state.repos.next;
    void refresh();
  });
  byId("repos-prev").addEventListener("click", () => {
    if (state.repos.previous.length === 0) return;
    state.repos.cursor = state.repos.previous.pop() ?? null;
    void refresh();
  });

  window.addEventListener("hashchange", () => {
    showView();
    void refresh();
  });
  showView();
  void refresh();
  state.timer = window.setInterval(() => {
    if (!document.hidden) void refresh();
  }, REFRESH_MS);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) void refresh();
  });
}

start();
