import { Command } from "commander";
import { contextOf } from "../context.js";
import { print } from "../output.js";
import { requireSite } from "../resources.js";

/**
 * `skupper revoke-access` (v1): replaces the site CA, so every incoming link and every link
 * credential this site issued stops working, and deletes all access grants, so no outstanding
 * token can be redeemed. Outgoing links are not affected. The site process does the work (it
 * holds the keys); when it is not running, it is started for the request and stopped again.
 * On Kubernetes the site's pod must be running: it is restarted, and makes a new CA.
 */
export function revokeAccessCommand(): Command {
  return new Command("revoke-access")
    .description("Invalidate every incoming link and every outstanding token of this site (outgoing links are kept)")
    .action(async (_flags: unknown, command: Command) => {
      const ctx = contextOf(command);
      const site = await requireSite(ctx);
      const { runner, requests } = ctx.platform;
      const { started } = ctx.managedSite ? { started: false } : await runner.start();
      try {
        await requests.revokeAccess();
      } finally {
        if (started) await runner.stop();
      }
      print(`Access to site "${site.metadata.name}" has been revoked: its CA was replaced, so incoming links and unredeemed tokens no longer work.`);
      print("Outgoing links of this site are unaffected. Issue new tokens to link other sites again.");
    });
}
