/** Whether the site process of the namespace runs, as commands that need it ask. */
import { SiteNotRunningError } from "../common/errors.js";
import type { CliContext } from "./context.js";

export async function isRunning(ctx: CliContext): Promise<boolean> {
  return (await ctx.platform.runner.status()).running;
}

/** Throws, saying how to start it, unless the site process runs. */
export async function requireRunning(ctx: CliContext): Promise<void> {
  if (!(await isRunning(ctx))) {
    throw new SiteNotRunningError(
      `The site process of namespace "${ctx.namespace}" is not running. Start it with "skupper${ctx.nsFlag} system start".`,
    );
  }
}
