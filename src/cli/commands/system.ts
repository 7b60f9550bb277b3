import { Command } from "commander";
import { linkAccessEnabled } from "../../api/index.js";
import { InvalidInputError, SkupperError } from "../../common/errors.js";
import { ContainerSiteRunner, installPlatform, uninstallPlatform } from "../../platform/containers/index.js";
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
  await ctx.recordPlatform?.();
  const { id, started } = await ctx.platform.runner.start();
  if (!started) {
    print(`The site ${runnerWord(ctx)} of namespace "${ctx.namespace}" is already running (${runnerId(ctx, id)}).`);
    return;
  }
  print(`Site "${site.metadata.name}" started in namespace "${ctx.namespace}" (${runnerId(ctx, id)}, platform ${ctx.platformName}).`);
  if (waitFor !== "none") {
    print("Waiting for status...");
    await waitForResource(ctx, "Site", site.metadata.name, waitFor, timeoutMs);
    print(`Site "${site.metadata.name}" is ${waitFor}.`);
  }
}

/** "process" or "container": what `system start|stop` start and stop here. */
function runnerWord(ctx: CliContext): string {
  return ctx.siteRunsIn === "container" ? "container" : "process";
}

/** "pid 123" or "container skupper-west". */
function runnerId(ctx: CliContext, id: string): string {
  return ctx.siteRunsIn === "container" ? `container ${id}` : `pid ${id}`;
}

/** The platform `system install|uninstall` act on: podman or docker, else the refusal of other platforms. */
function enginePlatform(command: Command, name: string): "podman" | "docker" {
  const platform = resolvePlatform(optionsOf(command).platform);
  if (platform === "podman" || platform === "docker") return platform;
  const instead = platform === "kubernetes" ? `; on Kubernetes, install Skupper with "${KUBERNETES_INSTALL_COMMAND}"` : "";
  throw new SkupperError("ERR_UNSUPPORTED", `"system ${name}" is for the podman and docker platforms; it is not available on the ${platform} platform${instead}`);
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

export function systemCommand(): Command {
  const system = new Command("system").description("Manage the site process of a namespace on this host (on Kubernetes: show it)");

  system
    .command("start")
    .description("Start the site process (podman, docker: its container) of the namespace from its resources")
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
      const { id } = await ctx.platform.runner.stop();
      const word = runnerWord(ctx);
      const removed = ctx.siteRunsIn === "container" ? " and is removed" : "";
      print(
        id === undefined
          ? `The site ${word} of namespace "${ctx.namespace}" is not running.`
          : `The site ${word} of namespace "${ctx.namespace}" (${runnerId(ctx, id)}) has stopped${removed}. Resources are kept; start it again with "skupper${ctx.nsFlag} system start".`,
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
      else if (ctx.platform.runner instanceof ContainerSiteRunner) {
        const containers = ctx.platform.runner;
        const info = await containers.inspect();
        const state = !info ? "not running" : info.State.Running ? `running (${containers.name})` : `${info.State.Status} (${containers.name})`;
        const engine = await containers.client.version();
        print(`Site container: ${state}`);
        print(`Engine:         ${engine.product} ${engine.version} (${containers.client.endpoint.socketPath})`);
      } else print(`Site process:   ${runner.running ? `running (pid ${runner.id})` : "not running"}`);
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
  system
    .command("install")
    .description("podman, docker: check the engine and the image, and set up what site containers need (systemd units where systemd runs)")
    .option("--reload-type <type>", "manual or auto (accepted; changes apply live either way)", process.env.SKUPPER_SYSTEM_RELOAD_TYPE || "manual")
    .action(async (flags: { reloadType: string }, command: Command) => {
      const engine = enginePlatform(command, "install");
      if (flags.reloadType !== "manual" && flags.reloadType !== "auto") {
        throw new InvalidInputError(`value ${flags.reloadType} not allowed. It should be one of this options: [manual auto]`);
      }
      await installPlatform({ engine, reloadType: flags.reloadType, print });
    });

  system
    .command("uninstall")
    .description("podman, docker: stop and remove the site containers (with --force) and the units install wrote; the sites' files are kept")
    .option("-f, --force", "stop and remove active sites")
    .action(async (flags: { force?: boolean }, command: Command) => {
      const engine = enginePlatform(command, "uninstall");
      await uninstallPlatform({ engine, force: !!flags.force, print });
    });
  system.addCommand(generateBundleCommand());
  return system;
}
