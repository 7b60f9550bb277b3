import { Command } from "commander";
import { SkupperError } from "../../common/errors.js";
import { contextOf } from "../context.js";
import { formatResource, outputFormat, print, table } from "../output.js";
import { isRunning } from "../runner.js";

export interface NetworkView {
  site: string;
  sites: Array<{
    id: string;
    name: string;
    namespace?: string;
    version?: string;
    local: boolean;
    cost?: number;
    links: Array<{ to: string; cost: number; rttMs?: number }>;
    listeners: string[];
    connectors: string[];
  }>;
  services: Array<{ routingKey: string; listeners: string[]; connectors: string[] }>;
  /** Resources of this site that its site process could not use (on this platform: files that do not parse). */
  problems?: string[];
}

export function networkCommand(): Command {
  const network = new Command("network").description("The application network as seen from this site");
  network
    .command("status")
    .description("Show every site of the network, its links (with round-trip times) and the services")
    .option("-o, --output <format>", "json or yaml")
    .action(async (flags: { output?: string }, command: Command) => {
      const ctx = contextOf(command);
      const format = outputFormat(flags.output);
      const status = (await isRunning(ctx)) ? await ctx.platform.networkStatus() : undefined;
      if (!status?.router) {
        throw new SkupperError(
          "ERR_SITE_NOT_RUNNING",
          ctx.managedSite
            ? `No network status: ${ctx.notRunning}`
            : `No network status: the site process of namespace "${ctx.namespace}" is not running (start it with "skupper${ctx.nsFlag} system start")`,
        );
      }
      const reachable = status.router.network.filter((s) => s.reachable);
      const names = new Map(status.router.network.map((s) => [s.id, s.name]));
      const view: NetworkView = {
        site: status.siteName,
        sites: reachable
          .map((s) => ({
            id: s.id,
            name: s.name,
            ...(s.namespace ? { namespace: s.namespace } : {}),
            ...(s.version ? { version: s.version } : {}),
            local: s.id === status.siteId,
            ...(s.cost !== undefined ? { cost: s.cost } : {}),
            links: Object.entries(s.links).map(([peer, cost]) => ({
              to: names.get(peer) ?? peer,
              cost,
              ...(s.rtt?.[peer] !== undefined ? { rttMs: s.rtt[peer] } : {}),
            })),
            listeners: Object.keys(s.listeners).sort(),
            connectors: Object.keys(s.connectors).sort(),
          }))
          .sort((a, b) => a.name.localeCompare(b.name)),
        services: [],
      };
      const keys = new Set(view.sites.flatMap((s) => [...s.listeners, ...s.connectors]));
      view.services = [...keys].sort().map((routingKey) => ({
        routingKey,
        listeners: view.sites.filter((s) => s.listeners.includes(routingKey)).map((s) => s.name),
        connectors: view.sites.filter((s) => s.connectors.includes(routingKey)).map((s) => s.name),
      }));
      if (status.inputProblems && status.inputProblems.length > 0) view.problems = status.inputProblems;
      if (format) {
        print(formatResource(view, format));
        return;
      }
      print(`Sites in the network: ${view.sites.length} (seen from site "${view.site}")`);
      print();
      print(
        table(
          ["SITE", "NAMESPACE", "COST", "LINKS"],
          view.sites.map((s) => [
            s.local ? `${s.name} (this site)` : s.name,
            s.namespace ?? "",
            s.local ? "-" : String(s.cost ?? ""),
            s.links.map((l) => `${l.to} (cost ${l.cost}${l.rttMs !== undefined ? `, rtt ${l.rttMs} ms` : ""})`).join(", ") || "-",
          ]),
        ),
      );
      print();
      if (view.services.length === 0) {
        print("No services: create listeners and connectors to offer one.");
      } else {
        print(
          table(
            ["ROUTING KEY", "LISTENERS AT", "CONNECTORS AT"],
            view.services.map((s) => [s.routingKey, s.listeners.join(", ") || "-", s.connectors.join(", ") || "-"]),
          ),
        );
      }
      // Resources of this site that its site process skipped.
      const problems = status.inputProblems ?? [];
      if (problems.length > 0) print();
      for (const problem of problems) print(`Problem: ${problem}`);
    });
  network
    .command("console")
    .description("Print where this site's web console and metrics are, and the credential when they need one")
    .option("-o, --output <format>", "json or yaml")
    .action(async (flags: { output?: string }, command: Command) => {
      const ctx = contextOf(command);
      const format = outputFormat(flags.output);
      const ask = ctx.platform.requests.observerAccess?.bind(ctx.platform.requests);
      if (!ask) throw new SkupperError("ERR_NOT_SUPPORTED", `The console of a site on ${ctx.platform.name} cannot be asked for from here: the site's observer port is reached inside its pod`);
      if (!(await isRunning(ctx))) {
        throw new SkupperError("ERR_SITE_NOT_RUNNING", `The site process of namespace "${ctx.namespace}" is not running (start it with "skupper${ctx.nsFlag} system start")`);
      }
      const access = await ask();
      if (format) {
        print(formatResource(access, format));
        if (access.state !== "listening") process.exitCode = 1;
        return;
      }
      if (access.state !== "listening" || !access.url) {
        const hint = access.state === "off" ? `; turn it on with "skupper${ctx.nsFlag} site update --observer-port <port>"` : "";
        throw new SkupperError("ERR_CONSOLE_OFF", `The console is not available: ${access.message}${hint}`);
      }
      print(`Console: ${access.url}`);
      print(`Metrics: ${access.url}metrics`);
      if (access.credentialRequired && access.credential) {
        print(`Credential: ${access.credential}`);
        print(`  Browsers: open ${access.url}?token=<credential> once, or sign in with the credential.`);
        print(`  Scrapers and scripts: send "Authorization: Bearer <credential>".`);
      } else {
        print("No credential needed: the console listens on loopback only.");
      }
    });
  return network;
}
