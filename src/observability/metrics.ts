/**
 * Prometheus metrics of one site, built from the data-plane and grant-server events
 * (events.ts) with prom-client. Made only when the site serves metrics (the observer port):
 * until then nothing subscribes and the events cost nothing. docs/metrics.md lists every series.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import {
  CHANNELS,
  subscribe,
  type LinkDownMessage,
  type LinkInfo,
  type LinkStats,
  type LinkUpMessage,
  type StreamCloseMessage,
  type StreamOpenMessage,
  type StreamStats,
} from "./events.js";

/** What the metrics read at start: the links and streams already open (the router's `observe()`). */
export interface ObservableDataPlane {
  readonly identity: { siteId: string };
  observe?(): { links: LinkUpMessage[]; streams: StreamOpenMessage[] };
}

const LINK_LABELS = ["link", "direction", "remote_site", "remote_site_id"] as const;
const STREAM_LABELS = ["routing_key", "role", "remote_site", "remote_site_id"] as const;

type LinkLabels = Record<(typeof LINK_LABELS)[number], string>;
type StreamLabels = Record<(typeof STREAM_LABELS)[number], string>;

const linkLabels = (link: LinkInfo): LinkLabels => ({
  link: link.name,
  direction: link.direction,
  remote_site: link.remoteSiteName,
  remote_site_id: link.remoteSiteId,
});

const streamLabels = (message: StreamOpenMessage | StreamCloseMessage): StreamLabels => ({
  routing_key: message.stream.routingKey,
  role: message.stream.role,
  remote_site: message.stream.remoteSiteName,
  remote_site_id: message.stream.remoteSiteId,
});

/** A live counter source and how much of it the Prometheus counter already holds. */
interface Tracked<L, S> {
  labels: L;
  stats: S;
  seenIn: number;
  seenOut: number;
}

export class SiteMetrics {
  readonly registry = new Registry();
  private readonly unsubscribe: Array<() => void> = [];
  private readonly links = new Map<LinkStats, Tracked<LinkLabels, LinkStats>>();
  private readonly streams = new Map<number, Tracked<StreamLabels, StreamStats>>();

  private readonly linkUp: Gauge<string>;
  private readonly linkRtt: Gauge<string>;
  private readonly linkBytes: Counter<string>;
  private readonly linkReconnects: Counter<string>;
  private readonly opened: Counter<string>;
  private readonly active: Gauge<string>;
  private readonly refused: Counter<string>;
  private readonly reset: Counter<string>;
  private readonly bytes: Counter<string>;
  private readonly duration: Histogram<string>;
  private readonly redemptions: Counter<string>;

  constructor(private readonly siteId: string, options: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.linkUp = new Gauge({ name: "skupper_link_up", help: "1 while the link is up, 0 after it went down", labelNames: LINK_LABELS, registers });
    this.linkRtt = new Gauge({
      name: "skupper_link_rtt_seconds",
      help: "Latest round-trip time measured by the link's heartbeat",
      labelNames: LINK_LABELS,
      registers,
      collect: () => {
        for (const link of this.links.values()) if (link.stats.rttMs !== undefined) this.linkRtt.set(link.labels, link.stats.rttMs / 1000);
      },
    });
    this.linkBytes = new Counter({
      name: "skupper_link_bytes_total",
      help: "Bytes received (in) and sent (out) on the link, framing included",
      labelNames: [...LINK_LABELS, "way"],
      registers,
      collect: () => {
        for (const link of this.links.values()) this.catchUpLink(link);
      },
    });
    this.linkReconnects = new Counter({ name: "skupper_link_reconnects_total", help: "Times the link came up again after it had been up", labelNames: LINK_LABELS, registers });
    this.opened = new Counter({ name: "skupper_connections_opened_total", help: "Connections (streams) this site took on", labelNames: STREAM_LABELS, registers });
    this.active = new Gauge({ name: "skupper_connections_active", help: "Connections (streams) open now", labelNames: STREAM_LABELS, registers });
    this.refused = new Counter({ name: "skupper_connections_refused_total", help: "Connections refused before the far end accepted them", labelNames: [...STREAM_LABELS, "code"], registers });
    this.reset = new Counter({ name: "skupper_connections_reset_total", help: "Connections aborted after they were accepted", labelNames: [...STREAM_LABELS, "code"], registers });
    this.bytes = new Counter({
      name: "skupper_connection_bytes_total",
      help: "Payload bytes of connections, received (in) and sent (out) over the link",
      labelNames: [...STREAM_LABELS, "way"],
      registers,
      collect: () => {
        for (const stream of this.streams.values()) this.catchUpStream(stream);
      },
    });
    this.duration = new Histogram({
      name: "skupper_connection_duration_seconds",
      help: "How long connections stayed open",
      labelNames: STREAM_LABELS,
      buckets: [0.01, 0.1, 1, 10, 60, 600, 3600],
      registers,
    });
    this.redemptions = new Counter({ name: "skupper_grant_redemptions_total", help: "Access-token redemptions by outcome", labelNames: ["outcome"], registers });
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.unsubscribe.push(
      subscribe(CHANNELS.linkUp, (m) => this.onLinkUp(m)),
      subscribe(CHANNELS.linkDown, (m) => this.onLinkDown(m)),
      subscribe(CHANNELS.streamOpen, (m) => this.onStreamOpen(m)),
      subscribe(CHANNELS.streamClose, (m) => this.onStreamClose(m)),
      subscribe(CHANNELS.grantRedemption, (m) => this.redemptions.inc({ outcome: m.outcome })),
    );
  }

  /** The Prometheus text exposition of every series. */
  async metrics(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** Takes in links and streams that were open before this object subscribed. */
  adopt(state: { links: LinkUpMessage[]; streams: StreamOpenMessage[] }): void {
    for (const link of state.links) if (!this.links.has(link.link.stats)) this.onLinkUp({ ...link, reconnects: 0 });
    for (const stream of state.streams) if (!this.streams.has(stream.stream.id)) this.onStreamOpen(stream);
  }

  /** Unsubscribes from the events and drops every series. */
  stop(): void {
    for (const unsubscribe of this.unsubscribe.splice(0)) unsubscribe();
    this.links.clear();
    this.streams.clear();
    this.registry.clear();
  }

  private onLinkUp(m: LinkUpMessage): void {
    if (m.siteId !== this.siteId) return;
    const labels = linkLabels(m.link);
    this.links.set(m.link.stats, { labels, stats: m.link.stats, seenIn: 0, seenOut: 0 });
    this.linkUp.set(labels, 1);
    this.linkReconnects.inc(labels, 0);
    if (m.reconnects > 0) this.linkReconnects.inc(labels, 1);
  }

  private onLinkDown(m: LinkDownMessage): void {
    if (m.siteId !== this.siteId) return;
    const link = this.links.get(m.link.stats);
    if (link) {
      this.catchUpLink(link);
      this.links.delete(m.link.stats);
    }
    this.linkUp.set(linkLabels(m.link), 0);
  }

  private onStreamOpen(m: StreamOpenMessage): void {
    if (m.siteId !== this.siteId) return;
    const labels = streamLabels(m);
    this.streams.set(m.stream.id, { labels, stats: m.stats, seenIn: 0, seenOut: 0 });
    this.opened.inc(labels);
    this.active.inc(labels);
  }

  private onStreamClose(m: StreamCloseMessage): void {
    if (m.siteId !== this.siteId) return;
    const labels = streamLabels(m);
    const stream = this.streams.get(m.stream.id);
    if (stream) {
      this.streams.delete(m.stream.id);
      this.active.dec(labels);
      stream.stats = { bytesIn: m.bytesIn, bytesOut: m.bytesOut };
      this.catchUpStream(stream);
      this.duration.observe(labels, m.durationMs / 1000);
    } else {
      // Refused on arrival: no open event came first.
      this.opened.inc(labels);
    }
    const code = String(m.resetCode ?? "");
    if (m.outcome === "refused") this.refused.inc({ ...labels, code });
    else if (m.outcome === "reset") this.reset.inc({ ...labels, code });
  }

  private catchUpLink(link: Tracked<LinkLabels, LinkStats>): void {
    const { bytesIn, bytesOut } = link.stats;
    if (bytesIn > link.seenIn) this.linkBytes.inc({ ...link.labels, way: "in" }, bytesIn - link.seenIn);
    if (bytesOut > link.seenOut) this.linkBytes.inc({ ...link.labels, way: "out" }, bytesOut - link.seenOut);
    link.seenIn = Math.max(link.seenIn, bytesIn);
    link.seenOut = Math.max(link.seenOut, bytesOut);
  }

  private catchUpStream(stream: Tracked<StreamLabels, StreamStats>): void {
    const { bytesIn, bytesOut } = stream.stats;
    if (bytesIn > stream.seenIn) this.bytes.inc({ ...stream.labels, way: "in" }, bytesIn - stream.seenIn);
    if (bytesOut > stream.seenOut) this.bytes.inc({ ...stream.labels, way: "out" }, bytesOut - stream.seenOut);
    stream.seenIn = Math.max(stream.seenIn, bytesIn);
    stream.seenOut = Math.max(stream.seenOut, bytesOut);
  }
}

/**
 * Starts the metrics of the site whose data plane is `dataPlane`: subscribes to the events and
 * takes in the links and streams already open. `stop()` unsubscribes. Called by the site wiring
 * when the observer port is enabled, never otherwise.
 */
export function startSiteMetrics(dataPlane: ObservableDataPlane, options: { defaultMetrics?: boolean } = {}): SiteMetrics {
  const metrics = new SiteMetrics(dataPlane.identity.siteId, options);
  const now = dataPlane.observe?.();
  if (now) metrics.adopt(now);
  return metrics;
}
