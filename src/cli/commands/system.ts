import { Command } from "commander";
import { linkAccessEnabled } from "../../api/index.js";
import { SkupperError } from "../../common/errors.js";
import { contextOf, KUBERNETES_INSTALL_COMMAND, resolvePlatform, type CliContext, optionsOf } from "../context.js";
import { print, timeoutOption, waitOption } from "../output.js";
import { activeSite, current, statusOf } from "../resources.js";
import { waitForResource } from "../wait.js";
import { applyCommand, deleteCommand } from "./apply.js";
import { generateBundleCommand } from "./bundle.js";

async function start(ctx: CliContext, waitFor: ReturnType<typeof waitOption>, timeoutMs: number): Promise<void> {
  const site = await activeSite(ctx);
  if (!site) {
    throw new SkupperError(
      "ERR_NO_SITE",
      `Namespace "${ctx.namespace}" has no site to start. Create one with "skupper${ctx.nsFlag} site create <name>".`,
    );
  }
  const { id, started } = await ctx.platform.runner.start();
  if (!started) {
    print(`The site process of namespace "${ctx.namespace}" is already running (pid ${id}).`);
    return;
  }
  print(`Site "${site.metadata.name}" started in namespace "${ctx.namespace}" (pid ${id}, platform ${ctx.platformName}).`);
  if (waitFor !== "none") {
    print("Waiting for status...");
    await waitForResource(ctx, "Site", site.metadata.name, waitFor, timeoutMs);
    print(`Site "${site.metadata.name}" is ${waitFor}.`);
  }
}

/** On Kubernetes the controller starts and stops sites: `system start|stop|reload` refuse, saying so. */
function refuseIfManaged(ctx: CliContext, name: string): void {
  if (!ctx.managedSite) return;
  throw new SkupperError(
    "ERR_UNSUPPORTED",
    `"system ${name}" is not available on the ${ctx.platformName} platform: there the Skupper controller runs the site of a namespace for as long as it has a Site. ` +
      `"skupper${ctx.nsFlag} site create" starts it, "skupper${ctx.nsFlag} site delete" stops it, and "skupper${ctx.nsFlag} system status" shows it.`,
  );
}

function unsupported(name: string, description: string): Command {
  return new Command(name)
    .description(`${description} (container platforms only; not available on linux)`)
    .allowUnknownOption(true)
    .allowExcessArguments(true)
    .action((_args: unknown, command: Command) => {
      const platform = resolvePlatform(optionsOf(command).platform);
      const instead = platform === "kubernetes" ? `; on Kubernetes, install Skupper with "${KUBERNETES_INSTALL_COMMAND}"` : "";
      throw new SkupperError("ERR_UNSUPPORTED", `"system ${name}" is for the podman and docker platforms; it is not available on the ${platform} platform${instead}`);
    });
}

export function systemCommand(): Command {
  const system = new Command("system").description("Manage the site process of a namespace on this host (on Kubernetes: show it)");

  system
    .command("start")
    .description("Start the site process of the namespace from its resources")
    .option("--wait <status>", "wait for the site to be ready, configured, or none", "ready")
    .option("--timeout <duration>", "raise an error if the site is not ready in this time", "60s")
    .action(async (flags: { wait?: string; timeout?: string }, command: Command) => {
      const ctx = contextOf(command);
      refuseIfManaged(ctx, "start");
      await start(ctx, waitOption(flags.wait, "ready"), timeoutOption(flags.timeout, 60_000));
    });

  system
    .command("stop")
    .description("Stop the site process; the namespace's resources, certificates and state are kept")
    .action(async (_flags: unknown, command: Command) => {
      const ctx = contextOf(command);
      refuseIfManaged(ctx, "stop");
      const { id: pid } = await ctx.platform.runner.stop();
      print(
        pid === undefined
          ? `The site process of namespace "${ctx.namespace}" is not running.`
          : `The site process of namespace "${ctx.namespace}" (pid ${pid}) has stopped. Resources are kept; start it again with "skupper${ctx.nsFlag} system start".`,
      );
    });

  system
    .command("reload")
    .description("Restart the site process (changes to resources apply live; this is rarely needed)")
    .option("--timeout <duration>", "raise an error if the site is not ready in this time", "60s")
    .action(async (flags: { timeout?: string }, command: Command) => {
      const ctx = contextOf(command);
      refuseIfManaged(ctx, "reload");
      await ctx.platform.runner.stop();
      await start(ctx, "ready", timeoutOption(flags.timeout, 60_000));
    });

  system
    .command("status")
    .description("Show whether the site process runs, and where the site can be reached")
    .action(async (_flags: unknown, command: Command) => {
      const ctx = contextOf(command);
      const site = await activeSite(ctx);
      const runner = await ctx.platform.runner.status();
      print(`Namespace:      ${ctx.namespace}`);
      print(`Site:           ${site ? site.metadata.name : "(none)"}`);
      if (ctx.managedSite) print(`Site pod:       ${runner.running ? `running (${runner.id})` : "not running"}`);
      else print(`Site process:   ${runner.running ? `running (pid ${runner.id})` : "not running"}`);
      if (site) {
        const resource = (await current(ctx, "Site", site.metadata.name)) ?? site;
        const { status, message } = statusOf(resource);
        print(`Status:         ${runner.running ? `${status} (${message})` : "-"}`);
      }
      const network = runner.running ? await ctx.platform.networkStatus() : undefined;
      if (network?.linkAccess) {
        print(`Advertised as:  ${network.linkAccess.hosts.join(", ")}`);
        print(`Link port:      ${network.linkAccess.linkPort} (${network.linkAccess.linkServer || "not listening"})`);
        print(`Grant server:   port ${network.linkAccess.grantServerPort} (${network.linkAccess.grantServer})`);
      } else if (site) {
        print(`Link access:    ${linkAccessEnabled(site) ? "enabled, not set up yet" : "not enabled"}`);
      }
      const where = ctx.platform.runner.describe();
      print(`${ctx.managedSite ? "Location:  " : "Files:     "}     ${where.location}`);
      print(`Log:            ${where.log}`);
      for (const problem of network?.inputProblems ?? []) print(`Problem:        ${problem}`);
    });

  system.addCommand(applyCommand("apply"));
  system.addCommand(deleteCommand("delete"));
  system.addCommand(unsupported("install", "Install the system controller"));
  system.addCommand(unsupported("uninstall", "Remove the system controller"));
  system.addCommand(generateBundleCommand());
  return system;
}
