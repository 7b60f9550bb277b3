import { promises as fs } from "node:fs";
import { Command } from "commander";
import { GRANT_SERVER, SITE_CA, SITE_SERVER } from "../../controller/index.js";
import { siteProcessPid, startSiteProcess, stopSiteProcess } from "../../site/index.js";
import { contextOf } from "../context.js";
import { print } from "../output.js";
import { requireSite } from "../resources.js";

/**
 * `skupper revoke-access` (v1): replaces the site CA, so every incoming link and every link
 * credential this site issued stops working, and deletes all access grants, so no outstanding
 * token can be redeemed. Outgoing links are not affected.
 */
export function revokeAccessCommand(): Command {
  return new Command("revoke-access")
    .description("Invalidate every incoming link and every outstanding token of this site (outgoing links are kept)")
    .action(async (_flags: unknown, command: Command) => {
      const ctx = contextOf(command);
      const site = await requireSite(ctx);
      const wasRunning = (await siteProcessPid(ctx.paths)) !== undefined;
      await stopSiteProcess(ctx.paths);
      for (const grant of await ctx.store.listInput("AccessGrant")) {
        await ctx.store.deleteInput("AccessGrant", grant.metadata.name);
        await ctx.store.deleteRuntime("AccessGrant", grant.metadata.name);
      }
      for (const dir of [ctx.paths.issuer(SITE_CA), ctx.paths.cert(SITE_SERVER), ctx.paths.cert(GRANT_SERVER)]) {
        await fs.rm(dir, { recursive: true, force: true });
      }
      if (wasRunning) await startSiteProcess(ctx.paths);
      print(`Access to site "${site.metadata.name}" has been revoked: its CA was replaced, so incoming links and unredeemed tokens no longer work.`);
      print("Outgoing links of this site are unaffected. Issue new tokens to link other sites again.");
    });
}
