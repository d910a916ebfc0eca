/** Free TCP ports on 127.0.0.1. */
import { createServer } from "node:net";
import { ServerStartError } from "./errors.js";

const handedOut = new Set<number>();

/**
 * A port that was free a moment ago: the OS picks it (bind to port 0), we
 * close the socket and hand it out. Ports already handed out by this process
 * are never repeated, so servers started together do not collide.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.unref();
      server.once("error", reject);
      server.listen({ port: 0, host: "127.0.0.1", exclusive: true }, () => {
        const address = server.address();
        const chosen = typeof address === "object" && address !== null ? address.port : 0;
        server.close(() => resolve(chosen));
      });
    });
    if (port !== 0 && !handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

/**
 * Runs `start` (which picks its ports with `freePort`) again, up to `attempts` times, when the
 * server it started could not bind a port: another process took it between the pick and the
 * bind. Ports the caller fixed are never changed, so then the first failure stands.
 */
export async function withFreePorts<T>(portsFixed: boolean, start: () => Promise<T>, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (error) {
      const collided = error instanceof ServerStartError && /address already in use/i.test(error.logTail);
      if (portsFixed || !collided || attempt >= attempts) throw error;
    }
  }
}
