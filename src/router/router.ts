/**
 * The router of one site: its links, the link-state routing over them, and the TCP adaptor
 * (listeners and connectors). It is configured with plain objects and knows nothing of
 * resources, files or YAML.
 */
import type { DataPlane } from "./data-plane.js";
import type net from "node:net";
import type tls from "node:tls";
import { logger } from "../common/log.js";
import { SocketBridge, resetSocket, type BridgeOwner } from "./bridge.js";
import { ResetCode } from "./frames.js";
import { IncomingIdentities, outgoingIdentityCheck, type PeerCertificate } from "./identity.js";
import {
  LinkDialer,
  LinkServer,
  type DialerHost,
  type IncomingConnection,
  type LinkServerConfig,
  type LinkServerHost,
  type LinkState,
  type OutgoingLinkConfig,
} from "./links.js";
import { RelayEnd } from "./relay.js";
import { LinkStateDatabase, type LinkStateAdvert, type RouteTable } from "./routing.js";
import {
  connectBackend,
  listenerKeys,
  LocalConnector,
  LocalSplice,
  ServiceListener,
  type ConnectorConfig,
  type ListenerConfig,
  type ListenerHost,
  type ListenerState,
} from "./services.js";
import { LinkSession, type Hello, type SessionOwner } from "./session.js";
import { chooseKey, reachableKeys } from "./strategy.js";
import { PROTOCOL_VERSION, STREAM_WINDOW } from "./frames.js";

const log = logger("router");

const MAX_HOPS = 32;
/** A stream not accepted in this time is abandoned (backend connect timeout plus slack). */
const ACCEPT_TIMEOUT_MS = 15_000;
const PURGE_INTERVAL_MS = 30_000;
const UNREACHABLE_MAX_AGE_MS = 60_000;
const RTT_REFRESH_MS = 10_000;
const CHANGE_DEBOUNCE_MS = 10;

export interface RouterIdentity {
  siteId: string;
  siteName: string;
  namespace?: string;
  version: string;
}

export interface RouterOptions {
  /** Called (debounced) whenever something in `status()` may have changed. */
  onChange?: () => void;
}

export interface OutgoingLinkStatus {
  name: string;
  state: LinkState;
  message: string;
  cost: number;
  remoteSiteId?: string;
  remoteSiteName?: string;
  rttMs?: number;
  since: number;
}

export interface IncomingLinkStatus {
  name: string;
  remoteSiteId: string;
  remoteSiteName: string;
  cost: number;
  rttMs?: number;
  since: number;
  remoteAddress?: string;
}

export interface ListenerStatus {
  name: string;
  routingKey: string;
  host: string;
  port: number;
  state: ListenerState;
  message: string;
  hasMatchingConnector: boolean;
  /** A MultiKeyListener's keys that have a reachable connector, in its strategy's order. */
  reachableKeys?: string[];
  connections: number;
}

export interface ConnectorStatus {
  name: string;
  routingKey: string;
  host: string;
  port: number;
  hasMatchingListener: boolean;
  connections: number;
}

export interface LinkServerStatus {
  state: "disabled" | "listening" | "error";
  message: string;
}

export interface NetworkSite extends LinkStateAdvert {
  reachable: boolean;
  /** Path cost from this site; 0 for this site. */
  cost?: number;
}

export interface RouterStatus {
  siteId: string;
  siteName: string;
  linkServer: LinkServerStatus;
  outgoing: OutgoingLinkStatus[];
  incoming: IncomingLinkStatus[];
  listeners: ListenerStatus[];
  connectors: ConnectorStatus[];
  network: NetworkSite[];
}

export class Router implements DataPlane, SessionOwner, DialerHost, LinkServerHost, ListenerHost, BridgeOwner {
  private readonly db: LinkStateDatabase;
  private table: RouteTable;
  private readonly peers = new Map<string, Set<LinkSession>>();
  private readonly acceptorSessions = new Set<LinkSession>();
  private readonly dialers = new Map<string, LinkDialer>();
  private readonly dialerOf = new Map<LinkSession, LinkDialer>();
  private readonly linkServer = new LinkServer(this);
  private readonly incomingIdentities = new IncomingIdentities();
  private linkServerStatus: LinkServerStatus = { state: "disabled", message: "Link access is not enabled" };
  private readonly listeners = new Map<string, ServiceListener>();
  private readonly connectors = new Map<string, LocalConnector>();
  /** Open connections from this site per `<key>\n<destination site>`, for balancing. */
  private readonly outstanding = new Map<string, number>();
  private rotation = 0;
  private changeTimer: NodeJS.Timeout | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private closed = false;

  constructor(
    readonly identity: RouterIdentity,
    private readonly options: RouterOptions = {},
  ) {
    const advert: LinkStateAdvert = {
      id: identity.siteId,
      name: identity.siteName,
      instance: Date.now(),
      seq: 1,
      links: {},
      connectors: {},
      listeners: {},
      version: identity.version,
      ...(identity.namespace ? { namespace: identity.namespace } : {}),
    };
    this.db = new LinkStateDatabase(advert);
    this.table = this.db.compute();
    this.timers.push(setInterval(() => this.db.purge(this.table.reachable, UNREACHABLE_MAX_AGE_MS), PURGE_INTERVAL_MS));
    this.timers.push(setInterval(() => this.refreshSelf(), RTT_REFRESH_MS));
    for (const timer of this.timers) timer.unref();
  }

  get siteId(): string {
    return this.identity.siteId;
  }

  /** The port the link server is bound to, while it listens. */
  get linkServerPort(): number | undefined {
    return this.linkServer.port;
  }

  // ---- configuration ----

  /** Enables (or reconfigures) incoming links; `undefined` disables them and closes incoming links. */
  async setLinkServer(config: LinkServerConfig | undefined): Promise<LinkServerStatus> {
    if (!config) {
      for (const session of [...this.acceptorSessions]) session.shutdown("link access was disabled");
      await this.linkServer.close();
      this.linkServerStatus = { state: "disabled", message: "Link access is not enabled" };
    } else {
      try {
        await this.linkServer.configure(config);
        this.linkServerStatus = { state: "listening", message: "OK" };
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        const where = `${config.host ?? "*"}:${config.port}`;
        const message =
          code === "EADDRINUSE"
            ? `the link port ${config.port} is already in use; choose another one`
            : code === "EACCES"
              ? `not permitted to listen on ${where}`
              : `cannot listen for links on ${where}: ${(err as Error).message}`;
        this.linkServerStatus = { state: "error", message };
      }
    }
    this.notifyChange();
    return this.linkServerStatus;
  }

  setOutgoingLinks(configs: OutgoingLinkConfig[]): void {
    const wanted = new Map(configs.map((c) => [c.name, c]));
    for (const [name, dialer] of this.dialers) {
      if (!wanted.has(name)) {
        this.dialers.delete(name);
        dialer.stop();
      }
    }
    for (const config of configs) {
      const existing = this.dialers.get(config.name);
      if (existing) existing.update(config);
      else {
        const dialer = new LinkDialer(config, this);
        this.dialers.set(config.name, dialer);
        dialer.start();
      }
    }
    this.notifyChange();
  }

  setListeners(configs: ListenerConfig[]): void {
    const wanted = new Map(configs.map((c) => [c.name, c]));
    for (const [name, listener] of this.listeners) {
      if (!wanted.has(name)) {
        this.listeners.delete(name);
        listener.close();
      }
    }
    for (const config of configs) {
      const existing = this.listeners.get(config.name);
      if (existing) existing.update(config);
      else this.listeners.set(config.name, new ServiceListener(config, this));
    }
    this.refreshSelf();
    this.applyReachability();
    this.notifyChange();
  }

  setConnectors(configs: ConnectorConfig[]): void {
    const wanted = new Map(configs.map((c) => [c.name, c]));
    for (const [name, connector] of this.connectors) {
      const config = wanted.get(name);
      if (!config || config.routingKey !== connector.config.routingKey) {
        this.connectors.delete(name);
        connector.close();
      }
    }
    for (const config of configs) {
      const existing = this.connectors.get(config.name);
      if (existing) existing.config = config;
      else this.connectors.set(config.name, new LocalConnector(config));
    }
    this.refreshSelf();
    this.notifyChange();
  }

  /** Closes everything: links get a GOAWAY, listeners stop, connections are reset. */
  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.timers) clearInterval(timer);
    if (this.changeTimer) clearTimeout(this.changeTimer);
    for (const dialer of this.dialers.values()) dialer.stop("the site is shutting down");
    this.dialers.clear();
    for (const session of [...this.acceptorSessions]) session.shutdown("the site is shutting down");
    for (const listener of this.listeners.values()) listener.close();
    for (const connector of this.connectors.values()) connector.close();
    await this.linkServer.close();
  }

  // ---- status ----

  status(): RouterStatus {
    const outgoing: OutgoingLinkStatus[] = [...this.dialers.values()].map((d) => {
      const peer = d.session?.state === "up" ? d.session.peer : undefined;
      return {
        name: d.name,
        state: d.state,
        message: d.message,
        cost: d.config.cost,
        since: d.since,
        ...(peer ? { remoteSiteId: peer.siteId, remoteSiteName: peer.siteName } : {}),
        ...(d.session?.rttMs !== undefined ? { rttMs: round(d.session.rttMs) } : {}),
      };
    });
    const incoming: IncomingLinkStatus[] = [...this.acceptorSessions]
      .filter((s) => s.state === "up" && s.peer)
      .map((s) => ({
        name: s.peer?.linkName ?? "",
        remoteSiteId: s.peer?.siteId ?? "",
        remoteSiteName: s.peer?.siteName ?? "",
        cost: s.cost,
        since: s.connectedAt,
        ...(s.rttMs !== undefined ? { rttMs: round(s.rttMs) } : {}),
        ...(s.socket.remoteAddress ? { remoteAddress: s.socket.remoteAddress } : {}),
      }));
    const listeners: ListenerStatus[] = [...this.listeners.values()].map((l) => ({
      name: l.name,
      routingKey: l.config.routingKey,
      host: l.config.host,
      port: l.config.port,
      state: l.state,
      message: l.message,
      hasMatchingConnector: this.listenerReachable(l.config),
      ...(l.config.strategy ? { reachableKeys: reachableKeys(l.config.strategy, (key) => this.keyReachable(key)) } : {}),
      connections: l.connections.size,
    }));
    const connectors: ConnectorStatus[] = [...this.connectors.values()].map((c) => ({
      name: c.name,
      routingKey: c.config.routingKey,
      host: c.config.host,
      port: c.config.port,
      hasMatchingListener: this.listenerExists(c.config.routingKey),
      connections: c.connections.size,
    }));
    const network: NetworkSite[] = this.db.all().map((advert) => {
      const reachable = this.table.reachable.has(advert.id);
      const cost = advert.id === this.siteId ? 0 : this.table.routes.get(advert.id)?.cost;
      return { ...advert, reachable, ...(cost !== undefined ? { cost } : {}) };
    });
    return {
      siteId: this.siteId,
      siteName: this.identity.siteName,
      linkServer: this.linkServerStatus,
      outgoing,
      incoming,
      listeners,
      connectors,
      network,
    };
  }

  // ---- SessionOwner ----

  sessionUp(session: LinkSession): void {
    const peerId = session.peerSiteId as string;
    let set = this.peers.get(peerId);
    if (!set) this.peers.set(peerId, (set = new Set()));
    set.add(session);
    session.sendLinkState(this.db.all());
    this.dialerOf.get(session)?.sessionUp();
    if (session.role === "acceptor") {
      log.info(`incoming link "${session.peer?.linkName ?? "?"}" from site ${session.peer?.siteName} is up`);
    }
    this.refreshSelf();
    this.notifyChange();
  }

  sessionDown(session: LinkSession, reason: string, wasUp: boolean): void {
    const peerId = session.peerSiteId;
    if (peerId) {
      const set = this.peers.get(peerId);
      set?.delete(session);
      if (set?.size === 0) this.peers.delete(peerId);
    }
    this.acceptorSessions.delete(session);
    const dialer = this.dialerOf.get(session);
    this.dialerOf.delete(session);
    dialer?.sessionDown(session, reason);
    if (session.role === "acceptor" && wasUp) {
      log.info(`incoming link "${session.peer?.linkName ?? "?"}" from site ${session.peer?.siteName} is down: ${reason}`);
    }
    if (wasUp && !this.closed) this.refreshSelf();
    this.notifyChange();
  }

  sessionUpdated(_session: LinkSession): void {
    this.refreshSelf();
    this.notifyChange();
  }

  linkState(session: LinkSession, adverts: LinkStateAdvert[]): void {
    const accepted = adverts.filter((advert) => this.db.accept(advert));
    if (accepted.length === 0) return;
    // Not back to the neighbour they came from, on any of the links joining us to it.
    for (const [peerId, set] of this.peers) {
      if (peerId === session.peerSiteId) continue;
      for (const other of set) other.sendLinkState(accepted);
    }
    this.recompute();
  }

  incomingStream(session: LinkSession, id: number, request: { key: string; dest: string; origin: string; hops: number }): void {
    if (request.dest === this.siteId) {
      this.acceptAtConnector(session, id, request.key);
      return;
    }
    if (request.hops <= 0) {
      session.refuse(id, ResetCode.Unreachable, "hop limit exceeded");
      return;
    }
    const next = this.sessionToward(request.dest);
    if (!next) {
      session.refuse(id, ResetCode.Unreachable, `site ${request.dest} is not reachable from ${this.identity.siteName}`);
      return;
    }
    const [upstream, downstream] = RelayEnd.pair(() => undefined);
    session.attach(id, upstream);
    next.openStream(downstream, { ...request, hops: request.hops - 1 });
  }

  // ---- DialerHost / LinkServerHost ----

  startSession(socket: tls.TLSSocket, dialer: LinkDialer, serverCertificate: PeerCertificate | undefined): LinkSession {
    const identity = outgoingIdentityCheck(serverCertificate, dialer.config.remoteSiteId);
    const session = new LinkSession(socket, "dialer", { ...this.hello(), linkName: dialer.name, cost: dialer.config.cost }, this, dialer.name, {
      ...(identity ? { identity } : {}),
    });
    this.dialerOf.set(session, dialer);
    session.start();
    return session;
  }

  dialerChanged(_dialer: LinkDialer): void {
    this.notifyChange();
  }

  acceptSession(socket: tls.TLSSocket, incoming: IncomingConnection): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    const identity = this.incomingIdentities.checkFor(incoming.certificate);
    const session = new LinkSession(socket, "acceptor", this.hello(), this, `incoming from ${socket.remoteAddress}`, {
      ...(identity ? { identity } : {}),
      helloTimeoutMs: incoming.helloTimeoutMs,
      onHandshakeComplete: incoming.authenticated,
    });
    this.acceptorSessions.add(session);
    session.start();
  }

  // ---- ListenerHost ----

  handleClient(listener: ServiceListener, socket: net.Socket): void {
    const { strategy } = listener.config;
    const key = strategy ? chooseKey(strategy, (k) => this.keyReachable(k)) : listener.config.routingKey;
    const dest = key === undefined ? undefined : this.pickDestination(key);
    if (key === undefined || !dest) {
      resetSocket(socket);
      return;
    }
    const counter = `${key}\n${dest}`;
    this.outstanding.set(counter, (this.outstanding.get(counter) ?? 0) + 1);
    if (dest === this.siteId) {
      this.spliceLocally(listener, socket, key, counter);
      return;
    }
    const session = this.sessionToward(dest);
    if (!session) {
      this.release(counter);
      resetSocket(socket);
      return;
    }
    const bridge = new SocketBridge(socket, this, { group: listener.connections, counter });
    bridge.watch();
    const timer = setTimeout(() => {
      if (!bridge.closed) bridge.abort(ResetCode.Timeout, "the stream was not accepted in time");
    }, ACCEPT_TIMEOUT_MS);
    timer.unref();
    bridge.acceptTimer = timer;
    session.openStream(bridge, { key, dest, origin: this.siteId, hops: MAX_HOPS });
  }

  listenerChanged(_listener: ServiceListener): void {
    this.notifyChange();
  }

  // ---- BridgeOwner ----

  bridgeClosed(bridge: SocketBridge): void {
    bridge.accounting.group.delete(bridge);
    if (bridge.accounting.counter) this.release(bridge.accounting.counter);
  }

  // ---- internals ----

  private hello(): Hello {
    return {
      v: PROTOCOL_VERSION,
      siteId: this.siteId,
      siteName: this.identity.siteName,
      instance: this.db.self.instance,
      version: this.identity.version,
      window: STREAM_WINDOW,
    };
  }

  private acceptAtConnector(session: LinkSession, id: number, key: string): void {
    const connector = this.pickLocalConnector(key);
    if (!connector) {
      session.refuse(id, ResetCode.NoConnector, `no connector for "${key}" at site ${this.identity.siteName}`);
      return;
    }
    let bridge: SocketBridge | undefined = undefined;
    const socket = connectBackend(connector, (connected, error) => {
      const b = bridge as SocketBridge;
      if (b.closed) {
        connected?.destroy();
        return;
      }
      if (!connected) {
        b.abort(ResetCode.BackendFailed, error ?? "cannot connect to the backend");
        return;
      }
      b.watch();
      b.sendAccept();
      b.start();
    });
    bridge = new SocketBridge(socket, this, { group: connector.connections });
    session.attach(id, bridge);
  }

  private spliceLocally(listener: ServiceListener, client: net.Socket, key: string, counter: string): void {
    const connector = this.pickLocalConnector(key);
    if (!connector) {
      this.release(counter);
      resetSocket(client);
      return;
    }
    let clientGone = false;
    const onEarlyClose = () => {
      clientGone = true;
    };
    client.once("close", onEarlyClose);
    client.on("error", () => undefined);
    connectBackend(connector, (backend) => {
      client.removeListener("close", onEarlyClose);
      if (!backend || clientGone) {
        backend?.destroy();
        this.release(counter);
        if (!clientGone) resetSocket(client);
        return;
      }
      const splice: LocalSplice = new LocalSplice(client, backend, () => {
        listener.connections.delete(splice);
        connector.connections.delete(splice);
        this.release(counter);
      });
      listener.connections.add(splice);
      connector.connections.add(splice);
      splice.start();
    });
  }

  private release(counter: string): void {
    const n = (this.outstanding.get(counter) ?? 1) - 1;
    if (n <= 0) this.outstanding.delete(counter);
    else this.outstanding.set(counter, n);
  }

  /**
   * Balancing: the site with the fewest open connections from here, weighted by path cost:
   * score = (open + 1) × (cost + 1). Ties rotate.
   */
  private pickDestination(key: string): string | undefined {
    let best = Infinity;
    let ties: string[] = [];
    for (const id of this.table.reachable) {
      if (!((this.db.get(id)?.connectors[key] ?? 0) > 0)) continue;
      if (id !== this.siteId && !this.sessionToward(id)) continue;
      const cost = id === this.siteId ? 0 : (this.table.routes.get(id)?.cost ?? Infinity);
      const score = ((this.outstanding.get(`${key}\n${id}`) ?? 0) + 1) * (cost + 1);
      if (score < best) {
        best = score;
        ties = [id];
      } else if (score === best) ties.push(id);
    }
    if (ties.length === 0) return undefined;
    return ties.length === 1 ? ties[0] : ties[this.rotation++ % ties.length];
  }

  private pickLocalConnector(key: string): LocalConnector | undefined {
    let best: LocalConnector | undefined;
    let ties = 0;
    for (const connector of this.connectors.values()) {
      if (connector.config.routingKey !== key) continue;
      if (!best || connector.connections.size < best.connections.size) {
        best = connector;
        ties = 1;
      } else if (connector.connections.size === best.connections.size) {
        ties++;
        if (this.rotation++ % ties === 0) best = connector;
      }
    }
    return best;
  }

  /** An up session to the first hop toward `siteId`. */
  private sessionToward(siteId: string): LinkSession | undefined {
    const route = this.table.routes.get(siteId);
    return route ? this.bestSession(route.via) : undefined;
  }

  /**
   * The link that carries traffic to the neighbour `peerId` when several join us to it (two
   * tokens redeemed, or links in both directions): the cheapest up one, the oldest on a tie, so
   * new streams stay on one link until it goes down and the next one takes over.
   */
  private bestSession(peerId: string): LinkSession | undefined {
    let best: LinkSession | undefined;
    for (const session of this.peers.get(peerId) ?? []) {
      if (session.state !== "up") continue;
      if (!best || session.cost < best.cost) best = session;
    }
    return best;
  }

  private keyReachable(key: string): boolean {
    for (const id of this.table.reachable) {
      if ((this.db.get(id)?.connectors[key] ?? 0) > 0) return true;
    }
    return false;
  }

  private listenerReachable(config: ListenerConfig): boolean {
    return listenerKeys(config).some((key) => this.keyReachable(key));
  }

  private listenerExists(key: string): boolean {
    for (const id of this.table.reachable) {
      if ((this.db.get(id)?.listeners[key] ?? 0) > 0) return true;
    }
    return false;
  }

  /** Rebuilds our own advert from live state; floods and recomputes if it changed. */
  private refreshSelf(): void {
    if (this.closed) return;
    const links: Record<string, number> = {};
    const rtt: Record<string, number> = {};
    // One entry per neighbour site, however many links join us to it: the link that carries
    // the traffic (bestSession) gives the cost and the RTT.
    for (const peerId of this.peers.keys()) {
      const session = this.bestSession(peerId);
      if (!session) continue;
      links[peerId] = session.cost;
      if (session.rttMs !== undefined) rtt[peerId] = Math.round(session.rttMs * 10) / 10;
    }
    const connectors: Record<string, number> = {};
    for (const c of this.connectors.values()) connectors[c.config.routingKey] = (connectors[c.config.routingKey] ?? 0) + 1;
    const listeners: Record<string, number> = {};
    for (const l of this.listeners.values()) for (const key of listenerKeys(l.config)) listeners[key] = (listeners[key] ?? 0) + 1;
    const advert = this.db.updateSelf({ links, rtt, connectors, listeners });
    if (!advert) return;
    for (const set of this.peers.values()) for (const session of set) session.sendLinkState([advert]);
    this.recompute();
  }

  private recompute(): void {
    this.table = this.db.compute();
    this.applyReachability();
    this.notifyChange();
  }

  private applyReachability(): void {
    for (const listener of this.listeners.values()) listener.setReachable(this.listenerReachable(listener.config));
  }

  private notifyChange(): void {
    if (!this.options.onChange || this.changeTimer || this.closed) return;
    this.changeTimer = setTimeout(() => {
      this.changeTimer = undefined;
      this.options.onChange?.();
    }, CHANGE_DEBOUNCE_MS);
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
