import { describe, expect, it } from "vitest";
import {
  STREAMS,
  SubjectError,
  decodeSubjectToken,
  encodeSubjectToken,
  geoEventSubject,
  registryEventDeadLetterSubject,
  registryEventSubject,
  repositoryFromSubject,
  resyncSubject,
  syncDoneSubject,
  siteStatusSubject,
  transferJobSubject,
} from "../../src/index.js";

describe("encodeSubjectToken / decodeSubjectToken", () => {
  const cases: { input: string; encoded: string }[] = [
    { input: "alpine", encoded: "alpine" },
    { input: "library/alpine", encoded: "library/alpine" },
    { input: "my.org/my.app", encoded: "my%2Eorg/my%2Eapp" },
    { input: "a*b>c", encoded: "a%2Ab%3Ec" },
    { input: "with space\tand\nnewline", encoded: "with%20space%09and%0Anewline" },
    { input: "100%", encoded: "100%25" },
    { input: "%2E", encoded: "%252E" },
    { input: "ünïcødé", encoded: "%C3%BCn%C3%AFc%C3%B8d%C3%A9" },
    { input: "a__b--c_d", encoded: "a__b--c_d" },
    { input: ">", encoded: "%3E" },
    { input: "x\u007f", encoded: "x%7F" },
  ];

  it.each(cases)("encodes $input as $encoded and back", ({ input, encoded }) => {
    const token = encodeSubjectToken(input);
    expect(token).toBe(encoded);
    expect(token).not.toMatch(/[.*>\s]/);
    expect(decodeSubjectToken(token)).toBe(input);
  });

  it("round-trips every printable ASCII character and a few astral ones", () => {
    let all = "";
    for (let c = 0x20; c < 0x7f; c++) all += String.fromCharCode(c);
    all += "😀𝄞";
    const token = encodeSubjectToken(all);
    expect(token).not.toMatch(/[.*>\s]/);
    expect(decodeSubjectToken(token)).toBe(all);
  });

  const bad: { token: string; why: string }[] = [
    { token: "", why: "empty" },
    { token: "a.b", why: "dot" },
    { token: "a b", why: "space" },
    { token: "a*", why: "wildcard" },
    { token: "%", why: "truncated escape" },
    { token: "%2", why: "truncated escape" },
    { token: "%2e", why: "lowercase hex" },
    { token: "%41", why: "non-canonical escape of a literal" },
    { token: "%C3", why: "invalid utf-8" },
    { token: "é", why: "raw non-ascii" },
  ];

  it.each(bad)("rejects $token ($why)", ({ token }) => {
    expect(() => decodeSubjectToken(token)).toThrow(SubjectError);
  });

  it("refuses to encode the empty string", () => {
    expect(() => encodeSubjectToken("")).toThrow(SubjectError);
    try {
      encodeSubjectToken("");
    } catch (err) {
      expect((err as SubjectError).code).toBe("SCHEMA_ERR_SUBJECT");
    }
  });
});

describe("subject builders", () => {
  const cases: { name: string; got: () => string; want: string }[] = [
    { name: "registry event", got: () => registryEventSubject("push", "my.org/app"), want: "georep.registry.events.push.my%2Eorg/app" },
    { name: "geo event", got: () => geoEventSubject("repository_delete", "a/b"), want: "georep.geo.events.repository_delete.a/b" },
    { name: "transfer job", got: () => transferJobSubject("lib/x.y"), want: "georep.transfer.jobs.lib/x%2Ey" },
    { name: "resync", got: () => resyncSubject("eu-west"), want: "georep.eu-west.resync" },
    { name: "sync done", got: () => syncDoneSubject("eu-west"), want: "georep.eu-west.syncs.done" },
    { name: "site status", got: () => siteStatusSubject("site_2"), want: "georep.sites.site_2.status" },
    {
      name: "dead letter",
      got: () => registryEventDeadLetterSubject("georep.registry.events.push.a%2Eb"),
      want: "georep.dlq.registry.events.push.a%2Eb",
    },
  ];
  it.each(cases)("$name", ({ got, want }) => {
    expect(got()).toBe(want);
  });

  it.each(["", "Bad", "a.b", "a b", "*", "-x", "x".repeat(64)])("rejects site name %j", (site) => {
    expect(() => resyncSubject(site)).toThrow(SubjectError);
    expect(() => syncDoneSubject(site)).toThrow(SubjectError);
    expect(() => siteStatusSubject(site)).toThrow(SubjectError);
  });

  it("rejects actions that are not a plain word", () => {
    expect(() => registryEventSubject("pu.sh", "a")).toThrow(SubjectError);
    expect(() => geoEventSubject("*", "a")).toThrow(SubjectError);
  });

  it("builds subjects that the stream definitions capture", () => {
    const matches = (pattern: string, subject: string): boolean => {
      const p = pattern.split(".");
      const s = subject.split(".");
      for (let i = 0; i < p.length; i++) {
        if (p[i] === ">") return s.length > i;
        if (p[i] !== "*" && p[i] !== s[i]) return false;
      }
      return p.length === s.length;
    };
    expect(matches(STREAMS.REGISTRY_EVENTS.subjects[0], registryEventSubject("delete", "x.y"))).toBe(true);
    expect(matches(STREAMS.GEO_EVENTS.subjects[0], geoEventSubject("push", "x.y"))).toBe(true);
    expect(matches(STREAMS.TRANSFER_JOBS.subjects[0], transferJobSubject("x.y"))).toBe(true);
    expect(matches(STREAMS.REGISTRY_EVENTS_DLQ.subjects[0], registryEventDeadLetterSubject(registryEventSubject("push", "x")))).toBe(true);
    // No two streams may capture the same subject.
    expect(matches(STREAMS.REGISTRY_EVENTS.subjects[0], registryEventDeadLetterSubject(registryEventSubject("push", "x")))).toBe(false);
    expect(STREAMS.TRANSFER_JOBS.retention).toBe("workqueue");
  });

  it.each([
    registryEventSubject("push", "my.org/app.x"),
    geoEventSubject("mount", "my.org/app.x"),
    transferJobSubject("my.org/app.x"),
    registryEventDeadLetterSubject(registryEventSubject("push", "my.org/app.x")),
  ])("repositoryFromSubject(%s)", (subject) => {
    expect(repositoryFromSubject(subject)).toBe("my.org/app.x");
  });

  it.each(["georep.transfer.jobs", "georep.registry.events.push", "georep.sites.a.status", "other.x.y"])(
    "repositoryFromSubject rejects %s",
    (subject) => {
      expect(() => repositoryFromSubject(subject)).toThrow(SubjectError);
    },
  );
});
