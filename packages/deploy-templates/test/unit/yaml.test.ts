import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { toYaml } from "../../src/index.js";
import type { YamlValue } from "../../src/index.js";

describe("toYaml", () => {
  it.each<[YamlValue, string]>([
    [{ a: "x" }, 'a: "x"\n'],
    [{ a: 1, b: true, c: null }, "a: 1\nb: true\nc: null\n"],
    [{ a: { b: "1" } }, 'a:\n  b: "1"\n'],
    [{ l: ["x", "y"] }, 'l:\n  - "x"\n  - "y"\n'],
    [{ l: [{ a: "1", b: "2" }] }, 'l:\n  - a: "1"\n    b: "2"\n'],
    [{ e: [], m: {} }, "e: []\nm: {}\n"],
    [{ "X-Header": ["v"] }, 'X-Header:\n  - "v"\n'],
    [{ "needs quoting": "yes: no" }, '"needs quoting": "yes: no"\n'],
    [[{ a: ["b"] }], '- a:\n    - "b"\n'],
  ])("%j", (value, expected) => {
    expect(toYaml(value)).toBe(expected);
  });

  it("reads back as the same value: strings stay strings", () => {
    const value = { version: "0.1", n: "5000", on: "yes", nested: [{ k: ["${SECRET}", "a: b", "#x"] }], t: true };
    expect(parse(toYaml(value))).toEqual(value);
  });
});
