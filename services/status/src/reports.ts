/**
 * Site status reports over core NATS (docs/status-api.md, "Sites"): this
 * site publishes its SiteStatusReport on `georep.sites.<site>.status` every
 * interval; every status service subscribes to `georep.sites.*.status`,
 * keeps the newest valid report per site with the time it arrived, and
 * calls a site stale when nothing arrived for `staleAfterMs`.
 */
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { SUBJECTS, SiteStatusReport, decodeJson, encodeJson, siteStatusSubject } from "@georep/schema";
import type { SiteRole } from "@georep/schema";
import type { Logger } from "@georep/runtime";
import type { Metrics } from "./metrics.js";

/** Health of a site in the sites view. */
export const SITE_HEALTH = { OK: "ok", FAILING: "failing", STALE: "stale" } as const;
/** One of {@link SITE_HEALTH}. */
export type SiteHealth = (typeof SITE_HEALTH)[keyof typeof SITE_HEALTH];

/** One site of `GET /api/v1/sites`. */
export interface SiteEntry {
  readonly site: string;
  readonly role: SiteRole;
  readonly last_seen_at: string;
  readonly stale: boolean;
  readonly health: SiteHealth;
  readonly report: SiteStatusReport;
}

/** Options of {@link createSiteReports}. */
export interface SiteReportsOptions {
  readonly nc: NatsConnection;
  /** This site: its reports go to `georep.sites.<site>.status`. */
  readonly site: string;
  readonly intervalMs: number;
  readonly staleAfterMs: number;
  /** Builds this site's report (reads Postgres); a failure skips one publication. */
  readonly buildReport: () => Promise<SiteStatusReport>;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Clock, for tests. */
  readonly now?: () => number;
}

/** Published and received site reports; see {@link createSiteReports}. */
export interface SiteReports {
  /** Subscribes, then publishes at once and every interval. */
  start(): Promise<void>;
  /** Stops publishing and unsubscribes. Idempotent. */
  stop(): Promise<void>;
  /** Builds and publishes this site's report now; `undefined` when it could not be built. */
  publishNow(): Promise<SiteStatusReport | undefined>;
  /** Every known site, sorted by name. */
  list(): SiteEntry[];
  /** One site, or `undefined` when no report of it ever arrived. */
  get(site: string): SiteEntry | undefined;
  /** Known sites per health, for the metrics gauge. */
  healthCounts(): Record<SiteHealth, number>;
}

interface Known {
  readonly report: SiteStatusReport;
  readonly seenAt: number;
}

/** The site token of `georep.sites.<site>.status`. */
function siteOfSubject(subject: string): string | undefined {
  const parts = subject.split(".");
  return parts.length === 4 && parts[0] === "georep" && parts[1] === "sites" && parts[3] === "status" ? parts[2] : undefined;
}

/** Creates the publisher and the directory; nothing happens until `start()`. */
export function createSiteReports(options: SiteReportsOptions): SiteReports {
  const { nc, site, metrics } = options;
  const logger = options.logger.child({ component: "reports" });
  const now = options.now ?? Date.now;
  const sites = new Map<string, Known>();
  let sub: Subscription | undefined;
  let timer: NodeJS.Timeout | undefined;
  let loop: Promise<void> | undefined;
  let running = false;
  let publishing: Promise<SiteStatusReport | undefined> | undefined;
  let queued: Promise<SiteStatusReport | undefined> | undefined;

  /**
   * Keeps `report` unless a newer one of that site arrived recently (two
   * replicas of one site's status service both report; a late message of
   * one must not replace the other's newer report). A site whose clock went
   * back is taken at its word once its last report is stale.
   */
  function remember(report: SiteStatusReport): void {
    const known = sites.get(report.site);
    const newer = known !== undefined && Date.parse(known.report.reported_at) > Date.parse(report.reported_at);
    if (newer && now() - known.seenAt <= options.staleAfterMs) return;
    sites.set(report.site, { report, seenAt: now() });
  }

  function entryOf(name: string, known: Known): SiteEntry {
    const stale = now() - known.seenAt > options.staleAfterMs;
    const health: SiteHealth = stale ? "stale" : known.report.counts.failed > 0 ? "failing" : "ok";
    return { site: name, role: known.report.role, last_seen_at: new Date(known.seenAt).toISOString(), stale, health, report: known.report };
  }

  async function publishOnce(): Promise<SiteStatusReport | undefined> {
    let report: SiteStatusReport;
    try {
      report = await options.buildReport();
    } catch (err) {
      metrics.inc("reportsPublished", ["error"]);
      logger.warn({ err }, "cannot build this site's status report; skipped");
      return undefined;
    }
    // This site is known directly, whether or not NATS delivers its own report back.
    remember(report);
    try {
      nc.publish(siteStatusSubject(site), encodeJson(SiteStatusReport, report));
      metrics.inc("reportsPublished", ["ok"]);
    } catch (err) {
      metrics.inc("reportsPublished", ["error"]);
      logger.warn({ err }, "cannot publish this site's status report");
    }
    return report;
  }

  /**
   * One build at a time, so a slow database does not pile up report
   * queries; a call during a build gets one more build after it (the state
   * may have changed since that build read it, e.g. a pause).
   */
  function publishNow(): Promise<SiteStatusReport | undefined> {
    if (publishing !== undefined) {
      queued ??= publishing.then(() => {
        queued = undefined;
        return publishNow();
      });
      return queued;
    }
    publishing = publishOnce().finally(() => {
      publishing = undefined;
    });
    return publishing;
  }

  function schedule(): void {
    if (!running) return;
    timer = setTimeout(() => {
      void publishNow().finally(schedule);
    }, options.intervalMs);
  }

  async function receive(subscription: Subscription): Promise<void> {
    for await (const message of subscription) {
      const decoded = decodeJson(SiteStatusReport, message.data);
      const subjectSite = siteOfSubject(message.subject);
      if (!decoded.ok || decoded.value.site !== subjectSite) {
        metrics.inc("reportsReceived", ["invalid"]);
        logger.debug(
          { subject: message.subject, problems: decoded.ok ? [{ path: "/site", message: "does not match the subject" }] : decoded.problems },
          "invalid site status report ignored",
        );
        continue;
      }
      metrics.inc("reportsReceived", ["valid"]);
      remember(decoded.value);
    }
  }

  return {
    async start() {
      if (running) return;
      running = true;
      sub = nc.subscribe(SUBJECTS.SITE_STATUS_ALL);
      loop = receive(sub).catch((err: unknown) => {
        logger.error({ err }, "site report subscription failed");
      });
      // The server knows the subscription before our first report goes out.
      await nc.flush().catch((err: unknown) => {
        logger.warn({ err }, "cannot flush the site report subscription");
      });
      await publishNow();
      schedule();
    },
    async stop() {
      running = false;
      clearTimeout(timer);
      if (sub !== undefined && !sub.isClosed()) sub.unsubscribe();
      await loop;
      await queued;
      await publishing;
    },
    publishNow,
    list() {
      return [...sites.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([name, known]) => entryOf(name, known));
    },
    get(name) {
      const known = sites.get(name);
      return known === undefined ? undefined : entryOf(name, known);
    },
    healthCounts() {
      const counts: Record<SiteHealth, number> = { ok: 0, failing: 0, stale: 0 };
      for (const [name, known] of sites) counts[entryOf(name, known).health]++;
      return counts;
    },
  };
}
