import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { GlobalOptions } from "../src/args.js";
import { findStackFile, outputSettings, parseStackFile, pickSite, readStackFile, resolveTarget } from "../src/config.js";
import { ConfigError, UsageError } from "../src/errors.js";

const noGlobals: GlobalOptions = { url: undefined, site: undefined, token: undefined, json: false, stackFile: undefined };
const stack = {
  sites: [
    { name: "primary", role: "primary", registry: "http://127.0.0.1:1000", status: "http://127.0.0.1:2000" },
    { name: "secondary-1", role: "secondary", registry: "http://127.0.0.1:1001", status: "http://127.0.0.1:2001/" },
    { name: "secondary-2", role: "secondary", registry: "http://127.0.0.1:1002", status: "http://127.0.0.1:2002" },
  ],
  credentials: { username: "georep", password: "pw" },
  admin_token: "stack-token",
};

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "georep-cli-config-"));
  // root/checkout/.georep/stack.json, and a deep directory under the checkout
  await mkdir(join(root, "checkout", ".georep"), { recursive: true });
  await mkdir(join(root, "checkout", "packages", "x", "src"), { recursive: true });
  await writeFile(join(root, "checkout", ".georep", "stack.json"), JSON.stringify(stack));
  await mkdir(join(root, "elsewhere"), { recursive: true });
  // a .georep directory without stack.json does not count
  await mkdir(join(root, "checkout", "packages", ".georep"), { recursive: true });
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("findStackFile", () => {
  it("finds .georep/stack.json in the directory or the nearest parent", async () => {
    const expected = join(root, "checkout", ".georep", "stack.json");
    expect(await findStackFile(join(root, "checkout"))).toBe(expected);
    expect(await findStackFile(join(root, "checkout", "packages", "x", "src"))).toBe(expected);
    expect(await findStackFile(join(root, "checkout", ".georep"))).toBe(expected);
  });

  it("returns undefined when no parent has one", async () => {
    expect(await findStackFile(join(root, "elsewhere"))).toBeUndefined();
  });
});

describe("resolveTarget", () => {
  const cwd = () => join(root, "checkout", "packages", "x");

  it("defaults to the first secondary, or the primary for status, with stack.json's admin token", async () => {
    expect(await resolveTarget({ global: noGlobals, defaultRole: "secondary", cwd: cwd(), env: {} })).toEqual({
      url: "http://127.0.0.1:2001",
      site: "secondary-1",
      token: "stack-token",
      tokenSource: "stack",
    });
    expect(await resolveTarget({ global: noGlobals, defaultRole: "primary", cwd: cwd(), env: {} })).toMatchObject({ url: "http://127.0.0.1:2000", site: "primary" });
  });

  it("picks --site, and names the known sites for an unknown one", async () => {
    expect(await resolveTarget({ global: { ...noGlobals, site: "secondary-2" }, defaultRole: "primary", cwd: cwd(), env: {} })).toMatchObject({ url: "http://127.0.0.1:2002", site: "secondary-2" });
    const error = await resolveTarget({ global: { ...noGlobals, site: "mars" }, defaultRole: "secondary", cwd: cwd(), env: {} }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).message).toContain('unknown site "mars"');
    expect((error as UsageError).hint).toBe("sites: primary, secondary-1, secondary-2");
  });

  it("prefers --token, then GEOREP_ADMIN_TOKEN, then stack.json", async () => {
    const env = { GEOREP_ADMIN_TOKEN: "env-token" };
    expect(await resolveTarget({ global: { ...noGlobals, token: "flag-token" }, defaultRole: "secondary", cwd: cwd(), env })).toMatchObject({ token: "flag-token", tokenSource: "flag" });
    expect(await resolveTarget({ global: noGlobals, defaultRole: "secondary", cwd: cwd(), env })).toMatchObject({ token: "env-token", tokenSource: "env" });
    expect(await resolveTarget({ global: noGlobals, defaultRole: "secondary", cwd: cwd(), env: { GEOREP_ADMIN_TOKEN: "" } })).toMatchObject({ token: "stack-token", tokenSource: "stack" });
  });

  it("uses --url as given (no stack.json needed, and its token is not sent elsewhere)", async () => {
    const target = await resolveTarget({ global: { ...noGlobals, url: "http://10.0.0.1:9/" }, defaultRole: "secondary", cwd: join(root, "checkout"), env: {} });
    expect(target).toEqual({ url: "http://10.0.0.1:9", site: undefined, token: undefined, tokenSource: "none" });
  });

  it("reads --stack-file relative to the current directory", async () => {
    const target = await resolveTarget({ global: { ...noGlobals, stackFile: "checkout/.georep/stack.json" }, defaultRole: "secondary", cwd: root, env: {} });
    expect(target.site).toBe("secondary-1");
    const missing = await resolveTarget({ global: { ...noGlobals, stackFile: "nope.json" }, defaultRole: "secondary", cwd: root, env: {} }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(UsageError);
    expect((missing as Error).message).toBe(`stack file ${join(root, "nope.json")} does not exist`);
  });

  it("is a usage error without --url and without a stack file", async () => {
    const error = await resolveTarget({ global: noGlobals, defaultRole: "secondary", cwd: join(root, "elsewhere"), env: {} }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).message).toContain("no status service URL");
    expect((error as UsageError).hint).toContain("--url");
  });
});

describe("stack.json content", () => {
  it("names a site without a status URL (a stack from before the status service)", () => {
    const parsed = parseStackFile("s.json", { sites: [{ name: "secondary-1", role: "secondary" }], admin_token: "t" });
    expect(() => pickSite(parsed, undefined, "secondary")).toThrow(ConfigError);
    expect(() => pickSite(parsed, undefined, "secondary")).toThrow('site "secondary-1" in s.json has no status service URL');
    expect(() => pickSite(parsed, undefined, "primary")).toThrow("s.json has no primary site");
  });

  it("refuses malformed files, naming the problem", async () => {
    expect(() => parseStackFile("s.json", [])).toThrow("s.json: not a JSON object");
    expect(() => parseStackFile("s.json", { sites: {} })).toThrow('"sites" is not an array');
    expect(() => parseStackFile("s.json", { sites: [{ role: "primary" }] })).toThrow('sites[0] has no "name"');
    expect(() => parseStackFile("s.json", { sites: [{ name: "x", role: "tertiary" }] })).toThrow('sites[0] ("x") has role "tertiary"');
    const path = join(root, "broken.json");
    await writeFile(path, "{not json");
    await expect(readStackFile(path)).rejects.toThrow(ConfigError);
    await expect(readStackFile(path)).rejects.toThrow(`${path} is not JSON`);
  });
});

describe("outputSettings", () => {
  it.each([
    [true, {}, false, true],
    [false, {}, false, false],
    [true, { NO_COLOR: "1" }, false, false],
    [true, { NO_COLOR: "" }, false, true],
    [true, {}, true, false],
  ])("tty %s env %j json %s → colour %s", (tty, env, json, color) => {
    expect(outputSettings({ json, stdoutIsTTY: tty, env })).toEqual({ json, color });
  });
});
