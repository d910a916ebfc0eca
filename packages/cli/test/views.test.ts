/** The text views of status, repos, repo and verify, from contract-shaped answers. */
import { describe, expect, it } from "vitest";
import type { RepositoryDetail, RepositoryRow, SiteSummary, SiteView } from "../src/client.js";
import { renderRepository, renderTags } from "../src/commands/repo.js";
import { renderRepositories } from "../src/commands/repos.js";
import { renderSites, renderSummary } from "../src/commands/status.js";
import { renderVerifyReport, verifyReport } from "../src/commands/verify.js";
import { palette } from "../src/render.js";

const plain = palette(false);
const A = `sha256:${"a".repeat(64)}`;
const B = `sha256:${"b".repeat(64)}`;

const row = (repository: string, overrides: Partial<RepositoryRow> = {}): RepositoryRow => ({
  repository,
  state: "synced",
  retry_count: 0,
  retry_at: null,
  last_sync_failure: null,
  last_synced_at: "2026-11-26T17:00:01.000Z",
  last_event_at: "2026-11-26T17:00:00.000Z",
  updated_at: "2026-11-26T17:00:01.000Z",
  pending_generation: 3,
  synced_generation: 3,
  verified_at: null,
  verification_checksum: null,
  bytes_copied: 2048,
  blobs_copied: 2,
  blobs_mounted: 1,
  last_duration_ms: 12,
  missing_on_primary: false,
  unremovable_tags: [],
  ...overrides,
});

const detail = (repository: string, overrides: Partial<RepositoryDetail> = {}): RepositoryDetail => ({
  repository: row(repository),
  tags: [{ tag: "v1", primary_digest: A, secondary_digest: A, in_sync: true }],
  tags_error: null,
  recent_syncs: [],
  ...overrides,
});

describe("verify", () => {
  it("is ok when every tag has the same digest on both sides", () => {
    const report = verifyReport([detail("team/a"), detail("team/b")]);
    expect(report).toEqual({ checked: 2, drifted: [], failed: [], not_compared: [], vanished: [], ok: true });
    expect(renderVerifyReport(report, plain)).toBe("verified 2 repositories: no drift\n");
  });

  it("reports drifted tags (different digests, or a tag on one side only), failed and uncompared repositories", () => {
    const drift = detail("team/drift", {
      tags: [
        { tag: "v1", primary_digest: A, secondary_digest: A, in_sync: true },
        { tag: "v2", primary_digest: A, secondary_digest: B, in_sync: false },
        { tag: "v3", primary_digest: B, secondary_digest: null, in_sync: false },
        { tag: "old", primary_digest: null, secondary_digest: A, in_sync: false },
      ],
    });
    const failed = detail("team/failed", { repository: row("team/failed", { state: "failed", last_sync_failure: "tag v1: blob unknown" }) });
    const unreadable = detail("team/unreadable", { tags: [], tags_error: "primary unreachable: connection refused" });
    const report = verifyReport([detail("team/ok"), drift, failed, unreadable], ["team/gone"]);
    expect(report.ok).toBe(false);
    expect(report.drifted).toEqual([{ repository: "team/drift", tags: drift.tags.slice(1) }]);
    expect(report.failed).toEqual([{ repository: "team/failed", last_sync_failure: "tag v1: blob unknown" }]);
    expect(report.not_compared).toEqual([{ repository: "team/unreadable", tags_error: "primary unreachable: connection refused" }]);
    expect(renderVerifyReport(report, plain)).toBe(
      [
        "REPOSITORY  TAG  PRIMARY              SECONDARY",
        "team/drift  v2   sha256:aaaaaaaaaaaa  sha256:bbbbbbbbbbbb",
        "team/drift  v3   sha256:bbbbbbbbbbbb  -",
        "team/drift  old  -                    sha256:aaaaaaaaaaaa",
        "failed        team/failed: tag v1: blob unknown",
        "not compared  team/unreadable: primary unreachable: connection refused",
        "verified 4 repositories: 1 with drift (3 tags), 1 failed, 1 not compared, 1 gone while verifying",
        "",
      ].join("\n"),
    );
  });
});

describe("repo", () => {
  it("marks drifted tags", () => {
    const text = renderTags(
      [
        { tag: "latest", primary_digest: A, secondary_digest: B, in_sync: false },
        { tag: "v1", primary_digest: A, secondary_digest: A, in_sync: true },
      ],
      plain,
    );
    expect(text).toBe(["TAG     PRIMARY              SECONDARY            SYNC", "latest  sha256:aaaaaaaaaaaa  sha256:bbbbbbbbbbbb  DRIFT", "v1      sha256:aaaaaaaaaaaa  sha256:aaaaaaaaaaaa  ok", ""].join("\n"));
  });

  it("shows the row, the last failure, the tags and the recent syncs", () => {
    const text = renderRepository(
      detail("team/app", {
        repository: row("team/app", { state: "failed", retry_count: 2, retry_at: "2026-11-26T17:05:00.000Z", last_sync_failure: "tag v2: manifest unknown", unremovable_tags: [{ tag: "x", reason: "delete refused" }] }),
        tags: [
          { tag: "v1", primary_digest: A, secondary_digest: A, in_sync: true },
          { tag: "v2", primary_digest: B, secondary_digest: null, in_sync: false },
        ],
        recent_syncs: [
          { started_at: "2026-11-26T17:00:00.000Z", finished_at: "2026-11-26T17:00:01.000Z", outcome: "failed", generation: 3, reason: "event", duration_ms: 1500, bytes_copied: 0, blobs_copied: 0, blobs_mounted: 0, error: "tag v2: manifest unknown" },
        ],
      }),
      plain,
    );
    expect(text).toContain("state            failed (retry 2, next at 2026-11-26 17:05:00Z)");
    expect(text).toContain("unremovable tag  x: delete refused");
    expect(text).toContain("last failure     tag v2: manifest unknown");
    expect(text).toMatch(/v2 +sha256:bbbbbbbbbbbb +- +DRIFT/);
    expect(text).toContain("2 tags, 1 drifted");
    expect(text).toMatch(/2026-11-26 17:00:00Z +failed +event +3 +1\.5 s +0 B +0 +0 +tag v2: manifest unknown/);
  });

  it("says why tags are missing when a registry could not be read", () => {
    const text = renderRepository(detail("team/app", { tags: [], tags_error: "primary unreachable: ECONNREFUSED" }), plain);
    expect(text).toContain("tags could not be compared: primary unreachable: ECONNREFUSED");
    expect(text).toContain("no syncs recorded");
  });
});

describe("repos and status", () => {
  it("lists repositories as a table with the failure cut short", () => {
    const text = renderRepositories([row("team/app"), row("team/broken", { state: "failed", retry_count: 4, last_sync_failure: `x${"y".repeat(100)}` })], plain);
    const lines = text.split("\n");
    expect(lines[0]).toBe("REPOSITORY   STATE   RETRIES  LAST SYNCED            COPIED  LAST FAILURE");
    expect(lines[1]).toBe("team/app     synced        0  2026-11-26 17:00:01Z  2.0 KiB");
    expect(lines[2]).toMatch(/^team\/broken {2}failed {8}4 .* xy+…$/);
    expect([...lines[2]!.split("  ").at(-1)!].length).toBe(60);
  });

  it("summarises a secondary and a primary site", () => {
    const summary: SiteSummary = {
      site: "secondary-1",
      role: "secondary",
      paused: true,
      counts: { pending: 0, started: 0, synced: 12, failed: 1 },
      total: 13,
      progress: 0.923,
      lag_seconds: { p50: 0.41, p99: 1.9 },
      bytes_copied: 123456,
      blobs_copied: 40,
      blobs_mounted: 3,
      last_event_at: "2026-11-26T17:00:00.000Z",
      last_synced_at: null,
      missing_on_primary: 0,
      unremovable_tags: 0,
      events: null,
      generated_at: "2026-11-26T17:00:02.000Z",
    };
    const text = renderSummary(summary, plain);
    expect(text).toContain("site                secondary-1 (secondary)");
    expect(text).toContain("replication         paused");
    expect(text).toContain("repositories        13: 12 synced, 1 failed, 0 pending, 0 started (92.3% synced)");
    expect(text).toContain("lag (last hour)     p50 0.41 s, p99 1.9 s");
    const primary = renderSummary({ ...summary, site: "primary", role: "primary", paused: false, events: { total: 42, last_id: "42", dead_letters: 0 } }, plain);
    expect(primary).toContain("events        42 recorded (last id 42), 0 dead letters");
    expect(primary).not.toContain("repositories");
  });

  it("tabulates the sites view", () => {
    const report = { site: "secondary-1", role: "secondary" as const, counts: { pending: 1, started: 0, synced: 12, failed: 1 }, lag_seconds: { p50: 0.41, p99: null }, bytes_copied: 1024, last_event_at: null, reported_at: "2026-11-26T17:00:00.000Z", paused: false };
    const sites: SiteView[] = [
      { site: "primary", role: "primary", last_seen_at: "2026-11-26T17:00:00.000Z", stale: false, health: "ok", report: { ...report, site: "primary", role: "primary", counts: { pending: 0, started: 0, synced: 0, failed: 0 } } },
      { site: "secondary-1", role: "secondary", last_seen_at: "2026-11-26T17:00:00.000Z", stale: false, health: "failing", report },
    ];
    expect(renderSites(sites, plain).split("\n")).toEqual([
      "SITE         ROLE       HEALTH   PAUSED  PENDING  STARTED  SYNCED  FAILED  LAG P50  LAG P99   COPIED  LAST SEEN",
      "primary      primary    ok       no            0        0       0       0   0.41 s        -  1.0 KiB  2026-11-26 17:00:00Z",
      "secondary-1  secondary  failing  no            1        0      12       1   0.41 s        -  1.0 KiB  2026-11-26 17:00:00Z",
      "",
    ]);
  });
});
