/**
 * The console's model of the network, made from the site's network view: sites and links for the
 * topology, routing keys for the services, and rates from the byte counters of two views. Pure
 * (no DOM), so it is tested under Node.js and bundled for the browser alike.
 *
 * Counters (`bytesIn`/`bytesOut` on links, listeners and connectors, a `traffic` summary per site)
 * and a link's `lastError` are optional: a site that does not publish them shows "–".
 */
import type { NetworkConnector, NetworkListener, NetworkSite, NetworkStatus, NetworkTrafficService } from "../../api/network-status.js";

interface Counters {
  bytesIn?: number;
  bytesOut?: number;
}

interface LinkExtras extends Counters {
  lastError?: { message: string; at: number };
}

/** The view with the optional fields newer sites add. */
export type ConsoleView = NetworkStatus & {
  router?: NonNullable<NetworkStatus["router"]> & {
    outgoing: Array<NonNullable<NetworkStatus["router"]>["outgoing"][number] & LinkExtras>;
    incoming: Array<NonNullable<NetworkStatus["router"]>["incoming"][number] & LinkExtras>;
    listeners: Array<NetworkListener & Counters>;
    connectors: Array<NetworkConnector & Counters>;
    network: Array<NetworkSite & { traffic?: { at?: number; services?: NetworkTrafficService[] } }>;
  };
};

export type LinkState = "up" | "down";

export interface SiteNode {
  id: string;
  name: string;
  namespace?: string;
  local: boolean;
  reachable: boolean;
  cost?: number;
}

export interface LinkEdge {
  /** Stable: the two site ids in order. */
  id: string;
  source: string;
  target: string;
  /** The link's resource name at this site, when this site is one of its ends. */
  name?: string;
  direction: "outgoing" | "incoming" | "remote";
  state: LinkState;
  /** The state as the router says it (up, connecting, error), or "gone". */
  detail: string;
  cost?: number;
  rttMs?: number;
  since?: number;
  /** The last failure reason. */
  message?: string;
  bytesIn?: number;
  bytesOut?: number;
  /** Bytes per second both ways together, from the last two views. */
  rate?: number;
}

export interface ServiceRow {
  routingKey: string;
  listeners: Array<{ site: string; name?: string; port?: number; connections?: number; state?: string; bytesIn?: number; bytesOut?: number }>;
  connectors: Array<{ site: string; name?: string; host?: string; port?: number; connections?: number; bytesIn?: number; bytesOut?: number }>;
}

export interface TrafficRow {
  routingKey: string;
  from: string;
  to: string;
  active: number;
  opened: number;
  bytes: number;
  rate?: number;
}

export interface Model {
  siteName: string;
  sites: SiteNode[];
  links: LinkEdge[];
  services: ServiceRow[];
  traffic: TrafficRow[];
  /** When the view was received (ms), for rates. */
  time: number;
}

function pairId(a: string, b: string): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}

function sum(...values: Array<number | undefined>): number | undefined {
  return values.some((v) => typeof v === "number") ? values.reduce<number>((t, v) => t + (typeof v === "number" ? v : 0), 0) : undefined;
}

/** Bytes per second between two samples of a counter, or undefined without both. */
export function rate(before: number | undefined, after: number | undefined, seconds: number): number | undefined {
  if (before === undefined || after === undefined || seconds <= 0 || after < before) return undefined;
  return (after - before) / seconds;
}

/**
 * The model of `view`, received at `time`; `previous` (the model of the last view) gives rates,
 * and keeps links and sites that left the view, shown down and unreachable.
 */
export function buildModel(view: ConsoleView, time: number, previous?: Model): Model {
  const router = view.router;
  const self = view.siteId;
  const names = new Map<string, string>();
  const sites = new Map<string, SiteNode>();
  for (const s of router?.network ?? []) {
    names.set(s.id, s.name);
    sites.set(s.id, { id: s.id, name: s.name, ...(s.namespace ? { namespace: s.namespace } : {}), local: s.id === self, reachable: s.reachable, ...(s.cost !== undefined ? { cost: s.cost } : {}) });
  }
  if (!sites.has(self)) sites.set(self, { id: self, name: view.siteName, namespace: view.namespace, local: true, reachable: true });
  names.set(self, view.siteName);
  const ensureSite = (id: string, name: string) => {
    if (!sites.has(id)) sites.set(id, { id, name, local: false, reachable: false });
    if (!names.has(id)) names.set(id, name);
  };

  const links = new Map<string, LinkEdge>();
  // Links between any two sites, as the link-state database has them.
  for (const s of router?.network ?? []) {
    if (!s.reachable) continue;
    for (const [peer, cost] of Object.entries(s.links)) {
      if (!sites.get(peer)) continue;
      const id = pairId(s.id, peer);
      const rtt = s.rtt?.[peer];
      const known = links.get(id);
      if (known) {
        if (known.rttMs === undefined && rtt !== undefined) known.rttMs = rtt;
        continue;
      }
      links.set(id, { id, source: s.id, target: peer, direction: "remote", state: "up", detail: "up", cost, ...(rtt !== undefined ? { rttMs: rtt } : {}) });
    }
  }
  // This site's own links say more: name, state, since, last failure, counters.
  for (const link of router?.incoming ?? []) {
    ensureSite(link.remoteSiteId, link.remoteSiteName);
    const id = pairId(self, link.remoteSiteId);
    links.set(id, {
      ...links.get(id),
      id,
      source: link.remoteSiteId,
      target: self,
      name: link.name,
      direction: "incoming",
      state: "up",
      detail: "up",
      cost: link.cost,
      since: link.since,
      ...(link.rttMs !== undefined ? { rttMs: link.rttMs } : {}),
      ...(link.lastError ? { message: link.lastError.message } : {}),
      ...counters(link),
    });
  }
  for (const link of router?.outgoing ?? []) {
    // A link that is down no longer says where it goes: where it went last time it did.
    const before = previous?.links.find((l) => l.direction === "outgoing" && l.name === link.name && !l.target.startsWith("link:"));
    const remote = link.remoteSiteId ?? before?.target ?? `link:${link.name}`;
    ensureSite(remote, link.remoteSiteName ?? (before ? (previous?.sites.find((s) => s.id === remote)?.name ?? remote) : `${link.name} (not reached yet)`));
    const id = pairId(self, remote);
    const up = link.state === "up";
    // An up link's message is just "OK": its last failure, if it had one, is what a user looks for.
    const message = up ? link.lastError?.message : link.message || link.lastError?.message;
    links.set(id, {
      ...links.get(id),
      id,
      source: self,
      target: remote,
      name: link.name,
      direction: "outgoing",
      state: up ? "up" : "down",
      detail: link.state,
      cost: link.cost,
      since: link.since,
      ...(link.rttMs !== undefined && up ? { rttMs: link.rttMs } : {}),
      ...(message ? { message } : {}),
      ...counters(link),
    });
    if (!up) delete links.get(id)!.rttMs;
  }
  // What was there and is not any more: down (and its sites unreachable), until the page reloads.
  for (const old of previous?.links ?? []) {
    if (links.has(old.id)) continue;
    for (const end of [old.source, old.target]) {
      const site = previous?.sites.find((s) => s.id === end);
      if (site && !sites.has(end)) sites.set(end, { ...site, reachable: false, local: end === self });
    }
    const { rate: _rate, rttMs: _rtt, ...rest } = old;
    links.set(old.id, { ...rest, state: "down", detail: "gone", message: old.detail === "gone" ? (old.message ?? "") : "the link is no longer in the network view" });
  }
  const seconds = previous ? (time - previous.time) / 1000 : 0;
  for (const link of links.values()) {
    const before = previous?.links.find((l) => l.id === link.id);
    const r = rate(sum(before?.bytesIn, before?.bytesOut), sum(link.bytesIn, link.bytesOut), seconds);
    if (r !== undefined) link.rate = r;
    else delete link.rate;
  }

  const model: Model = {
    siteName: view.siteName,
    sites: [...sites.values()].sort((a, b) => Number(b.local) - Number(a.local) || a.name.localeCompare(b.name)),
    links: [...links.values()].sort((a, b) => a.id.localeCompare(b.id)),
    services: services(view, names),
    traffic: traffic(view, names, previous, seconds),
    time,
  };
  return model;
}

function counters(value: Counters): Counters {
  return {
    ...(typeof value.bytesIn === "number" ? { bytesIn: value.bytesIn } : {}),
    ...(typeof value.bytesOut === "number" ? { bytesOut: value.bytesOut } : {}),
  };
}

/** Per routing key: this site's listeners and connectors in detail, other sites' by count. */
function services(view: ConsoleView, names: Map<string, string>): ServiceRow[] {
  const router = view.router;
  const rows = new Map<string, ServiceRow>();
  const row = (key: string) => {
    let r = rows.get(key);
    if (!r) rows.set(key, (r = { routingKey: key, listeners: [], connectors: [] }));
    return r;
  };
  for (const l of router?.listeners ?? []) {
    row(l.routingKey).listeners.push({ site: view.siteName, name: l.name, port: l.port, connections: l.connections, state: l.state, ...counters(l) });
  }
  for (const c of router?.connectors ?? []) {
    row(c.routingKey).connectors.push({ site: view.siteName, name: c.name, host: c.host, port: c.port, connections: c.connections, ...counters(c) });
  }
  for (const s of router?.network ?? []) {
    if (s.id === view.siteId || !s.reachable) continue;
    const name = names.get(s.id) ?? s.id;
    for (const [key, count] of Object.entries(s.listeners)) if (count > 0) row(key).listeners.push({ site: name });
    for (const [key, count] of Object.entries(s.connectors)) if (count > 0) row(key).connectors.push({ site: name });
  }
  return [...rows.values()].sort((a, b) => a.routingKey.localeCompare(b.routingKey));
}

/** Connections between sites per routing key, from the traffic summaries sites flood (when they do). */
function traffic(view: ConsoleView, names: Map<string, string>, previous: Model | undefined, seconds: number): TrafficRow[] {
  const rows: TrafficRow[] = [];
  for (const s of view.router?.network ?? []) {
    for (const account of s.traffic?.services ?? []) {
      if (account.role !== "listener") continue;
      const from = names.get(s.id) ?? s.id;
      const to = names.get(account.peer) ?? account.peer;
      const bytes = (account.bytesIn ?? 0) + (account.bytesOut ?? 0);
      const before = previous?.traffic.find((t) => t.routingKey === account.routingKey && t.from === from && t.to === to);
      const r = rate(before?.bytes, bytes, seconds);
      rows.push({ routingKey: account.routingKey, from, to, active: account.active ?? 0, opened: account.opened ?? 0, bytes, ...(r !== undefined ? { rate: r } : {}) });
    }
  }
  return rows.sort((a, b) => a.routingKey.localeCompare(b.routingKey) || a.from.localeCompare(b.from) || a.to.localeCompare(b.to));
}

// ---- formatting ----

export const NONE = "–";

export function formatBytes(value: number | undefined): string {
  if (value === undefined) return NONE;
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = value;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

export function formatRate(value: number | undefined): string {
  return value === undefined ? NONE : `${formatBytes(Math.round(value))}/s`;
}

export function formatRtt(value: number | undefined): string {
  return value === undefined ? NONE : `${value < 10 ? value.toFixed(1) : Math.round(value)} ms`;
}

export function formatSince(since: number | undefined, now: number): string {
  if (!since) return NONE;
  const s = Math.max(0, Math.round((now - since) / 1000));
  const text = s < 60 ? `${s} s` : s < 3600 ? `${Math.floor(s / 60)} min` : `${Math.floor(s / 3600)} h`;
  return `${new Date(since).toISOString().replace("T", " ").slice(0, 19)} UTC (${text} ago)`;
}

export function edgeLabel(link: LinkEdge): string {
  return [link.detail, formatRtt(link.rttMs), formatRate(link.rate)].join(" · ");
}
