/**
 * Waiting for the site process to act on what the CLI wrote: polls the resources' status,
 * notices a stopped site process at once, bounds every wait.
 */
import { conditionOf, ConditionType, type Condition, type Kind, type ResourceByKind } from "../api/index.js";
import { SkupperError, TimeoutError } from "../common/errors.js";
import type { CliContext } from "./context.js";
import type { WaitFor } from "./output.js";
import { current } from "./resources.js";
import { isRunning } from "./runner.js";

const POLL_MS = 50;
const LIVENESS_CHECK_MS = 500;

export type Check<T> = () => Promise<{ done: true; value: T } | { done: false; message?: string }>;

export interface WaitResult<T> {
  value?: T;
  /** Last progress message when the wait timed out. */
  message?: string;
}

/** Polls `check` until done or `timeoutMs`; fails early if the site process is not running. */
export async function pollUntil<T>(ctx: CliContext, timeoutMs: number, check: Check<T>): Promise<WaitResult<T>> {
  const deadline = Date.now() + timeoutMs;
  let message: string | undefined;
  let lastLivenessCheck = 0;
  for (;;) {
    const result = await check();
    if (result.done) return { value: result.value };
    message = result.message;
    if (Date.now() >= deadline) return message === undefined ? {} : { message };
    if (Date.now() - lastLivenessCheck > LIVENESS_CHECK_MS) {
      lastLivenessCheck = Date.now();
      if (!(await isRunning(ctx))) {
        const { log } = ctx.platform.runner.describe();
        throw new SkupperError("ERR_SITE_STOPPED", `${ctx.notRunning} Its log: ${ctx.managedSite ? `"${log}"` : log}`);
      }
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** Polls until the resource is gone for good: deleted, and the site process is done with it. */
export async function pollUntilGone(ctx: CliContext, kind: Kind, name: string, timeoutMs: number): Promise<boolean> {
  const result = await pollUntil(ctx, timeoutMs, async () =>
    (await ctx.platform.resources.get(kind, name)) ? { done: false } : { done: true, value: true },
  );
  return result.value === true;
}

/**
 * Waits until the status of a resource is about its current generation and the resource is
 * Ready (or Configured). Returns the resource with that status.
 */
export async function waitForResource<K extends Kind>(
  ctx: CliContext,
  kind: K,
  name: string,
  waitFor: Exclude<WaitFor, "none">,
  timeoutMs: number,
): Promise<ResourceByKind[K]> {
  const result = await pollUntil(ctx, timeoutMs, async () => {
    // `current` shows a status only when it is about the current generation.
    const resource = await current(ctx, kind, name);
    const status = (resource as { status?: { status?: string; message?: string; conditions?: Condition[] } } | undefined)?.status;
    if (!resource || !status) return { done: false };
    if (waitFor === "ready") {
      if (status.status === "Ready") return { done: true, value: resource };
      return { done: false, ...(status.message ? { message: status.message } : {}) };
    }
    const configured = conditionOf(status.conditions, ConditionType.Configured);
    if (configured?.status === "True") return { done: true, value: resource };
    return { done: false, ...(configured?.message ? { message: configured.message } : {}) };
  });
  if (result.value) return result.value;
  throw new TimeoutError(
    result.message
      ? `${kind} "${name}" is not yet ${waitFor}: ${result.message}`
      : `${kind} "${name}" is not yet ${waitFor}, check the status for more information`,
  );
}
