/**
 * Traffic summaries: each site's small, rate-limited account of its own connections per routing
 * key and peer site, and of its links' round-trip times, flooded over the links' control channel
 * (TRAFFIC frames, docs/link-protocol.md §12) so every site can show the whole network's traffic
 * without a central collector. Pure data: building with bounds, comparing, validating, storing.
 */

/** At most this many service entries per summary; the smallest are dropped and counted. */
export const MAX_SUMMARY_SERVICES = 64;
/** At most this many RTT entries (one per neighbour site). */
export const MAX_SUMMARY_RTT = 256;
/** A site sends its summary at most this often, and only when it changed. */
export const TRAFFIC_INTERVAL_MS = 5_000;
/** Most summaries accepted in one TRAFFIC frame (one per site of the network). */
const MAX_SUMMARIES_PER_FRAME = 10_000;

export interface TrafficService {
  routingKey: string;
  /** `listener`: this site's clients use the service; `connector`: this site serves it. */
  role: "listener" | "connector";
  /** The site at the other end: where the connector is (listener) or the listener is (connector). */
  peer: string;
  /** Connections since the site process started, and open now. */
  opened: number;
  active: number;
  /** Payload bytes received / sent over the network for these connections (see docs/metrics.md). */
  bytesIn: number;
  bytesOut: number;
}

export interface TrafficDropped {
  /** Service entries left out to keep the summary small, and their connections and bytes. */
  entries: number;
  opened: number;
  bytes: number;
}

export interface TrafficSummary {
  /** Site id of the site that made it. */
  id: string;
  /** Start time of that site's router, like an advert's; a higher instance replaces older summaries. */
  instance: number;
  seq: number;
  /** When the site made it (epoch ms, its own clock). */
  at: number;
  /** Neighbour site id → latest round-trip time of the link carrying traffic to it, in ms. */
  rtt: Record<string, number>;
  services: TrafficService[];
  dropped: TrafficDropped;
}

/** Keeps the biggest entries (by bytes, then connections) within MAX_SUMMARY_SERVICES. */
export function boundServices(all: TrafficService[], max = MAX_SUMMARY_SERVICES): { services: TrafficService[]; dropped: TrafficDropped } {
  const dropped: TrafficDropped = { entries: 0, opened: 0, bytes: 0 };
  if (all.length <= max) return { services: all, dropped };
  const sorted = [...all].sort((a, b) => b.bytesIn + b.bytesOut - (a.bytesIn + a.bytesOut) || b.opened - a.opened || b.active - a.active);
  for (const entry of sorted.slice(max)) {
    dropped.entries++;
    dropped.opened += entry.opened;
    dropped.bytes += entry.bytesIn + entry.bytesOut;
  }
  return { services: sorted.slice(0, max), dropped };
}

/**
 * Whether `next` says something `previous` did not: any counter, or a round-trip time that moved
 * by more than 20 % and 0.5 ms (the heartbeat's RTT jitters; a summary per jitter is not news).
 */
export function summaryChanged(previous: TrafficSummary | undefined, next: Omit<TrafficSummary, "seq" | "at">): boolean {
  if (!previous) return true;
  if (JSON.stringify(previous.services) !== JSON.stringify(next.services)) return true;
  if (JSON.stringify(previous.dropped) !== JSON.stringify(next.dropped)) return true;
  const before = Object.keys(previous.rtt);
  const after = Object.keys(next.rtt);
  if (before.length !== after.length) return true;
  for (const id of after) {
    const a = previous.rtt[id];
    const b = next.rtt[id] as number;
    if (a === undefined) return true;
    if (Math.abs(a - b) > Math.max(0.5, 0.2 * a)) return true;
  }
  return false;
}

/** Holds the newest summary of each site (ours too). */
export class TrafficDatabase {
  private readonly summaries = new Map<string, TrafficSummary>();

  get(id: string): TrafficSummary | undefined {
    return this.summaries.get(id);
  }

  all(): TrafficSummary[] {
    return [...this.summaries.values()];
  }

  /** Stores our own summary. */
  setSelf(summary: TrafficSummary): void {
    this.summaries.set(summary.id, summary);
  }

  /** Stores a summary from the network if it is newer than what we hold. */
  accept(summary: TrafficSummary, selfId: string): boolean {
    if (summary.id === selfId) return false;
    const held = this.summaries.get(summary.id);
    if (held && (summary.instance < held.instance || (summary.instance === held.instance && summary.seq <= held.seq))) return false;
    this.summaries.set(summary.id, summary);
    return true;
  }

  /** Forgets summaries of sites the routing database no longer holds. */
  retain(known: (id: string) => boolean): void {
    for (const id of this.summaries.keys()) if (!known(id)) this.summaries.delete(id);
  }
}

/** A TRAFFIC payload (already JSON-decoded): a list of summaries, each valid, or an error. */
export function parseTrafficUpdate(payload: unknown): TrafficSummary[] {
  if (!Array.isArray(payload)) throw new Error("traffic payload is not a list");
  if (payload.length > MAX_SUMMARIES_PER_FRAME) throw new Error("traffic payload has too many summaries");
  return payload.map(parseTrafficSummary);
}

export function parseTrafficSummary(value: unknown): TrafficSummary {
  const fail = (what: string): never => {
    throw new Error(`traffic summary ${what} is not valid`);
  };
  if (typeof value !== "object" || value === null || Array.isArray(value)) fail("(the summary)");
  const v = value as Record<string, unknown>;
  const str = (field: unknown, what: string): string =>
    typeof field === "string" && field.length > 0 && field.length <= 256 ? field : fail(what);
  const count = (field: unknown, what: string): number =>
    typeof field === "number" && Number.isSafeInteger(field) && field >= 0 ? field : fail(what);
  const id = str(v.id, `field "id"`);
  const instance = count(v.instance, `field "instance"`);
  const seq = count(v.seq, `field "seq"`);
  const at = count(v.at, `field "at"`);
  const rttField = v.rtt;
  if (typeof rttField !== "object" || rttField === null || Array.isArray(rttField)) fail(`field "rtt"`);
  const rttEntries = Object.entries(rttField as Record<string, unknown>);
  if (rttEntries.length > MAX_SUMMARY_RTT) fail(`field "rtt" (more than ${MAX_SUMMARY_RTT} entries)`);
  const rtt: Record<string, number> = {};
  for (const [peer, ms] of rttEntries) {
    str(peer, `field "rtt"`);
    if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) fail(`field "rtt"`);
    rtt[peer] = ms as number;
  }
  if (!Array.isArray(v.services)) fail(`field "services"`);
  const list = v.services as unknown[];
  if (list.length > MAX_SUMMARY_SERVICES) fail(`field "services" (more than ${MAX_SUMMARY_SERVICES} entries)`);
  const services = list.map((entry): TrafficService => {
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) fail("service entry");
    const e = entry as Record<string, unknown>;
    if (e.role !== "listener" && e.role !== "connector") fail(`service field "role"`);
    return {
      routingKey: str(e.routingKey, `service field "routingKey"`),
      role: e.role as "listener" | "connector",
      peer: str(e.peer, `service field "peer"`),
      opened: count(e.opened, `service field "opened"`),
      active: count(e.active, `service field "active"`),
      bytesIn: count(e.bytesIn, `service field "bytesIn"`),
      bytesOut: count(e.bytesOut, `service field "bytesOut"`),
    };
  });
  const d = v.dropped;
  if (typeof d !== "object" || d === null || Array.isArray(d)) fail(`field "dropped"`);
  const dd = d as Record<string, unknown>;
  const dropped: TrafficDropped = {
    entries: count(dd.entries, `field "dropped.entries"`),
    opened: count(dd.opened, `field "dropped.opened"`),
    bytes: count(dd.bytes, `field "dropped.bytes"`),
  };
  return { id, instance, seq, at, rtt, services, dropped };
}
