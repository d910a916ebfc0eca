#!/usr/bin/env node
// `pnpm bench`: runs every benchmark of the project (packages/*/bench/*.bench.ts
// and services/*/bench/*.bench.ts), one at a time, each in its own process.
// Each prints JSON lines {"bench","value","baseline","ratio","unit","target"},
// the baseline (skopeo) measured in the same run; they pass through as is.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dirname, "..");
const only = process.argv[2];
const benches = [];
for (const group of ["packages", "services"]) {
  const dir = join(root, group);
  if (!existsSync(dir)) continue;
  for (const pkg of readdirSync(dir)) {
    const benchDir = join(dir, pkg, "bench");
    if (!existsSync(benchDir)) continue;
    for (const file of readdirSync(benchDir).sort()) if (file.endsWith(".bench.ts")) benches.push(join(benchDir, file));
  }
}
const selected = only === undefined ? benches : benches.filter((b) => b.includes(only));
if (selected.length === 0) {
  console.error(only === undefined ? "no benchmarks found" : `no benchmark matches "${only}"`);
  process.exit(2);
}
let failed = 0;
for (const bench of selected) {
  console.error(`[bench] ${bench.slice(root.length + 1)}`);
  const result = spawnSync(process.execPath, [bench], { stdio: ["ignore", "inherit", "inherit"] });
  if (result.status !== 0) {
    failed++;
    console.error(`[bench] ${bench.slice(root.length + 1)} failed (exit ${result.status ?? result.signal})`);
  }
}
process.exit(failed === 0 ? 0 : 1);
