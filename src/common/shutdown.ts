/** How a long-running process (a site, the cluster controller) ends on SIGTERM or SIGINT. */
import type { Logger } from "./log.js";

/** How long a graceful stop may take before the process exits anyway. */
export const SHUTDOWN_GRACE_MS = 5000;

/**
 * On the first SIGTERM or SIGINT: runs `stop` once, then exits 0; exits 1 if `stop` takes
 * longer than `graceMs`. Later signals are ignored while it stops.
 */
export function exitOnSignals(log: Logger, stop: () => Promise<void>, graceMs = SHUTDOWN_GRACE_MS): void {
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info(`stopping (${signal})`);
    setTimeout(() => process.exit(1), graceMs).unref();
    try {
      await stop();
    } finally {
      process.exit(0);
    }
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
}
