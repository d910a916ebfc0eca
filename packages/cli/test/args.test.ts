import { describe, expect, it } from "vitest";
import { DEFAULT_KEYS_DIR, DEFAULT_WAIT_TIMEOUT_SECONDS, parseCommandLine } from "../src/args.js";
import type { Command } from "../src/args.js";
import { UsageError } from "../src/errors.js";

const noGlobals = { url: undefined, site: undefined, token: undefined, json: false, stackFile: undefined };

describe("parseCommandLine: valid command lines", () => {
  const cases: [string[], Command][] = [
    [["status"], { name: "status" }],
    [["repos"], { name: "repos", state: undefined, nameFilter: undefined, limit: undefined }],
    [["repos", "--state", "failed", "--name", "team/", "--limit", "20"], { name: "repos", state: "failed", nameFilter: "team/", limit: 20 }],
    [["repos", "--limit=5"], { name: "repos", state: undefined, nameFilter: undefined, limit: 5 }],
    [["repo", "team/app"], { name: "repo", repository: "team/app" }],
    [["resync", "team/app"], { name: "resync", target: { repository: "team/app" } }],
    [["resync", "--all"], { name: "resync", target: { scope: "all" } }],
    [["resync", "--failed"], { name: "resync", target: { scope: "failed" } }],
    [["pause"], { name: "pause" }],
    [["resume"], { name: "resume" }],
    [["verify"], { name: "verify", repository: undefined }],
    [["verify", "a/b/c"], { name: "verify", repository: "a/b/c" }],
    [["wait", "team/app"], { name: "wait", reference: { repository: "team/app", tag: "latest" }, timeoutSeconds: DEFAULT_WAIT_TIMEOUT_SECONDS }],
    [["wait", "team/app:v1", "--timeout", "5"], { name: "wait", reference: { repository: "team/app", tag: "v1" }, timeoutSeconds: 5 }],
    [["wait", `team/app@sha256:${"a".repeat(64)}`], { name: "wait", reference: { repository: "team/app", digest: `sha256:${"a".repeat(64)}` }, timeoutSeconds: 30 }],
    [["keys", "generate"], { name: "keys-generate", out: DEFAULT_KEYS_DIR, algorithm: "ES256", force: false }],
    [["keys", "generate", "--out", "/tmp/k", "--algorithm", "RS256", "--force"], { name: "keys-generate", out: "/tmp/k", algorithm: "RS256", force: true }],
    [["--help"], { name: "help", topic: undefined }],
    [["-h"], { name: "help", topic: undefined }],
    [["help"], { name: "help", topic: undefined }],
    [["help", "wait"], { name: "help", topic: "wait" }],
    [["wait", "--help"], { name: "help", topic: "wait" }],
    // --help wins over otherwise bad input, so `georep repo --help` works without NAME
    [["repo", "--help"], { name: "help", topic: "repo" }],
  ];
  it.each(cases)("%j", (argv, command) => {
    expect(parseCommandLine(argv)).toEqual({ global: noGlobals, command });
  });

  it("takes global options before or after the command", () => {
    const a = parseCommandLine(["--url", "http://127.0.0.1:8080/", "--json", "--token", "t0k", "repos"]);
    const b = parseCommandLine(["repos", "--url=http://127.0.0.1:8080/", "--token=t0k", "--json"]);
    expect(a).toEqual(b);
    expect(a.global).toEqual({ url: "http://127.0.0.1:8080/", site: undefined, token: "t0k", json: true, stackFile: undefined });
    expect(parseCommandLine(["--site", "secondary-2", "--stack-file", "x/stack.json", "status"]).global).toMatchObject({ site: "secondary-2", stackFile: "x/stack.json" });
  });
});

describe("parseCommandLine: usage errors name the problem", () => {
  const cases: [string[], RegExp][] = [
    [[], /no command given/],
    [["sideways"], /unknown command "sideways"/],
    [["help", "sideways"], /unknown command "sideways"/],
    [["status", "--frobnicate"], /unknown option --frobnicate for "georep status"/],
    [["--frobnicate"], /unknown option --frobnicate/],
    [["repos", "--all"], /option --all belongs to "georep resync", not "georep repos"/],
    [["repos", "--limit"], /option --limit needs a value/],
    [["repos", "--limit", "--json"], /option --limit needs a value/],
    [["repos", "--limit", "0"], /--limit must be a whole number from 1/],
    [["repos", "--limit", "-5"], /--limit must be a whole number from 1/],
    [["repos", "--limit", "ten"], /--limit must be a whole number/],
    [["repos", "--state", "broken"], /--state must be one of pending, started, synced, failed, got "broken"/],
    [["repos", "--name", "x".repeat(256)], /--name must be 1 to 255 characters/],
    [["repos", "extra"], /unexpected argument "extra" for "georep repos"/],
    [["status", "--json=yes"], /option --json takes no value/],
    [["repo"], /"georep repo" needs a repository NAME/],
    [["repo", "Team/App"], /bad repository name: repository name "Team\/App" must be lowercase/],
    [["repo", "a", "b"], /unexpected argument "b"/],
    [["resync"], /needs NAME, --all or --failed/],
    [["resync", "x", "--all"], /takes one of NAME, --all, --failed; got NAME and --all/],
    [["resync", "--all", "--failed"], /got --all and --failed/],
    [["wait"], /"georep wait" needs REPO\[:TAG\|@DIGEST\]/],
    [["wait", "team/app:v1", "--timeout", "0"], /--timeout must be a whole number from 1 to 600, got "0"/],
    [["wait", "team/app:v1", "--timeout", "601"], /--timeout must be a whole number from 1 to 600/],
    [["wait", "team/app:v1", "--timeout", "1.5"], /--timeout must be a whole number/],
    [["wait", "team/app@sha256:abc"], /bad reference "team\/app@sha256:abc": a sha256 digest has 64 lowercase hex digits/],
    [["keys"], /"georep keys" needs a subcommand/],
    [["keys", "rotate"], /unknown subcommand "keys rotate"/],
    [["keys", "generate", "--algorithm", "HS256"], /--algorithm must be ES256 or RS256, got "HS256"/],
    [["keys", "generate", "extra"], /unexpected argument "extra"/],
    [["status", "--url", "127.0.0.1:8080"], /--url must be an http:\/\/ or https:\/\/ URL, got "127.0.0.1:8080"/],
    [["status", "--url", "http://127.0.0.1:1", "--site", "primary"], /--url and --site both choose the service/],
  ];
  it.each(cases)("%j", (argv, message) => {
    let thrown: unknown;
    try {
      parseCommandLine(argv);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(UsageError);
    expect((thrown as UsageError).message).toMatch(message);
    expect((thrown as UsageError).hint ?? (thrown as UsageError).message).not.toBe("");
  });

  it("gives a hint with every unknown command or option", () => {
    for (const argv of [["sideways"], ["status", "--nope"], ["repos", "--all"], ["wait", "UPPER"]]) {
      try {
        parseCommandLine(argv);
        expect.unreachable();
      } catch (error) {
        expect((error as UsageError).hint, argv.join(" ")).toBeTruthy();
      }
    }
  });
});
