import { Command } from "commander";
import type { NetworkStatus } from "../../api/index.js";
import { SkupperError } from "../../common/errors.js";
import { contextOf, type CliContext } from "../context.js";
import { print } from "../output.js";
import { activeSite } from "../resources.js";
import { isRunning } from "../runner.js";

/**
 * The sites this one has a link with that is up, in either direction, each counted once however
 * many links join them.
 */
export function linkedSites(view: NetworkStatus): Set<string> {
  const router = view.router;
  const ids = new Set<string>();
  for (const link of router?.outgoing ?? []) if (link.state === "up" && link.remoteSiteId) ids.add(link.remoteSiteId);
  for (const link of router?.incoming ?? []) ids.add(link.remoteSiteId);
  ids.delete(view.siteId);
  return ids;
}

function linkedSentence(count: number): string {
  if (count === 0) return "It is not linked to any other sites.";
  return `It is linked to ${count} other site${count === 1 ? "" : "s"}.`;
}

/**
 * `skupper status` (v1): one line, e.g. `Skupper is enabled for namespace "west" in interior mode.
 * It is linked to 2 other sites.` The site name is given when it differs from the namespace, as
 * v1 did; "Status pending..." while the site is not running or has not yet published its view.
 */
async function siteSummary(ctx: CliContext): Promise<void> {
  const site = await activeSite(ctx);
  if (!site) {
    throw new SkupperError(
      "ERR_NO_SITE",
      `Skupper is not enabled in namespace '${ctx.namespace}'. Create a site with "skupper${ctx.nsFlag} site create <name>".`,
    );
  }
  const siteName = site.metadata.name !== ctx.namespace ? ` with site name "${site.metadata.name}"` : "";
  const mode = site.spec.edge ? "edge" : "interior";
  const enabled = `Skupper is enabled for namespace "${ctx.namespace}"${siteName} in ${mode} mode.`;
  const view = (await isRunning(ctx)) ? await ctx.platform.networkStatus() : undefined;
  if (!view?.router) {
    print(`${enabled} Status pending...`);
    if (!(await isRunning(ctx))) print(ctx.notRunning);
    return;
  }
  print(`${enabled} ${linkedSentence(linkedSites(view).size)}`);
}

export function statusCommand(): Command {
  return new Command("status")
    .description("Report the status of this site in one line (v1): its mode and how many sites it is linked to")
    .action(async (_flags: unknown, command: Command) => {
      await siteSummary(contextOf(command));
    });
}
