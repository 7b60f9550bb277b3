/** Whether the site of the namespace runs, as commands that need it ask. */
import { SiteNotRunningError } from "../common/errors.js";
import type { CliContext } from "./context.js";

export async function isRunning(ctx: CliContext): Promise<boolean> {
  return (await ctx.platform.runner.status()).running;
}

/** Throws, saying what to do, unless the site runs. */
export async function requireRunning(ctx: CliContext): Promise<void> {
  if (!(await isRunning(ctx))) throw new SiteNotRunningError(ctx.notRunning);
}
