/**
 * One image copy with @georep/registry-client, in its own process so that its
 * peak RSS is the copy's alone. argv: sourceUrl targetUrl repository tag.
 * Prints one JSON line: { ms, maxRssBytes, bytes }.
 * Plain JavaScript: TypeScript stripping would add its own memory to the measure.
 */
import { copyImage, createRegistryClient } from "../dist/index.js";

const [sourceUrl, targetUrl, repository, tag] = process.argv.slice(2);
if (sourceUrl === undefined || targetUrl === undefined || repository === undefined || tag === undefined) {
  console.error("usage: copy-worker.ts <source url> <target url> <repository> <tag>");
  process.exit(2);
}
const started = performance.now();
const result = await copyImage(
  { client: createRegistryClient({ url: sourceUrl }), repository },
  { client: createRegistryClient({ url: targetUrl }), repository },
  tag,
  { tag },
);
const ms = performance.now() - started;
// resourceUsage().maxRSS is in kilobytes.
console.log(JSON.stringify({ ms, maxRssBytes: process.resourceUsage().maxRSS * 1024, bytes: result.bytes }));
