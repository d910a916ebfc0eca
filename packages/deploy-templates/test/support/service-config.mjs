// Reads one georep service's config schema and loader from its built
// dist/config.js, in a process of its own (the services are not
// dependencies of this package: @georep/testing depends on it).
//
//   node service-config.mjs SERVICE < env.json
//   → {"properties": {"NAME": {"default": …}, …}, "problems": null | [{variable, message}, …]}
//
// With an empty stdin only the properties are printed.
import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";

const SERVICES = {
  ingest: { schema: "IngestConfig", load: "readConfig" },
  "event-log": { schema: "EventLogConfig", load: "loadEventLogConfig" },
  dispatcher: { schema: "DispatcherConfig", load: "loadDispatcherConfig" },
  transfer: { schema: "TransferConfig", load: "loadTransferConfig" },
  status: { schema: "StatusConfig", load: "loadStatusConfig" },
};

const service = process.argv[2];
const entry = SERVICES[service];
if (entry === undefined) throw new Error(`unknown service ${service}`);
const file = fileURLToPath(new URL(`../../../../services/${service}/dist/config.js`, import.meta.url));
if (!existsSync(file)) throw new Error(`${file} is missing: build the services first (pnpm build)`);
const config = await import(pathToFileURL(file).href);
const schema = config[entry.schema];
if (schema?.properties === undefined) throw new Error(`services/${service}/dist/config.js exports no ${entry.schema} schema`);

let input = "";
for await (const chunk of process.stdin) input += chunk;
let problems = null;
if (input.trim() !== "") {
  try {
    config[entry.load](JSON.parse(input));
  } catch (error) {
    problems = Array.isArray(error?.problems) ? error.problems : [{ variable: "(loader)", message: String(error) }];
  }
}
const properties = Object.fromEntries(Object.entries(schema.properties).map(([name, s]) => [name, "default" in s ? { default: s.default } : {}]));
process.stdout.write(JSON.stringify({ properties, problems }));
