import { Command } from "commander";
import {
  API_VERSION,
  checkResourceName,
  DEFAULT_GRANT_SERVER_PORT,
  DEFAULT_LINK_PORT,
  linkAccessEnabled,
  NAME_PATTERN,
  SiteSetting,
  type Kind,
  type Site,
} from "../../api/index.js";
import { AlreadyExistsError, InvalidInputError, NotFoundError, systemErrorCode, TimeoutError } from "../../common/errors.js";
import { DEFAULT_OBSERVER_HOST, ObserverSetting, observerHostProblem, observerPortProblem } from "../../console/index.js";
import { contextOf, type CliContext } from "../context.js";
import {
  booleanOption,
  collect,
  formatResource,
  outputFormat,
  portOption,
  print,
  table,
  timeoutOption,
  waitOption,
} from "../output.js";
import { activeSite, createResource, current, listCurrent, statusOf, updateResource } from "../resources.js";
import { isRunning } from "../runner.js";
import { waitForResource } from "../wait.js";

interface SiteFlags {
  enableLinkAccess?: string | boolean;
  linkAccessType?: string;
  enableHa?: boolean;
  host?: string[];
  linkPort?: string;
  grantServerPort?: string;
  bindHost?: string;
  timeout?: string;
  wait?: string;
  output?: string;
  containerNetwork?: string;
  observerPort?: string;
  observerHost?: string;
}

function addSiteFlags(command: Command): Command {
  return command
    .option("--enable-link-access [true|false]", "allow other sites to link to this site (it issues tokens and accepts links)")
    .option("--link-access-type <type>", `how other sites reach this one, with --enable-link-access: on Kubernetes ${LINK_ACCESS_TYPES.join(", ")} (default: default); elsewhere accepted for compatibility`)
    .option("--enable-ha", "not supported on this platform (ignored)")
    .option("--host <host>", "host name or IP address other sites use to reach this site; repeat for several (default: this host's addresses and hostname)", collect)
    .option("--link-port <port>", `port that accepts links from other sites (default ${DEFAULT_LINK_PORT})`)
    .option("--grant-server-port <port>", `port of the grant server that redeems tokens (default ${DEFAULT_GRANT_SERVER_PORT})`)
    .option("--bind-host <address>", "local address to listen on for links and tokens (default: all addresses)")
    .option("--observer-port <port>", "serve the web console and metrics on this port (default: off; \"\" turns it off)")
    .option("--observer-host <address>", `IP address the console and metrics listen on (default ${DEFAULT_OBSERVER_HOST}); any but loopback requires the credential "skupper network console" prints`);
}

function validateName(name: string, what = "site"): void {
  if (!name) throw new InvalidInputError(`${what} name must not be empty`);
  if (!NAME_PATTERN.test(name) || name.length > 63) {
    throw new InvalidInputError(
      `${what} name "${name}" is not valid: use lower case letters, digits, '-' and '.', starting and ending with a letter or digit`,
    );
  }
}

/**
 * `--link-access-type` on Kubernetes: `default` (the platform's choice), or how the Service that
 * remote sites dial is exposed. OpenShift's `route` is not available on plain Kubernetes.
 */
export const LINK_ACCESS_TYPES = ["default", "nodeport", "loadbalancer"] as const;

function linkAccessType(ctx: CliContext, value: string | undefined): string | undefined {
  if (value === undefined || !ctx.managedSite) return undefined;
  if (!(LINK_ACCESS_TYPES as readonly string[]).includes(value)) {
    throw new InvalidInputError(`value ${value} not allowed. It should be one of this options: [${LINK_ACCESS_TYPES.join(" ")}]`);
  }
  return value;
}

/** Applies the flags the user gave (and only those) to a Site spec. */
function applyFlags(ctx: CliContext, site: Site, flags: SiteFlags, explicit: (name: string) => boolean): Site {
  const spec = { ...site.spec, settings: { ...(site.spec.settings ?? {}) } };
  const enable = booleanOption("enable-link-access", flags.enableLinkAccess);
  const type = linkAccessType(ctx, flags.linkAccessType);
  if (flags.linkAccessType !== undefined && enable !== true && !linkAccessEnabled(site)) {
    throw new InvalidInputError("for the site to work with this type of linkAccess, the --enable-link-access option must be set to true");
  }
  if (enable === false) spec.linkAccess = "none";
  else if (type !== undefined) spec.linkAccess = type;
  else if (enable === true && !linkAccessEnabled(site)) spec.linkAccess = "default";
  if (flags.enableHa) process.stderr.write("Warning: --enable-ha is not supported on this platform and is ignored\n");
  const setting = (key: string, value: string | undefined) => {
    if (value === undefined) return;
    if (value === "") delete spec.settings[key];
    else spec.settings[key] = value;
  };
  if (explicit("linkPort")) setting(SiteSetting.linkPort, String(portOption("link-port", flags.linkPort)));
  if (explicit("grantServerPort")) setting(SiteSetting.grantServerPort, String(portOption("grant-server-port", flags.grantServerPort)));
  if (explicit("host")) setting(SiteSetting.advertisedHosts, (flags.host ?? []).join(","));
  if (explicit("bindHost")) setting(SiteSetting.bindHost, flags.bindHost ?? "");
  if (explicit("observerPort")) setting(ObserverSetting.port, checked("--observer-port", flags.observerPort ?? "", observerPortProblem));
  if (explicit("observerHost")) setting(ObserverSetting.host, checked("--observer-host", flags.observerHost ?? "", observerHostProblem));
  if (Object.keys(spec.settings).length === 0) delete (spec as { settings?: unknown }).settings;
  return { ...site, spec };
}

/** A flag's value if it is empty (the setting is removed) or has no problem; else exit code 2. */
function checked(flag: string, value: string, problem: (value: string) => string | undefined): string {
  if (value === "") return value;
  const found = problem(value);
  if (found) throw new InvalidInputError(`${flag}: ${found}`);
  return value;
}

/**
 * Waits as the original does: create says "Waiting for status..." and ends "is <wait>.", update
 * says "Waiting for update to complete..." and ends "is updated.".
 */
async function waitForSite(ctx: CliContext, name: string, waitFor: ReturnType<typeof waitOption>, timeoutMs: number, verb: "created" | "updated"): Promise<void> {
  if (waitFor === "none") {
    print(`Site "${name}" is ${verb}.`);
    return;
  }
  print(verb === "updated" ? "Waiting for update to complete..." : "Waiting for status...");
  await waitForResource(ctx, "Site", name, waitFor, timeoutMs);
  print(`Site "${name}" is ${verb === "updated" ? verb : waitFor}.`);
}

/**
 * Starts the site unless the platform runs it by itself: there (Kubernetes) this waits for the
 * site's pod, unless the user asked not to wait.
 */
async function startSite(ctx: CliContext, waitFor: ReturnType<typeof waitOption>): Promise<void> {
  if (ctx.managedSite && waitFor === "none") return;
  await ctx.platform.runner.start();
}

/** What is left of a wait that started with `deadline` (at least a second, so the wait still reports). */
function remaining(deadline: number): number {
  return Math.max(1000, deadline - Date.now());
}

/** The message of a site whose site process (or pod) is not running. */
function notRunningRow(ctx: CliContext): string {
  return ctx.managedSite
    ? `The site pod is not running; see "skupper${ctx.nsFlag} system status"`
    : `The site process is not running; start it with "skupper${ctx.nsFlag} system start"`;
}

/**
 * Waits until a deleted resource is gone: the site finalizes it once it has acted on the delete.
 * When no site runs, nothing would: it is let go here.
 */
async function untilDeleted(ctx: CliContext, kind: Kind, name: string, deadline: number): Promise<void> {
  for (;;) {
    const resource = await ctx.platform.resources.get(kind, name);
    if (!resource) return;
    if (!(await isRunning(ctx))) await ctx.platform.resources.finalize(kind, name);
    if (Date.now() >= deadline) throw new TimeoutError(`${kind} "${name}" not deleted yet, check the status for more information`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

export function siteCommand(): Command {
  const site = new Command("site").description("Create, change and inspect the site of a namespace");

  addSiteFlags(site.command("create <name>").description("Create a site and start its site process"))
    .option("--timeout <duration>", "raise an error if the site is not ready in this time", "3m")
    .option("--wait <status>", "wait for the site to be ready, configured, or none", "ready")
    .option("--container-network <name>", "podman, docker: run the site's container on this engine network (made if absent) instead of the host's network")
    .action(async (name: string, flags: SiteFlags, command: Command) => {
      const ctx = contextOf(command);
      validateName(name);
      const timeoutMs = timeoutOption(flags.timeout, 180_000);
      const waitFor = waitOption(flags.wait, "ready");
      const base: Site = { apiVersion: API_VERSION, kind: "Site", metadata: { name }, spec: {} };
      const site = applyFlags(ctx, base, flags, (option) => command.getOptionValueSource(option) === "cli");
      const deadline = Date.now() + timeoutMs;
      await ctx.platform.prepare();
      await ctx.recordPlatform?.(flags.containerNetwork !== undefined ? { network: flags.containerNetwork } : {});
      const alreadyThere = (existing: Site) =>
        new AlreadyExistsError(`There is already a site created for this namespace ("${existing.metadata.name}")`);
      const existing = await activeSite(ctx);
      if (existing) throw alreadyThere(existing);
      // Of concurrent creates of one name the store lets one succeed; nothing joins the check
      // above and the create, so concurrent creates of different names can both succeed.
      try {
        await createResource(ctx, site);
      } catch (err) {
        if (systemErrorCode(err) === "ERR_ALREADY_EXISTS") throw alreadyThere(site);
        throw err;
      }
      await startSite(ctx, waitFor);
      await waitForSite(ctx, name, waitFor, remaining(deadline), "created");
    });

  addSiteFlags(site.command("update [name]").description("Change the site; only the options given are changed"))
    .option("--timeout <duration>", "raise an error if the site is not ready in this time", "30s")
    .option("--wait <status>", "wait for the site to be ready, configured, or none", "ready")
    .action(async (name: string | undefined, flags: SiteFlags, command: Command) => {
      const ctx = contextOf(command);
      const timeoutMs = timeoutOption(flags.timeout, 30_000);
      const deadline = Date.now() + timeoutMs;
      const waitFor = waitOption(flags.wait, "ready");
      // Any valid resource name (a Site applied from YAML may have a longer one than create allows).
      if (name !== undefined) checkResourceName("Site", name);
      const existing = name ? await current(ctx, "Site", name) : await activeSite(ctx);
      if (!existing) {
        throw new NotFoundError(name ? `site "${name}" must exist to be updated` : "there is no existing Skupper site resource to update");
      }
      const explicit = (option: string) => command.getOptionValueSource(option) === "cli";
      const updated = await updateResource(ctx, "Site", existing.metadata.name, (latest) => applyFlags(ctx, latest, flags, explicit));
      if (!updated) throw new NotFoundError(`site "${existing.metadata.name}" was deleted while it was being updated`);
      await startSite(ctx, waitFor);
      await waitForSite(ctx, existing.metadata.name, waitFor, remaining(deadline), "updated");
    });

  site
    .command("delete [name]")
    .description("Delete the site: stop its site process and remove its certificates and state (other resources stay unless --all)")
    .option("--all", "also delete every other resource of the namespace (links, listeners, connectors, grants, tokens)")
    .option("--timeout <duration>", "on Kubernetes: raise an error if the site is not gone in this time", "60s")
    .option("--wait [true|false]", "accepted for compatibility (the command always waits until the site is gone)")
    .action(async (name: string | undefined, flags: { all?: boolean; timeout?: string }, command: Command) => {
      const ctx = contextOf(command);
      const timeoutMs = timeoutOption(flags.timeout, 60_000);
      // Any valid resource name (a Site applied from YAML may have a longer one than create allows).
      if (name !== undefined) checkResourceName("Site", name);
      const existing = name ? await current(ctx, "Site", name) : await activeSite(ctx);
      if (!existing && !flags.all) {
        throw new NotFoundError(name ? `There is no site named "${name}" in namespace "${ctx.namespace}"` : "There is no existing Skupper site resource to delete");
      }
      if (ctx.managedSite) {
        // The site runs while its Site exists: delete the Site (with --all, every Site), wait until
        // it is gone and its pod too, then remove what the site kept.
        const deadline = Date.now() + timeoutMs;
        const sites = flags.all ? (await listCurrent(ctx, "Site")).map((s) => s.metadata.name) : [existing?.metadata.name as string];
        for (const site of sites) await ctx.platform.resources.delete("Site", site);
        print("Waiting for deletion to complete...");
        for (const site of sites) await untilDeleted(ctx, "Site", site, deadline);
        await ctx.platform.runner.stop();
      } else {
        await ctx.platform.runner.stop();
        if (existing) await ctx.platform.resources.delete("Site", existing.metadata.name);
      }
      await ctx.platform.removeSiteState({ all: !!flags.all });
      print(existing ? `Site "${existing.metadata.name}" is deleted.` : `All resources of namespace "${ctx.namespace}" are deleted.`);
    });

  site
    .command("status [name]")
    .description("Show the status of the site")
    .option("-o, --output <format>", "print the site as json or yaml")
    .action(async (name: string | undefined, flags: { output?: string }, command: Command) => {
      const ctx = contextOf(command);
      const format = outputFormat(flags.output);
      const sites = (await listCurrent(ctx, "Site")).filter((s) => !name || s.metadata.name === name);
      if (sites.length === 0) {
        print(name ? `There is no site named "${name}"` : "There is no existing Skupper site resource");
        return;
      }
      const running = await isRunning(ctx);
      const rows: string[][] = [];
      for (const resource of sites) {
        if (format) {
          print(formatResource(resource, format));
          continue;
        }
        const { status, message } = statusOf(resource);
        rows.push(
          running
            ? [resource.metadata.name, status, message]
            : [resource.metadata.name, "Pending", notRunningRow(ctx)],
        );
      }
      if (format) return;
      print(table(["NAME", "STATUS", "MESSAGE"], rows));
      // Resources the site process could not use (it skips them and goes on).
      const network = running ? await ctx.platform.networkStatus() : undefined;
      for (const problem of network?.inputProblems ?? []) print(`Problem: ${problem}`);
    });

  addSiteFlags(site.command("generate <name>").description("Print the Site resource that create would make, without creating it"))
    .option("-o, --output <format>", "json or yaml", "yaml")
    .action(async (name: string, flags: SiteFlags, command: Command) => {
      const ctx = contextOf(command);
      validateName(name);
      const format = outputFormat(flags.output) ?? "yaml";
      const base: Site = { apiVersion: API_VERSION, kind: "Site", metadata: { name }, spec: {} };
      print(formatResource(applyFlags(ctx, base, flags, (option) => command.getOptionValueSource(option) === "cli"), format));
    });

  return site;
}
