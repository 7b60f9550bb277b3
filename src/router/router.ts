/**
 * The router of one site: its links, the link-state routing over them, and the TCP adaptor
 * (listeners and connectors). It is configured with plain objects and knows nothing of
 * resources, files or YAML.
 */
import type { DataPlane } from "./data-plane.js";
import type net from "node:net";
import type tls from "node:tls";
import { SocketBridge, resetSocket, type BridgeAccounting, type BridgeOwner } from "./bridge.js";
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
import type { StreamEndpoint } from "./stream.js";
import { boundServices, summaryChanged, TrafficDatabase, TRAFFIC_INTERVAL_MS, type TrafficService, type TrafficSummary } from "./traffic.js";
import {
  build,
  linkDownChannel,
  linkUpChannel,
  streamCloseChannel,
  streamOpenChannel,
  type LinkInfo,
  type LinkUpMessage,
  type StreamInfo,
  type StreamOpenMessage,
  type StreamOutcome,
  type StreamRole,
  type StreamStats,
} from "../observability/events.js";
import type { ServiceCounts } from "./services.js";


const MAX_HOPS = 32;
/** A stream not accepted in this time is abandoned (backend connect timeout plus slack). */
const ACCEPT_TIMEOUT_MS = 15_000;
const PURGE_INTERVAL_MS = 30_000;
const UNREACHABLE_MAX_AGE_MS = 60_000;
/** Distinct (role, routing key, peer site) traffic records kept; more go to one overflow record. */
const MAX_TRAFFIC_ENTRIES = 4096;
const OTHER = "(other)";
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
  /** How often the traffic summary is rebuilt (and sent if it changed); default TRAFFIC_INTERVAL_MS. */
  trafficIntervalMs?: number;
}

/** The last failure of a link, and when. */
export interface LinkError {
  message: string;
  at: number;
}

/** Connection counts and bytes of a listener or connector (bytes as in docs/metrics.md). */
export interface ServiceTraffic {
  opened: number;
  refused: number;
  reset: number;
  bytesIn: number;
  bytesOut: number;
}

/** A site's traffic summary as this site holds it. */
export interface SiteTraffic {
  /** When the site made the summary (its clock, epoch ms). */
  at: number;
  services: TrafficService[];
  dropped: { entries: number; opened: number; bytes: number };
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
  bytesIn?: number;
  bytesOut?: number;
  reconnects?: number;
  lastError?: LinkError;
}

export interface IncomingLinkStatus {
  name: string;
  remoteSiteId: string;
  remoteSiteName: string;
  cost: number;
  rttMs?: number;
  since: number;
  remoteAddress?: string;
  bytesIn?: number;
  bytesOut?: number;
  reconnects?: number;
}

export interface ListenerStatus extends Partial<ServiceTraffic> {
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

export interface ConnectorStatus extends Partial<ServiceTraffic> {
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
  /** The site's last traffic summary, when one reached this site. */
  traffic?: SiteTraffic;
}

/** What a router has open now, as the messages its events would have carried (for late subscribers). */
export interface ObservedState {
  links: LinkUpMessage[];
  streams: StreamOpenMessage[];
}

/** One (role, routing key, peer site) account of streams. */
interface TrafficEntry {
  role: StreamRole;
  routingKey: string;
  peer: string;
  opened: number;
  refused: number;
  reset: number;
  closedToService: number;
  closedFromService: number;
  open: Set<StreamRecord>;
}

/** The router's record of one stream it takes part in (made once per stream, never per chunk). */
interface StreamRecord {
  id: number;
  role: StreamRole;
  routingKey: string;
  origin: string;
  dest: string;
  /** Site at the other end: dest for a listener, origin otherwise. */
  remote: string;
  resource?: string;
  startedAt: number;
  /** Link-side counters: the bridge or relay end itself, or a view of a local splice. */
  stats: StreamStats;
  entry: TrafficEntry;
  counts?: ServiceCounts;
  /** Built once someone subscribes. */
  info?: StreamInfo;
}

const toService = (r: { role: StreamRole; stats: StreamStats }): number => (r.role === "listener" ? r.stats.bytesOut : r.stats.bytesIn);
const fromService = (r: { role: StreamRole; stats: StreamStats }): number => (r.role === "listener" ? r.stats.bytesIn : r.stats.bytesOut);

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
  private readonly trafficEntries = new Map<string, TrafficEntry>();
  private readonly trafficDb = new TrafficDatabase();
  private lastSummary: TrafficSummary | undefined;
  private streamSeq = 0;
  /** Times each link (direction, name, remote site) came up. */
  private readonly linkUps = new Map<string, number>();

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
    this.timers.push(
      setInterval(() => {
        this.db.purge(this.table.reachable, UNREACHABLE_MAX_AGE_MS);
        this.trafficDb.retain((id) => this.db.get(id) !== undefined);
      }, PURGE_INTERVAL_MS),
    );
    this.timers.push(setInterval(() => this.trafficTick(), options.trafficIntervalMs ?? TRAFFIC_INTERVAL_MS));
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
        bytesIn: d.pastBytesIn + (d.session?.bytesIn ?? 0),
        bytesOut: d.pastBytesOut + (d.session?.bytesOut ?? 0),
        reconnects: Math.max(0, d.ups - 1),
        ...(d.lastError ? { lastError: d.lastError } : {}),
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
        bytesIn: s.bytesIn,
        bytesOut: s.bytesOut,
        reconnects: Math.max(0, (this.linkUps.get(linkKey("incoming", s.peer?.linkName ?? "", s.peer?.siteId ?? "")) ?? 1) - 1),
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
      ...serviceTraffic("listener", l.counts, l.connections),
    }));
    const connectors: ConnectorStatus[] = [...this.connectors.values()].map((c) => ({
      name: c.name,
      routingKey: c.config.routingKey,
      host: c.config.host,
      port: c.config.port,
      hasMatchingListener: this.listenerExists(c.config.routingKey),
      connections: c.connections.size,
      ...serviceTraffic("connector", c.counts, c.connections),
    }));
    const network: NetworkSite[] = this.db.all().map((advert) => {
      const reachable = this.table.reachable.has(advert.id);
      const cost = advert.id === this.siteId ? 0 : this.table.routes.get(advert.id)?.cost;
      const summary = advert.id === this.siteId ? this.currentSummary() : this.trafficDb.get(advert.id);
      // RTT comes from the site's traffic summary; a site of an older version still puts it in its advert.
      const rtt = summary && Object.keys(summary.rtt).length > 0 ? summary.rtt : advert.rtt;
      const { rtt: _advertRtt, ...rest } = advert;
      return {
        ...rest,
        ...(rtt && Object.keys(rtt).length > 0 ? { rtt } : {}),
        reachable,
        ...(cost !== undefined ? { cost } : {}),
        ...(summary ? { traffic: { at: summary.at, services: summary.services, dropped: summary.dropped } } : {}),
      };
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
    const summaries = this.trafficDb.all();
    if (summaries.length > 0) session.sendTraffic(summaries);
    this.dialerOf.get(session)?.sessionUp();
    const info = this.linkInfo(session);
    const key = linkKey(info.direction, info.name, info.remoteSiteId);
    const ups = this.linkUps.get(key) ?? 0;
    if (this.linkUps.size < MAX_TRAFFIC_ENTRIES || this.linkUps.has(key)) this.linkUps.set(key, ups + 1);
    if (linkUpChannel.hasSubscribers) linkUpChannel.publish(build.linkUp(this.siteId, info, ups));
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
    if (wasUp && linkDownChannel.hasSubscribers) {
      linkDownChannel.publish(build.linkDown(this.siteId, this.linkInfo(session, dialer), dialer?.state !== "up" && dialer?.message ? dialer.message : reason));
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

  traffic(session: LinkSession, summaries: TrafficSummary[]): void {
    // Only sites the routing database knows: a peer cannot make us hold summaries of made-up sites.
    const accepted = summaries.filter((summary) => this.db.get(summary.id) !== undefined && this.trafficDb.accept(summary, this.siteId));
    if (accepted.length === 0) return;
    for (const [peerId, set] of this.peers) {
      if (peerId === session.peerSiteId) continue;
      for (const other of set) other.sendTraffic(accepted);
    }
    this.notifyChange();
  }

  incomingStream(session: LinkSession, id: number, request: { key: string; dest: string; origin: string; hops: number }): void {
    if (request.dest === this.siteId) {
      this.acceptAtConnector(session, id, request);
      return;
    }
    if (request.hops <= 0) {
      this.refuseOpen(session, id, request, ResetCode.Unreachable, "hop limit exceeded");
      return;
    }
    const next = this.sessionToward(request.dest);
    if (!next) {
      this.refuseOpen(session, id, request, ResetCode.Unreachable, `site ${request.dest} is not reachable from ${this.identity.siteName}`);
      return;
    }
    let record: StreamRecord | undefined = undefined;
    const [upstream, downstream] = RelayEnd.pair(() => this.streamClosed(record as StreamRecord, relayOutcome(upstream, downstream), upstream.resetCode ?? downstream.resetCode, upstream.resetReason ?? downstream.resetReason));
    record = this.openRecord("relay", request, request.origin, upstream);
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
      listener.counts.refused++;
      resetSocket(socket);
      if (streamCloseChannel.hasSubscribers) {
        const request = { key: key ?? listener.config.routingKey, dest: "", origin: this.siteId };
        const info = this.streamInfo({ id: ++this.streamSeq, role: "listener", routingKey: request.key, origin: this.siteId, dest: "", remote: "", resource: listener.name, startedAt: Date.now() });
        streamCloseChannel.publish(build.streamClose(this.siteId, info, "refused", { bytesIn: 0, bytesOut: 0 }, undefined, "no reachable connector"));
      }
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
      listener.counts.refused++;
      resetSocket(socket);
      return;
    }
    const accounting: BridgeAccounting = { group: listener.connections, counter, role: "listener" };
    const bridge = new SocketBridge(socket, this, accounting);
    accounting.record = this.openRecord("listener", { key, dest, origin: this.siteId }, dest, bridge, listener.name, listener.counts);
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
    const record = bridge.accounting.record as StreamRecord | undefined;
    if (record) {
      const outcome: StreamOutcome = bridge.resetCode === undefined ? "end" : bridge.accepted ? "reset" : "refused";
      this.streamClosed(record, outcome, bridge.resetCode, bridge.resetReason);
    }
  }

  /** The links and streams open now, as the messages of their events (for a subscriber that comes late). */
  observe(): ObservedState {
    const links: LinkUpMessage[] = [];
    for (const set of this.peers.values()) {
      for (const session of set) {
        if (session.state !== "up") continue;
        const info = this.linkInfo(session);
        links.push(build.linkUp(this.siteId, info, Math.max(0, (this.linkUps.get(linkKey(info.direction, info.name, info.remoteSiteId)) ?? 1) - 1)));
      }
    }
    const streams: StreamOpenMessage[] = [];
    for (const entry of this.trafficEntries.values()) {
      for (const record of entry.open) streams.push(build.streamOpen(this.siteId, this.streamInfo(record), record.stats));
    }
    return { links, streams };
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

  private acceptAtConnector(session: LinkSession, id: number, request: { key: string; dest: string; origin: string }): void {
    const key = request.key;
    const connector = this.pickLocalConnector(key);
    if (!connector) {
      this.refuseOpen(session, id, request, ResetCode.NoConnector, `no connector for "${key}" at site ${this.identity.siteName}`);
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
    const accounting: BridgeAccounting = { group: connector.connections, role: "connector" };
    bridge = new SocketBridge(socket, this, accounting);
    accounting.record = this.openRecord("connector", request, request.origin, bridge, connector.name, connector.counts);
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
      const request = { key, dest: this.siteId, origin: this.siteId };
      let records: [StreamRecord, StreamRecord] | undefined = undefined;
      const splice: LocalSplice = new LocalSplice(client, backend, () => {
        listener.connections.delete(splice);
        connector.connections.delete(splice);
        this.release(counter);
        const outcome: StreamOutcome = splice.aborted ? "reset" : "end";
        for (const record of records ?? []) this.streamClosed(record, outcome, splice.aborted ? ResetCode.Cancelled : undefined, undefined);
      });
      const clientSide: StreamStats = {
        get bytesIn() {
          return splice.fromService;
        },
        get bytesOut() {
          return splice.toService;
        },
      };
      const backendSide: StreamStats = {
        get bytesIn() {
          return splice.toService;
        },
        get bytesOut() {
          return splice.fromService;
        },
      };
      records = [
        this.openRecord("listener", request, this.siteId, clientSide, listener.name, listener.counts),
        this.openRecord("connector", request, this.siteId, backendSide, connector.name, connector.counts),
      ];
      listener.connections.add(splice);
      connector.connections.add(splice);
      splice.start();
    });
  }

  // ---- observation: links, streams, traffic summaries ----

  private linkInfo(session: LinkSession, dialer = this.dialerOf.get(session)): LinkInfo {
    return {
      name: dialer?.name ?? session.peer?.linkName ?? "",
      direction: session.role === "dialer" ? "outgoing" : "incoming",
      remoteSiteId: session.peer?.siteId ?? "",
      remoteSiteName: session.peer?.siteName ?? "",
      cost: session.cost,
      stats: session,
    };
  }

  /**
   * The (role, key, peer) account a stream is counted in. Keys and sites come from the network's
   * adverts, so their number is bounded by the network; a key or site no advert names (a peer
   * making them up) is counted as "(other)", and past MAX_TRAFFIC_ENTRIES everything new is.
   */
  private entryFor(role: StreamRole, routingKey: string, peer: string): TrafficEntry {
    const id = `${role}\n${routingKey}\n${peer}`;
    let entry = this.trafficEntries.get(id);
    if (entry) return entry;
    if (this.trafficEntries.size >= MAX_TRAFFIC_ENTRIES) return this.entryFor(role, OTHER, OTHER);
    entry = { role, routingKey, peer, opened: 0, refused: 0, reset: 0, closedToService: 0, closedFromService: 0, open: new Set() };
    this.trafficEntries.set(id, entry);
    return entry;
  }

  /** A key and site as they may be counted: known to the network, or "(other)". */
  private knownKey(key: string, site: string): string {
    if (this.db.get(site)?.connectors[key] !== undefined || this.db.get(site)?.listeners[key] !== undefined) return key;
    for (const connector of this.connectors.values()) if (connector.config.routingKey === key) return key;
    return OTHER;
  }

  private knownSite(site: string): string {
    return this.db.get(site) ? site : OTHER;
  }

  private openRecord(
    role: StreamRole,
    request: { key: string; dest: string; origin: string },
    remote: string,
    stats: StreamStats,
    resource?: string,
    counts?: ServiceCounts,
  ): StreamRecord {
    const site = this.knownSite(remote);
    const routingKey = role === "listener" ? request.key : this.knownKey(request.key, request.dest);
    const entry = this.entryFor(role, routingKey, site);
    entry.opened++;
    if (counts) counts.opened++;
    const record: StreamRecord = {
      id: ++this.streamSeq,
      role,
      routingKey,
      origin: this.knownSite(request.origin),
      dest: this.knownSite(request.dest),
      remote: site,
      ...(resource !== undefined ? { resource } : {}),
      startedAt: Date.now(),
      stats,
      entry,
      ...(counts ? { counts } : {}),
    };
    entry.open.add(record);
    if (streamOpenChannel.hasSubscribers) streamOpenChannel.publish(build.streamOpen(this.siteId, this.streamInfo(record), stats));
    return record;
  }

  private streamClosed(record: StreamRecord, outcome: StreamOutcome, resetCode: number | undefined, reason: string | undefined): void {
    const { entry, counts } = record;
    if (!entry.open.delete(record)) return;
    const to = toService(record);
    const from = fromService(record);
    entry.closedToService += to;
    entry.closedFromService += from;
    if (outcome === "refused") entry.refused++;
    else if (outcome === "reset") entry.reset++;
    if (counts) {
      counts.closedToService += to;
      counts.closedFromService += from;
      if (outcome === "refused") counts.refused++;
      else if (outcome === "reset") counts.reset++;
    }
    if (streamCloseChannel.hasSubscribers) {
      streamCloseChannel.publish(build.streamClose(this.siteId, this.streamInfo(record), outcome, record.stats, resetCode, reason));
    }
  }

  /** An OPEN refused on arrival, without a stream end: counted and reported as refused. */
  private refuseOpen(session: LinkSession, id: number, request: { key: string; dest: string; origin: string }, code: number, message: string): void {
    session.refuse(id, code, message);
    const role: StreamRole = request.dest === this.siteId ? "connector" : "relay";
    const site = this.knownSite(request.origin);
    const entry = this.entryFor(role, this.knownKey(request.key, request.dest), site);
    entry.opened++;
    entry.refused++;
    if (streamCloseChannel.hasSubscribers) {
      const info = this.streamInfo({
        id: ++this.streamSeq,
        role,
        routingKey: entry.routingKey,
        origin: site,
        dest: this.knownSite(request.dest),
        remote: site,
        startedAt: Date.now(),
      });
      streamCloseChannel.publish(build.streamClose(this.siteId, info, "refused", { bytesIn: 0, bytesOut: 0 }, code, message));
    }
  }

  private streamInfo(record: Omit<StreamRecord, "stats" | "entry"> | StreamRecord): StreamInfo {
    if (record.info) return record.info;
    const info: StreamInfo = {
      id: record.id,
      role: record.role,
      routingKey: record.routingKey,
      originSiteId: record.origin,
      destSiteId: record.dest,
      remoteSiteId: record.remote,
      remoteSiteName: this.db.get(record.remote)?.name ?? record.remote,
      ...(record.resource !== undefined ? { resource: record.resource } : {}),
      startedAt: record.startedAt,
    };
    record.info = info;
    return info;
  }

  /** This site's summary as it would be sent now (without sequence number and time). */
  private summaryContent(): Omit<TrafficSummary, "seq" | "at"> {
    const rtt: Record<string, number> = {};
    for (const peerId of this.peers.keys()) {
      const session = this.bestSession(peerId);
      if (session?.rttMs !== undefined) rtt[peerId] = Math.round(session.rttMs * 10) / 10;
    }
    const all: TrafficService[] = [];
    for (const entry of this.trafficEntries.values()) {
      if (entry.role === "relay") continue;
      let to = entry.closedToService;
      let from = entry.closedFromService;
      for (const record of entry.open) {
        to += toService(record);
        from += fromService(record);
      }
      all.push({
        routingKey: entry.routingKey,
        role: entry.role,
        peer: entry.peer,
        opened: entry.opened,
        active: entry.open.size,
        bytesIn: entry.role === "listener" ? from : to,
        bytesOut: entry.role === "listener" ? to : from,
      });
    }
    all.sort((a, b) => (a.routingKey < b.routingKey ? -1 : a.routingKey > b.routingKey ? 1 : a.role < b.role ? -1 : a.role > b.role ? 1 : a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : 0));
    const { services, dropped } = boundServices(all);
    return { id: this.siteId, instance: this.db.self.instance, rtt, services, dropped };
  }

  /** Our own summary as status shows it: fresh counters, the last sequence number. */
  private currentSummary(): TrafficSummary {
    return { ...this.summaryContent(), seq: this.lastSummary?.seq ?? 0, at: Date.now() };
  }

  /**
   * Every TRAFFIC interval: rebuilds this site's summary and, if it says something new, stores it
   * and sends it to every neighbour (who pass it on like an advert). At most one per interval.
   */
  private trafficTick(): void {
    if (this.closed) return;
    const content = this.summaryContent();
    if (!summaryChanged(this.lastSummary, content)) return;
    const summary: TrafficSummary = { ...content, seq: (this.lastSummary?.seq ?? 0) + 1, at: Date.now() };
    this.lastSummary = summary;
    this.trafficDb.setSelf(summary);
    for (const set of this.peers.values()) for (const session of set) session.sendTraffic([summary]);
    this.notifyChange();
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
    // One entry per neighbour site, however many links join us to it: the link that carries
    // the traffic (bestSession) gives the cost. RTT is not in the advert (it changes all the
    // time; adverts change on events only): it travels in the traffic summary.
    for (const peerId of this.peers.keys()) {
      const session = this.bestSession(peerId);
      if (!session) continue;
      links[peerId] = session.cost;
    }
    const connectors: Record<string, number> = {};
    for (const c of this.connectors.values()) connectors[c.config.routingKey] = (connectors[c.config.routingKey] ?? 0) + 1;
    const listeners: Record<string, number> = {};
    for (const l of this.listeners.values()) for (const key of listenerKeys(l.config)) listeners[key] = (listeners[key] ?? 0) + 1;
    const advert = this.db.updateSelf({ links, connectors, listeners });
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

function linkKey(direction: string, name: string, remoteSiteId: string): string {
  return `${direction}\n${name}\n${remoteSiteId}`;
}

function relayOutcome(upstream: StreamEndpoint, downstream: StreamEndpoint): StreamOutcome {
  if (upstream.resetCode === undefined && downstream.resetCode === undefined) return "end";
  return upstream.accepted ? "reset" : "refused";
}

/** A listener's or connector's counts, with the live bytes of its open connections. */
function serviceTraffic(role: "listener" | "connector", counts: ServiceCounts, open: Iterable<{ toService: number; fromService: number }>): ServiceTraffic {
  let to = counts.closedToService;
  let from = counts.closedFromService;
  for (const c of open) {
    to += c.toService;
    from += c.fromService;
  }
  return {
    opened: counts.opened,
    refused: counts.refused,
    reset: counts.reset,
    bytesIn: role === "listener" ? from : to,
    bytesOut: role === "listener" ? to : from,
  };
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
