/**
 * Link-state routing. Every router floods an advertisement of its links (with cost) and of the
 * routing keys it has connectors and listeners for; each router computes least-cost paths over
 * the links both ends advertise. Pure data: no sockets, easy to test.
 */

export interface LinkStateAdvert {
  /** Site id of the advertising router. */
  id: string;
  name: string;
  /** Start time of the advertising site process: a restarted router supersedes its old adverts. */
  instance: number;
  seq: number;
  /** Neighbour site id → link cost. */
  links: Record<string, number>;
  /** Neighbour site id → measured round-trip time in ms (informational). */
  rtt?: Record<string, number>;
  /** Routing key → number of connectors at this site. */
  connectors: Record<string, number>;
  /** Routing key → number of listeners at this site. */
  listeners: Record<string, number>;
  namespace?: string;
  version?: string;
}

export interface Route {
  /** Neighbour to send through. */
  via: string;
  cost: number;
}

export interface RouteTable {
  /** Destination site id → first hop and total cost. The local site is not in it. */
  routes: Map<string, Route>;
  /** Site ids reachable from here, including this site. */
  reachable: Set<string>;
}

const MAX_ENTRIES = 10_000;

export class LinkStateDatabase {
  private readonly adverts = new Map<string, LinkStateAdvert>();
  private readonly unreachableSince = new Map<string, number>();

  constructor(private own: LinkStateAdvert) {
    this.adverts.set(own.id, own);
  }

  get self(): LinkStateAdvert {
    return this.own;
  }

  get(id: string): LinkStateAdvert | undefined {
    return this.adverts.get(id);
  }

  all(): LinkStateAdvert[] {
    return [...this.adverts.values()];
  }

  /**
   * Replaces the local advert's content. Returns the new advert (with a higher sequence number)
   * when something changed, otherwise undefined.
   */
  updateSelf(content: Pick<LinkStateAdvert, "links" | "connectors" | "listeners"> & Partial<LinkStateAdvert>): LinkStateAdvert | undefined {
    const next: LinkStateAdvert = { ...this.own, ...content, id: this.own.id, instance: this.own.instance, seq: this.own.seq };
    if (sameContent(next, this.own)) return undefined;
    next.seq = this.own.seq + 1;
    this.own = next;
    this.adverts.set(next.id, next);
    return next;
  }

  /** Stores an advert from the network if it is newer than what we hold. Returns true if stored. */
  accept(advert: LinkStateAdvert): boolean {
    if (advert.id === this.own.id) return false; // our own advert echoed back, or an old instance of us
    const held = this.adverts.get(advert.id);
    if (held && !isNewer(advert, held)) return false;
    this.adverts.set(advert.id, advert);
    return true;
  }

  /** Forgets adverts of routers unreachable for longer than `maxAgeMs`. */
  purge(reachable: Set<string>, maxAgeMs: number, now = Date.now()): void {
    for (const id of this.adverts.keys()) {
      if (reachable.has(id)) {
        this.unreachableSince.delete(id);
        continue;
      }
      const since = this.unreachableSince.get(id);
      if (since === undefined) this.unreachableSince.set(id, now);
      else if (now - since > maxAgeMs) {
        this.adverts.delete(id);
        this.unreachableSince.delete(id);
      }
    }
  }

  /** Dijkstra over links advertised by both ends; cost of a link is the larger of the two. */
  compute(): RouteTable {
    const selfId = this.own.id;
    const dist = new Map<string, number>([[selfId, 0]]);
    const firstHop = new Map<string, string>();
    const done = new Set<string>();
    for (;;) {
      let current: string | undefined;
      let best = Infinity;
      for (const [id, d] of dist) {
        if (done.has(id)) continue;
        if (d < best || (d === best && current !== undefined && id < current)) {
          best = d;
          current = id;
        }
      }
      if (current === undefined) break;
      done.add(current);
      const advert = this.adverts.get(current);
      if (!advert) continue;
      for (const [neighbour, advertisedCost] of Object.entries(advert.links)) {
        const back = this.adverts.get(neighbour)?.links[current];
        if (back === undefined || done.has(neighbour)) continue;
        const cost = best + Math.max(advertisedCost, back, 1);
        const hop = current === selfId ? neighbour : (firstHop.get(current) as string);
        const known = dist.get(neighbour);
        if (known === undefined || cost < known || (cost === known && hop < (firstHop.get(neighbour) ?? ""))) {
          dist.set(neighbour, cost);
          firstHop.set(neighbour, hop);
        }
      }
    }
    const routes = new Map<string, Route>();
    for (const [id, cost] of dist) {
      if (id !== selfId) routes.set(id, { via: firstHop.get(id) as string, cost });
    }
    return { routes, reachable: new Set(dist.keys()) };
  }
}

function isNewer(candidate: LinkStateAdvert, held: LinkStateAdvert): boolean {
  if (candidate.instance !== held.instance) return candidate.instance > held.instance;
  return candidate.seq > held.seq;
}

function sameContent(a: LinkStateAdvert, b: LinkStateAdvert): boolean {
  return (
    a.name === b.name &&
    sameRecord(a.links, b.links) &&
    sameRecord(a.connectors, b.connectors) &&
    sameRecord(a.listeners, b.listeners) &&
    sameRecord(a.rtt ?? {}, b.rtt ?? {}) &&
    a.namespace === b.namespace &&
    a.version === b.version
  );
}

function sameRecord(a: Record<string, number>, b: Record<string, number>): boolean {
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((k) => a[k] === b[k]);
}

/** Validates an advert received from the network; throws with the reason when it is malformed. */
/** A LINK_STATE payload (already JSON-decoded): a list of adverts, each valid, or an error. */
export function parseLinkStateUpdate(payload: unknown): LinkStateAdvert[] {
  if (!Array.isArray(payload)) throw new Error("link-state payload is not a list");
  return payload.map(parseAdvert);
}

export function parseAdvert(value: unknown): LinkStateAdvert {
  if (typeof value !== "object" || value === null) throw new Error("advert is not an object");
  const v = value as Record<string, unknown>;
  const str = (key: string, optional = false): string | undefined => {
    const field = v[key];
    if (field === undefined && optional) return undefined;
    if (typeof field !== "string" || field.length === 0 || field.length > 256) throw new Error(`advert field "${key}" is not valid`);
    return field;
  };
  const num = (key: string): number => {
    const field = v[key];
    if (typeof field !== "number" || !Number.isFinite(field) || field < 0) throw new Error(`advert field "${key}" is not valid`);
    return field;
  };
  const map = (key: string, optional = false): Record<string, number> => {
    const field = v[key];
    if (field === undefined && optional) return {};
    if (typeof field !== "object" || field === null || Array.isArray(field)) throw new Error(`advert field "${key}" is not valid`);
    const entries = Object.entries(field as Record<string, unknown>);
    if (entries.length > MAX_ENTRIES) throw new Error(`advert field "${key}" has too many entries`);
    const out: Record<string, number> = {};
    for (const [k, n] of entries) {
      if (typeof n !== "number" || !Number.isFinite(n) || n < 0 || k.length > 1024) throw new Error(`advert field "${key}" is not valid`);
      out[k] = n;
    }
    return out;
  };
  const advert: LinkStateAdvert = {
    id: str("id") as string,
    name: str("name") as string,
    instance: num("instance"),
    seq: num("seq"),
    links: map("links"),
    rtt: map("rtt", true),
    connectors: map("connectors"),
    listeners: map("listeners"),
  };
  const namespace = str("namespace", true);
  const version = str("version", true);
  if (namespace !== undefined) advert.namespace = namespace;
  if (version !== undefined) advert.version = version;
  return advert;
}
