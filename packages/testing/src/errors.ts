/** Errors of the testing kit: each names the server, the reason and where its log is. */

/** A server did not start or did not become ready; carries the tail of its log. */
export class ServerStartError extends Error {
  override readonly name = "ServerStartError";
  readonly code = "TESTING_ERR_SERVER_START";
  constructor(
    readonly server: string,
    readonly reason: string,
    readonly logFile: string,
    readonly logTail: string,
  ) {
    super(`${server} did not start: ${reason} (log: ${logFile})${logTail ? `\n--- last lines of the log ---\n${logTail}` : ""}`);
  }
}

/** A binary the kit needs is not installed; names the Debian package. */
export class MissingBinaryError extends Error {
  override readonly name = "MissingBinaryError";
  readonly code = "TESTING_ERR_MISSING_BINARY";
  constructor(
    readonly binary: string,
    readonly debianPackage: string,
  ) {
    super(`${binary} not found; install the Debian package "${debianPackage}" (make setup does it)`);
  }
}

/** An operation the server handle cannot do in its mode (e.g. restart a database on a shared server). */
export class UnsupportedOperationError extends Error {
  override readonly name = "UnsupportedOperationError";
  readonly code = "TESTING_ERR_UNSUPPORTED";
}
