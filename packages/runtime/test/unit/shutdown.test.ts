import { EventEmitter } from "node:events";
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger, createShutdown } from "../../src/index.js";
import type { ShutdownProcess } from "../../src/index.js";

const silent = createLogger({ name: "test", level: "silent" });

/** A fake process: signals are emitted by the test and exit codes recorded. */
function fakeProcess(): ShutdownProcess & { emitter: EventEmitter; exits: number[]; send(s: NodeJS.Signals): void } {
  const emitter = new EventEmitter();
  const exits: number[] = [];
  return {
    emitter,
    exits,
    on: (s, l) => emitter.on(s, l),
    removeListener: (s, l) => emitter.removeListener(s, l),
    exit: (code) => {
      exits.push(code);
    },
    send: (s) => {
      emitter.emit(s, s);
    },
  };
}

const tick = (ms = 0): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("createShutdown", () => {
  it("runs hooks in reverse order of registration and reports them", async () => {
    const proc = fakeProcess();
    const shutdown = createShutdown({ logger: silent, process: proc, timeoutMs: 1000 });
    const order: string[] = [];
    for (const name of ["pool", "nats", "consumer", "http"]) {
      shutdown.onShutdown(name, async (reason) => {
        await tick(5);
        order.push(`${name}:${reason}`);
      });
    }
    const result = await shutdown.run("test");
    expect(order).toEqual(["http:test", "consumer:test", "nats:test", "pool:test"]);
    expect(result).toMatchObject({ reason: "test", completed: ["http", "consumer", "nats", "pool"], failed: [], forced: false });
    expect(proc.exits).toEqual([]); // programmatic run does not exit
    shutdown.dispose();
  });

  it("second call is a no-op returning the same outcome; the signal is aborted", async () => {
    const shutdown = createShutdown({ logger: silent, process: fakeProcess() });
    let calls = 0;
    shutdown.onShutdown("once", () => {
      calls++;
    });
    expect(shutdown.signal.aborted).toBe(false);
    const first = shutdown.run("a");
    const second = shutdown.run("b");
    expect(second).toBe(first);
    expect(shutdown.signal.aborted).toBe(true);
    expect(shutdown.isShuttingDown).toBe(true);
    await first;
    const third = await shutdown.run("c");
    expect(third.reason).toBe("a");
    expect(calls).toBe(1);
    shutdown.dispose();
  });

  it("keeps going when a hook throws and records it", async () => {
    const shutdown = createShutdown({ logger: silent, process: fakeProcess() });
    const ran: string[] = [];
    shutdown.onShutdown("last", () => {
      ran.push("last");
    });
    shutdown.onShutdown("boom", () => {
      throw new Error("boom");
    });
    const result = await shutdown.run("x");
    expect(ran).toEqual(["last"]);
    expect(result.failed.map((f) => f.name)).toEqual(["boom"]);
    shutdown.dispose();
  });

  it("timeout forces the injected exit with code 1", async () => {
    const proc = fakeProcess();
    const shutdown = createShutdown({ logger: silent, process: proc, timeoutMs: 100 });
    shutdown.onShutdown("hangs", () => new Promise<void>(() => undefined));
    const t0 = Date.now();
    const result = await shutdown.run("x");
    expect(result.forced).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(90);
    expect(proc.exits).toEqual([1]);
    shutdown.dispose();
  });

  it("SIGTERM runs the hooks then exits 0; SIGINT is handled too", async () => {
    for (const signal of ["SIGTERM", "SIGINT"] as const) {
      const proc = fakeProcess();
      const shutdown = createShutdown({ logger: silent, process: proc });
      let reason = "";
      shutdown.onShutdown("h", (r) => {
        reason = r;
      });
      proc.send(signal);
      await tick(10);
      expect(reason).toBe(signal);
      expect(proc.exits).toEqual([0]);
      shutdown.dispose();
    }
  });

  it("exits 1 after a signal when a hook failed", async () => {
    const proc = fakeProcess();
    const shutdown = createShutdown({ logger: silent, process: proc });
    shutdown.onShutdown("bad", () => Promise.reject(new Error("no")));
    proc.send("SIGTERM");
    await tick(10);
    expect(proc.exits).toEqual([1]);
    shutdown.dispose();
  });

  it("a second signal forces exit while hooks are still running", async () => {
    const proc = fakeProcess();
    const shutdown = createShutdown({ logger: silent, process: proc, timeoutMs: 60_000 });
    shutdown.onShutdown("slow", () => new Promise<void>(() => undefined));
    proc.send("SIGTERM");
    await tick(5);
    expect(proc.exits).toEqual([]);
    proc.send("SIGINT");
    expect(proc.exits).toEqual([1]);
    shutdown.dispose();
  });

  it("registers its signal listeners once and removes them on dispose", () => {
    const proc = fakeProcess();
    const shutdown = createShutdown({ logger: silent, process: proc });
    expect(proc.emitter.listenerCount("SIGTERM")).toBe(1);
    expect(proc.emitter.listenerCount("SIGINT")).toBe(1);
    shutdown.dispose();
    expect(proc.emitter.listenerCount("SIGTERM")).toBe(0);
  });

  it("logs which hook hung", async () => {
    const chunks: string[] = [];
    const destination = new Writable({
      write(c: Buffer, _e, cb) {
        chunks.push(c.toString());
        cb();
      },
    });
    const logger = createLogger({ name: "t", destination });
    const shutdown = createShutdown({ logger, process: fakeProcess(), timeoutMs: 50 });
    shutdown.onShutdown("stuck-consumer", () => new Promise<void>(() => undefined));
    await shutdown.run("x");
    expect(chunks.join("")).toMatch(/"hook":"stuck-consumer".*timed out/);
    shutdown.dispose();
  });
});
