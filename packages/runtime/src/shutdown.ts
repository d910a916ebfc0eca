/**
 * Graceful shutdown: ordered hooks, signal handling, a deadline.
 */
import type { Logger } from "./logger.js";

/** Default time the hooks get before the process is forced to exit. */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 25_000;
/** Signals handled by default. */
export const DEFAULT_SHUTDOWN_SIGNALS: readonly NodeJS.Signals[] = ["SIGTERM", "SIGINT"];

/** Exit codes used by {@link createShutdown}. */
export const SHUTDOWN_EXIT_CODES = {
  /** Every hook finished. */
  OK: 0,
  /** A hook threw. */
  HOOK_FAILED: 1,
  /** The timeout elapsed or a second signal arrived. */
  FORCED: 1,
} as const;

/** The process surface shutdown uses; injectable so tests need not kill themselves. */
export interface ShutdownProcess {
  on(signal: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
  removeListener(signal: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
  exit(code: number): void;
}

/** Options of {@link createShutdown}. */
export interface ShutdownOptions {
  readonly logger: Logger;
  /** Default {@link DEFAULT_SHUTDOWN_TIMEOUT_MS}; keep it below the orchestrator's grace period. */
  readonly timeoutMs?: number;
  /** Default {@link DEFAULT_SHUTDOWN_SIGNALS}; `[]` handles none. */
  readonly signals?: readonly NodeJS.Signals[];
  /** Default the real `process`. */
  readonly process?: ShutdownProcess;
  /**
   * Whether to call `exit` once the hooks are done after a SIGNAL (default
   * true). A programmatic `run()` never exits on its own, except on timeout.
   */
  readonly exitAfterSignal?: boolean;
}

/** A hook; receives the reason shutdown started. */
export type ShutdownHook = (reason: string) => void | Promise<void>;

/** What happened during shutdown. */
export interface ShutdownResult {
  readonly reason: string;
  /** Hook names in the order they completed (successfully or not). */
  readonly completed: readonly string[];
  /** Hooks that threw, with their error. */
  readonly failed: readonly { readonly name: string; readonly error: unknown }[];
  /** True when the deadline elapsed (or a second signal forced exit) before the hooks finished. */
  readonly forced: boolean;
  readonly durationMs: number;
}

/** Shutdown coordinator; see {@link createShutdown}. */
export interface Shutdown {
  /**
   * Registers a hook. Hooks run one at a time in REVERSE order of
   * registration, so register in start-up order: pools first, consumers
   * and listeners last; at shutdown the listeners stop taking work first,
   * in-flight work finishes or is handed back, and pools close last.
   * A hook that throws is logged and the next one still runs.
   */
  onShutdown(name: string, hook: ShutdownHook): void;
  /**
   * Starts shutdown (or returns the shutdown already under way: calling it
   * again is a no-op). Resolves when every hook finished or the deadline
   * forced the exit.
   */
  run(reason: string): Promise<ShutdownResult>;
  /** Aborted as soon as shutdown starts; pass it to loops and long waits. */
  readonly signal: AbortSignal;
  /** True once shutdown has started. */
  readonly isShuttingDown: boolean;
  /** Removes the signal listeners (for tests and embedded use). */
  dispose(): void;
}

/**
 * A shutdown coordinator. It listens for SIGTERM/SIGINT (once per
 * coordinator); the first signal runs the hooks and then exits with 0 (1 if
 * a hook failed); a second signal, or the deadline, exits at once with 1.
 */
export function createShutdown(options: ShutdownOptions): Shutdown {
  const logger = options.logger.child({ component: "shutdown" });
  const proc: ShutdownProcess = options.process ?? process;
  const timeoutMs = options.timeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
  const signals = options.signals ?? DEFAULT_SHUTDOWN_SIGNALS;
  const exitAfterSignal = options.exitAfterSignal ?? true;
  const hooks: { name: string; hook: ShutdownHook }[] = [];
  const controller = new AbortController();
  let running: Promise<ShutdownResult> | undefined;
  let exited = false;

  const exit = (code: number): void => {
    if (exited) return;
    exited = true;
    proc.exit(code);
  };

  const run = (reason: string): Promise<ShutdownResult> => {
    if (running !== undefined) return running;
    const started = Date.now();
    controller.abort(new Error(`shutdown: ${reason}`));
    logger.info({ reason, hooks: hooks.length, timeoutMs }, "shutting down");
    const completed: string[] = [];
    const failed: { name: string; error: unknown }[] = [];
    let current: string | undefined;

    const runHooks = async (): Promise<boolean> => {
      for (const { name, hook } of [...hooks].reverse()) {
        current = name;
        const t0 = Date.now();
        try {
          await hook(reason);
          logger.debug({ hook: name, durationMs: Date.now() - t0 }, "shutdown hook done");
        } catch (error) {
          failed.push({ name, error });
          logger.error({ err: error, hook: name }, "shutdown hook failed");
        }
        completed.push(name);
      }
      current = undefined;
      return false;
    };

    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), timeoutMs);
      // The deadline must not keep an otherwise finished process alive.
      timer.unref();
    });

    running = Promise.race([runHooks(), deadline]).then((forced) => {
      clearTimeout(timer);
      const result: ShutdownResult = { reason, completed, failed, forced, durationMs: Date.now() - started };
      if (forced) {
        logger.error({ hook: current, timeoutMs }, "shutdown timed out; forcing exit");
        exit(SHUTDOWN_EXIT_CODES.FORCED);
      } else {
        logger.info({ durationMs: result.durationMs, failed: failed.map((f) => f.name) }, "shutdown complete");
      }
      return result;
    });
    return running;
  };

  const onSignal = (signal: NodeJS.Signals): void => {
    if (running !== undefined) {
      logger.warn({ signal }, "second signal; forcing exit");
      exit(SHUTDOWN_EXIT_CODES.FORCED);
      return;
    }
    void run(signal).then((result) => {
      if (exitAfterSignal && !result.forced) {
        exit(result.failed.length > 0 ? SHUTDOWN_EXIT_CODES.HOOK_FAILED : SHUTDOWN_EXIT_CODES.OK);
      }
    });
  };
  for (const s of signals) proc.on(s, onSignal);

  return {
    onShutdown(name, hook) {
      if (running !== undefined) {
        logger.warn({ hook: name }, "hook registered after shutdown started; it will not run");
        return;
      }
      hooks.push({ name, hook });
    },
    run,
    signal: controller.signal,
    get isShuttingDown() {
      return running !== undefined;
    },
    dispose() {
      for (const s of signals) proc.removeListener(s, onSignal);
    },
  };
}
