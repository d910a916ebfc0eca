import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import {
  DEFAULT_NOTIFICATION_BACKOFF_MS,
  DEFAULT_NOTIFICATION_THRESHOLD,
  DEFAULT_NOTIFICATION_TIMEOUT_MS,
  INGEST_EVENTS_PATH,
  INGEST_BLOB_EVENTS_PATH,
  MANIFEST_EVENT_MEDIA_TYPES,
  ingestBlobNotificationEndpoint,
  ingestNotificationEndpoint,
  registryConfig,
  registryNotificationEndpoints,
} from "../../src/index.js";
import type { RegistryConfigOptions } from "../../src/index.js";

interface Parsed {
  version: string;
  log: { level: string; formatter: string; fields: Record<string, string> };
  storage: Record<string, Record<string, unknown>>;
  http: { addr: string; secret?: string; headers: Record<string, string[]>; debug?: { addr: string; prometheus?: { enabled: boolean; path: string } } };
  auth?: Record<string, Record<string, string>>;
  notifications?: { events: { includereferences: boolean }; endpoints: Record<string, unknown>[] };
}

const token = { realm: "https://registry.example.com/token", service: "registry.primary", issuer: "georep", rootCertBundle: "/run/secrets/signing_cert" };
const render = (options: Partial<RegistryConfigOptions> = {}): Parsed =>
  parse(registryConfig({ addr: ":5000", storage: { filesystem: { rootDirectory: "/var/lib/registry" } }, ...options })) as Parsed;

describe("registryConfig", () => {
  it("filesystem storage with deletes enabled and the in-memory blob descriptor cache, the listener, version 0.1", () => {
    const config = render();
    expect(config.version).toBe("0.1");
    expect(config.storage).toEqual({ filesystem: { rootdirectory: "/var/lib/registry" }, delete: { enabled: true }, cache: { blobdescriptor: "inmemory" } });
    expect(config.http.addr).toBe(":5000");
    expect(config.http.headers).toEqual({ "X-Content-Type-Options": ["nosniff"] });
    expect(config.http.secret).toBeUndefined();
    expect(config.log).toEqual({ level: "info", formatter: "text", fields: { service: "registry" } });
    expect(config.auth).toBeUndefined();
    expect(config.notifications).toBeUndefined();
  });

  it("passes S3 driver parameters through unchanged, with redirects and upload purging as asked", () => {
    const s3 = { region: "eu-west-1", bucket: "images", regionendpoint: "http://minio:9000", secure: false, chunksize: 10485760, rootdirectory: "/georep" };
    const config = render({ storage: { s3 }, disableRedirect: true, uploadPurging: false });
    expect(config.storage).toEqual({ s3, delete: { enabled: true }, cache: { blobdescriptor: "inmemory" }, maintenance: { uploadpurging: { enabled: false } }, redirect: { disable: true } });
  });

  it("leaves the blob descriptor cache out when asked (none)", () => {
    expect(render({ blobDescriptorCache: "none" }).storage).toEqual({ filesystem: { rootdirectory: "/var/lib/registry" }, delete: { enabled: true } });
  });

  it("token auth: realm, service, issuer, rootcertbundle", () => {
    expect(render({ auth: { token } }).auth).toEqual({
      token: { realm: token.realm, service: token.service, issuer: token.issuer, rootcertbundle: token.rootCertBundle },
    });
  });

  it("htpasswd auth", () => {
    expect(render({ auth: { htpasswd: { realm: "georep", path: "/auth/htpasswd" } } }).auth).toEqual({ htpasswd: { realm: "georep", path: "/auth/htpasswd" } });
  });

  it("http secret, debug listener with Prometheus metrics, log format", () => {
    const config = render({ httpSecret: "s3cret", debug: { addr: ":5001", prometheus: true }, log: { level: "warn", formatter: "json" } });
    expect(config.http.secret).toBe("s3cret");
    expect(config.http.debug).toEqual({ addr: ":5001", prometheus: { enabled: true, path: "/metrics" } });
    expect(config.log).toEqual({ level: "warn", formatter: "json", fields: { service: "registry" } });
    expect(render({ debug: { addr: ":5001" } }).http.debug).toEqual({ addr: ":5001" });
  });

  it("notification endpoints: headers as one-element lists, timeout, threshold, backoff, ignores", () => {
    const config = render({
      notifications: [
        {
          name: "georep-ingest",
          url: "http://ingest:8080/events",
          headers: { Authorization: "${NOTIFICATION_SECRET}", "X-Site": "primary" },
          timeoutMs: 5000,
          threshold: 3,
          backoffMs: 1000,
          ignoredMediaTypes: ["application/octet-stream"],
          ignoredActions: ["pull"],
        },
        { url: "http://audit:9000/" },
      ],
    });
    expect(config.notifications?.events).toEqual({ includereferences: true });
    expect(config.notifications?.endpoints).toEqual([
      {
        name: "georep-ingest",
        url: "http://ingest:8080/events",
        headers: { Authorization: ["${NOTIFICATION_SECRET}"], "X-Site": ["primary"] },
        timeout: "5000ms",
        threshold: 3,
        backoff: "1000ms",
        ignoredmediatypes: ["application/octet-stream"],
        ignore: { mediatypes: ["application/octet-stream"], actions: ["pull"] },
      },
      {
        name: "endpoint-2",
        url: "http://audit:9000/",
        headers: {},
        timeout: `${DEFAULT_NOTIFICATION_TIMEOUT_MS}ms`,
        threshold: DEFAULT_NOTIFICATION_THRESHOLD,
        backoff: `${DEFAULT_NOTIFICATION_BACKOFF_MS}ms`,
        ignoredmediatypes: [],
        ignore: { mediatypes: [], actions: [] },
      },
    ]);
  });

  it("merges extraConfig over the generated config, maps key by key", () => {
    const config = render({ httpSecret: "s", extraConfig: { http: { addr: "127.0.0.1:1" }, storage: { cache: { blobdescriptor: "inmemory" } }, log: { fields: { site: "x" } } } });
    expect(config.http.addr).toBe("127.0.0.1:1");
    expect(config.http.secret).toBe("s");
    expect(config.storage.cache).toEqual({ blobdescriptor: "inmemory" });
    expect(config.storage.delete).toEqual({ enabled: true });
    expect(config.log.fields).toEqual({ service: "registry", site: "x" });
  });

  it("puts the header first as comment lines", () => {
    const text = registryConfig({ addr: ":5000", storage: { filesystem: { rootDirectory: "/r" } }, header: "line one\n\nline three" });
    expect(text.startsWith("# line one\n#\n# line three\nversion: ")).toBe(true);
  });
});

describe("registryNotificationEndpoints", () => {
  it("renders exactly the list registryConfig puts under notifications.endpoints", () => {
    const endpoints = [ingestNotificationEndpoint("http://ingest:8080", "${NOTIFICATION_SECRET}"), { url: "http://other/" }];
    const list = parse(registryNotificationEndpoints(endpoints, "a comment")) as unknown;
    expect(list).toEqual(render({ notifications: endpoints }).notifications?.endpoints);
    expect(registryNotificationEndpoints(endpoints, "a comment").startsWith("# a comment\n- name: ")).toBe(true);
  });
});

describe("ingestNotificationEndpoint", () => {
  it("georep's settings: ingest's path, the secret in Authorization, pulls ignored (with a media type, as 2.8 needs)", () => {
    expect(ingestNotificationEndpoint("http://ingest:8080/", "secret")).toEqual({
      name: "georep-ingest",
      url: `http://ingest:8080${INGEST_EVENTS_PATH}`,
      headers: { Authorization: "secret" },
      timeoutMs: 5000,
      backoffMs: 1000,
      ignoredMediaTypes: ["application/octet-stream"],
      ignoredActions: ["pull"],
    });
  });

  it("the blob endpoint: ingest's blob path, only blob pushes (every manifest type, pulls, deletes and mounts ignored)", () => {
    expect(ingestBlobNotificationEndpoint("http://ingest:8080/", "secret")).toEqual({
      name: "georep-ingest-blobs",
      url: `http://ingest:8080${INGEST_BLOB_EVENTS_PATH}`,
      headers: { Authorization: "secret" },
      timeoutMs: 5000,
      backoffMs: 1000,
      ignoredMediaTypes: [...MANIFEST_EVENT_MEDIA_TYPES],
      ignoredActions: ["pull", "delete", "mount"],
    });
    expect(MANIFEST_EVENT_MEDIA_TYPES).toContain("application/vnd.oci.image.index.v1+json");
    expect(MANIFEST_EVENT_MEDIA_TYPES).not.toContain("application/octet-stream");
  });
});
