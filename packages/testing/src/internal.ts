/** Process plumbing of the kit, for its own tests and sibling packages' tools. */
export { withFreePorts } from "./ports.js";
export { startServerProcess, stopProcessGroup, groupAlive, registerDir, removeDir, DEFAULT_READY_TIMEOUT_MS, DEFAULT_STOP_TIMEOUT_MS } from "./process.js";
export type { ServerProcess, ServerProcessOptions } from "./process.js";
export { findBinary, postgresBinDir, lookupUser, tailFile, makeServerDir } from "./files.js";
