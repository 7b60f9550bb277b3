import { Command } from "commander";
import { SkupperError } from "../../common/errors.js";
import { contextOf } from "../context.js";
import { formatResource, outputFormat, print, table } from "../output.js";
import { isRunning } from "../runner.js";
import type { NetworkRouterView } from "../../api/network-status.js";

/** One flow of a service: clients at one site using its connector at another, since those sites started. */
export interface ServiceFlow {
  /** Site of the listener (the clients). */
  from: string;
  /** Site of the connector (the backend). */
  to: string;
  opened: number;
  active: number;
  /** Bytes the clients sent to the service, and the service sent back. */
  bytesToService: number;
  bytesFromService: number;
}

/** A link of this site, with its traffic. */
export interface LocalLinkView {
  name: string;
  direction: "outgoing" | "incoming";
  remoteSite?: string;
  rttMs?: number;
  bytesIn?: number;
  bytesOut?: number;
  reconnects?: number;
  lastError?: { message: string; at: string };
}

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
    /** The site's own traffic summary: per routing key and peer site (absent from sites of older versions). */
    traffic?: Array<{ routingKey: string; role: "listener" | "connector"; peer: string; opened: number; active: number; bytesIn: number; bytesOut: number }>;
  }>;
  services: Array<{ routingKey: string; listeners: string[]; connectors: string[]; traffic?: ServiceFlow[] }>;
  /** This site's links with their traffic. */
  links?: LocalLinkView[];
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
            ...(Array.isArray(s.traffic?.services) ? { traffic: s.traffic.services.map((t) => ({ ...t, peer: names.get(t.peer) ?? t.peer })) } : {}),
          }))
          .sort((a, b) => a.name.localeCompare(b.name)),
        services: [],
      };
      const keys = new Set(view.sites.flatMap((s) => [...s.listeners, ...s.connectors]));
      view.services = [...keys].sort().map((routingKey) => {
        const traffic = serviceFlows(view.sites, routingKey);
        return {
          routingKey,
          listeners: view.sites.filter((s) => s.listeners.includes(routingKey)).map((s) => s.name),
          connectors: view.sites.filter((s) => s.connectors.includes(routingKey)).map((s) => s.name),
          ...(traffic.length > 0 ? { traffic } : {}),
        };
      });
      view.links = localLinks(status.router);
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
      const flows = view.services.flatMap((s) => (s.traffic ?? []).map((f) => ({ routingKey: s.routingKey, ...f })));
      if (flows.length > 0) {
        print();
        print(
          table(
            ["ROUTING KEY", "FROM", "TO", "CONNECTIONS", "TO SERVICE", "FROM SERVICE"],
            flows.map((f) => [f.routingKey, f.from, f.to, `${f.active} open, ${f.opened} in all`, humanBytes(f.bytesToService), humanBytes(f.bytesFromService)]),
          ),
        );
      }
      if (view.links.length > 0) {
        print();
        print(
          table(
            ["LINK", "DIRECTION", "REMOTE SITE", "RTT", "RECEIVED", "SENT", "RECONNECTS"],
            view.links.map((l) => [
              l.name,
              l.direction,
              l.remoteSite ?? "-",
              l.rttMs !== undefined ? `${l.rttMs} ms` : "-",
              l.bytesIn !== undefined ? humanBytes(l.bytesIn) : "-",
              l.bytesOut !== undefined ? humanBytes(l.bytesOut) : "-",
              String(l.reconnects ?? 0),
            ]),
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
      if (!ask) throw new SkupperError("ERR_NOT_SUPPORTED", `The console of a site on ${ctx.platform.name} cannot be asked for from here`);
      if (!ctx.managedSite && !(await isRunning(ctx))) {
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
      if (access.reach) print(`First run: ${access.reach}`);
      print(`Console: ${access.url}`);
      print(`Metrics: ${access.url}metrics`);
      if (access.credentialRequired && access.credential) {
        print(`Credential: ${access.credential}`);
        print(`  Browsers: open ${access.url}?token=<credential> once, or sign in with the credential.`);
        print(`  Scrapers and scripts: send "Authorization: Bearer <credential>".`);
      } else {
        print(`No credential needed: the console listens on loopback only${access.reach ? " (in the site's pod)" : ""}.`);
      }
    });
  return network;
}

/**
 * Who uses a service from where: from the listener sites' summaries, and from the connector
 * sites' for clients whose own site sent none (an older version).
 */
function serviceFlows(sites: NetworkView["sites"], routingKey: string): ServiceFlow[] {
  const flows: ServiceFlow[] = [];
  const seen = new Set<string>();
  for (const site of sites) {
    for (const t of site.traffic ?? []) {
      if (t.routingKey !== routingKey || t.role !== "listener") continue;
      seen.add(`${site.name}\n${t.peer}`);
      flows.push({ from: site.name, to: t.peer, opened: t.opened, active: t.active, bytesToService: t.bytesOut, bytesFromService: t.bytesIn });
    }
  }
  for (const site of sites) {
    for (const t of site.traffic ?? []) {
      if (t.routingKey !== routingKey || t.role !== "connector") continue;
      const client = sites.find((s) => s.name === t.peer);
      if (seen.has(`${t.peer}\n${site.name}`) || client?.traffic) continue;
      flows.push({ from: t.peer, to: site.name, opened: t.opened, active: t.active, bytesToService: t.bytesIn, bytesFromService: t.bytesOut });
    }
  }
  return flows.sort((a, b) => a.from.localeCompare(b.from) || a.to.localeCompare(b.to));
}

function localLinks(router: NetworkRouterView): LocalLinkView[] {
  const counters = (l: { bytesIn?: number; bytesOut?: number; reconnects?: number; rttMs?: number }) => ({
    ...(l.rttMs !== undefined ? { rttMs: l.rttMs } : {}),
    ...(l.bytesIn !== undefined ? { bytesIn: l.bytesIn } : {}),
    ...(l.bytesOut !== undefined ? { bytesOut: l.bytesOut } : {}),
    ...(l.reconnects !== undefined ? { reconnects: l.reconnects } : {}),
  });
  return [
    ...router.outgoing.map((l) => ({
      name: l.name,
      direction: "outgoing" as const,
      ...(l.remoteSiteName ? { remoteSite: l.remoteSiteName } : {}),
      ...counters(l),
      ...(l.lastError ? { lastError: { message: l.lastError.message, at: new Date(l.lastError.at).toISOString() } } : {}),
    })),
    ...router.incoming.map((l) => ({ name: l.name, direction: "incoming" as const, remoteSite: l.remoteSiteName, ...counters(l) })),
  ];
}

/** 1536 → "1.5 KiB". */
export function humanBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}
