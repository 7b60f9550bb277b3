/**
 * Waiting for the site process to act on what the CLI wrote: polls runtime status (local files,
 * so polling is cheap and quick), notices a dead site process at once, bounds every wait.
 */
import { conditionOf, ConditionType, type Kind, type ResourceByKind } from "../api/index.js";
import { SkupperError, TimeoutError } from "../common/errors.js";
import { siteProcessPid } from "../site/index.js";
import type { CliContext } from "./context.js";
import type { WaitFor } from "./output.js";

const POLL_MS = 50;

export type Check<T> = () => Promise<{ done: true; value: T } | { done: false; message?: string }>;

export interface WaitResult<T> {
  value?: T;
  /** Last progress message when the wait timed out. */
  message?: string;
}

/** Polls `check` until done or `timeoutMs`; fails early if the site process dies. */
export async function pollUntil<T>(ctx: CliContext, timeoutMs: number, check: Check<T>): Promise<WaitResult<T>> {
  const deadline = Date.now() + timeoutMs;
  let message: string | undefined;
  let lastProcessCheck = 0;
  for (;;) {
    const result = await check();
    if (result.done) return { value: result.value };
    message = result.message;
    if (Date.now() >= deadline) return message === undefined ? {} : { message };
    if (Date.now() - lastProcessCheck > 500) {
      lastProcessCheck = Date.now();
      if ((await siteProcessPid(ctx.paths)) === undefined) {
        throw new SkupperError(
          "ERR_SITE_STOPPED",
          `The site process of namespace "${ctx.namespace}" is not running. Start it with "skupper${ctx.nsFlag} system start"; its log is ${ctx.paths.logFile}`,
        );
      }
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/**
 * Waits until the runtime copy of a resource reflects the current input (same generation) and
 * is Ready (or Configured). Returns the runtime resource.
 */
export async function waitForResource<K extends Kind>(
  ctx: CliContext,
  kind: K,
  name: string,
  waitFor: Exclude<WaitFor, "none">,
  timeoutMs: number,
): Promise<ResourceByKind[K]> {
  const result = await pollUntil(ctx, timeoutMs, async () => {
    const input = await ctx.store.getInput(kind, name);
    const runtime = await ctx.store.getRuntime(kind, name);
    if (!runtime || (input && input.metadata.generation !== runtime.metadata.generation)) return { done: false };
    const status = (runtime as { status?: { status?: string; message?: string; conditions?: Array<{ type: string; status: string; message: string }> } }).status;
    if (waitFor === "ready") {
      if (status?.status === "Ready") return { done: true, value: runtime };
      return { done: false, ...(status?.message ? { message: status.message } : {}) };
    }
    const configured = conditionOf(status?.conditions as never, ConditionType.Configured);
    if (configured?.status === "True") return { done: true, value: runtime };
    return { done: false, ...(configured?.message ? { message: configured.message } : {}) };
  });
  if (result.value) return result.value;
  throw new TimeoutError(
    result.message
      ? `${kind} "${name}" is not yet ${waitFor}: ${result.message}`
      : `${kind} "${name}" is not yet ${waitFor}, check the status for more information`,
  );
}
