import { describe, expect, it } from "vitest";
import {
  createProgress,
  displayWidth,
  formatBytes,
  formatDuration,
  formatSeconds,
  formatTime,
  palette,
  renderFields,
  renderTable,
  shortDigest,
  truncate,
} from "../src/render.js";
import { Capture } from "./helpers.js";

describe("renderTable", () => {
  it("aligns columns, right-aligns numbers, leaves no trailing spaces", () => {
    const text = renderTable(
      [{ header: "REPOSITORY" }, { header: "COUNT", align: "right" }, { header: "NOTE" }],
      [
        ["team/app", "7", ""],
        ["a", "1234", "long note"],
      ],
    );
    expect(text).toBe(["REPOSITORY  COUNT  NOTE", "team/app        7", "a            1234  long note", ""].join("\n"));
  });

  it("cuts cells at maxWidth with an ellipsis", () => {
    const text = renderTable([{ header: "A" }, { header: "B", maxWidth: 5 }], [["x", "abcdefgh"]]);
    expect(text.split("\n")[1]).toBe("x  abcd…");
  });

  it("measures coloured cells by their visible width", () => {
    const { red } = palette(true);
    const text = renderTable([{ header: "STATE", color: (t) => (t === "failed" ? red(t) : t) }, { header: "N" }], [
      ["failed", "1"],
      ["ok", "2"],
    ]);
    const lines = text.split("\n");
    expect(lines[1]).toBe("\u001b[31mfailed\u001b[0m  1");
    expect(lines[2]).toBe("ok      2");
    expect(displayWidth(lines[1]!)).toBe(displayWidth(lines[2]!));
  });

  it("styles the header text but not its padding, so lines still end without spaces", () => {
    const { bold } = palette(true);
    const text = renderTable([{ header: "A" }, { header: "NOTE" }], [["x", "a long note"]], { headerStyle: bold });
    expect(text.split("\n")[0]).toBe("\u001b[1mA\u001b[0m  \u001b[1mNOTE\u001b[0m");
  });

  it("renders an empty table as its header and nothing for no columns", () => {
    expect(renderTable([{ header: "A" }, { header: "B" }], [])).toBe("A  B\n");
    expect(renderTable([], [["x"]])).toBe("");
  });

  it("fills missing cells", () => {
    expect(renderTable([{ header: "A" }, { header: "B" }], [["x"]])).toBe("A  B\nx\n");
  });
});

describe("renderFields and palette", () => {
  it("pads keys to one width", () => {
    expect(renderFields([["site", "primary"], ["last event", "-"]])).toBe("site        primary\nlast event  -\n");
    expect(renderFields([])).toBe("");
  });

  it("colours only when enabled", () => {
    expect(palette(false).red("x")).toBe("x");
    expect(palette(true).green("x")).toBe("\u001b[32mx\u001b[0m");
  });
});

describe("formatting", () => {
  it.each([
    [formatTime("2026-11-26T17:00:01.123Z"), "2026-11-26 17:00:01Z"],
    [formatTime(null), "-"],
    [formatTime("not a time"), "not a time"],
    [formatBytes(0), "0 B"],
    [formatBytes(1023), "1023 B"],
    [formatBytes(1536), "1.5 KiB"],
    [formatBytes(200 * 1024 * 1024), "200 MiB"],
    [formatBytes(null), "-"],
    [formatDuration(12), "12 ms"],
    [formatDuration(1234), "1.2 s"],
    [formatDuration(185_000), "3 min 5 s"],
    [formatDuration(null), "-"],
    [formatSeconds(0.4123), "0.41 s"],
    [formatSeconds(null), "-"],
    [shortDigest(`sha256:${"ab".repeat(32)}`), "sha256:abababababab"],
    [shortDigest(null), "-"],
    [truncate("abc", 3), "abc"],
    [truncate("abcd", 3), "ab…"],
  ])("%s", (actual, expected) => {
    expect(actual).toBe(expected);
  });
});

describe("createProgress", () => {
  it("redraws a bar in place on a terminal and clears it at the end", () => {
    const stream = new Capture(true, 80);
    const progress = createProgress({ stream, total: 4, label: "verify" });
    progress.tick("team/a");
    progress.tick("team/b");
    expect(stream.text).toBe(`\r\u001b[2Kverify [######------------------] 1/4  team/a\r\u001b[2Kverify [############------------] 2/4  team/b`);
    progress.done();
    expect(stream.text.endsWith("\r\u001b[2K")).toBe(true);
    expect(stream.text).not.toContain("\n");
  });

  it("fits the bar to the terminal width, assuming 80 columns when a pty reports none", () => {
    for (const [columns, width] of [[40, 39], [0, 79]] as const) {
      const stream = new Capture(true, columns);
      createProgress({ stream, total: 1, label: "verify" }).tick(`team/${"x".repeat(100)}`);
      const drawn = stream.text.replace("\r\u001b[2K", "");
      expect([...drawn].length).toBe(width);
      expect(drawn.endsWith("…")).toBe(true);
    }
  });

  it("writes plain lines at most every interval elsewhere, and the final count", () => {
    const stream = new Capture(false);
    let now = 0;
    const progress = createProgress({ stream, total: 10, label: "verify", intervalMs: 1000, now: () => now });
    for (let i = 0; i < 10; i++) {
      now += 300;
      progress.tick(`r${i}`);
    }
    progress.done();
    // ticks at 300…3000 ms: a line at 1200 (4 done), 2400 (8 done), then the final one
    expect(stream.text).toBe("verify: 4/10 (40%)\nverify: 8/10 (80%)\nverify: 10/10 (100%)\n");
    expect(stream.text).not.toContain("\u001b");
  });
});
