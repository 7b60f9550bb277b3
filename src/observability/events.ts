/**
 * What the data plane and the grant server report, on `node:diagnostics_channel` channels (as
 * undici does). Publishers check `channel.hasSubscribers` before building a message, so with no
 * subscriber an event costs one property read; per-byte counting is integer adds on the stream
 * and link objects, which exist anyway. Logs and metrics (metrics.ts) subscribe here; so may
 * anything else in the process. See docs/metrics.md.
 */
import diagnostics from "node:diagnostics_channel";

export const CHANNELS = {
  linkUp: "skupper:link:up",
  linkDown: "skupper:link:down",
  streamOpen: "skupper:stream:open",
  streamClose: "skupper:stream:close",
  grantRedemption: "skupper:grant:redemption",
} as const;

/** Counters the data plane keeps adding to while the link is up: read them any time. */
export interface LinkStats {
  /** Bytes received on the link (frames and their headers, after TLS). */
  readonly bytesIn: number;
  /** Bytes written to the link. */
  readonly bytesOut: number;
  /** Latest round-trip time measured by the link's heartbeat, in ms; undefined before the first. */
  readonly rttMs: number | undefined;
}

export interface LinkInfo {
  /** The Link's name (outgoing), or the name the dialer gave it (incoming). */
  name: string;
  direction: "outgoing" | "incoming";
  remoteSiteId: string;
  remoteSiteName: string;
  cost: number;
  /** Live counters of this connection of the link. */
  stats: LinkStats;
}

export interface LinkUpMessage {
  /** The site whose router publishes (one process may run several routers in tests). */
  siteId: string;
  link: LinkInfo;
  /** Times this link (same name, direction and remote site) came up before on this router. */
  reconnects: number;
}

export interface LinkDownMessage {
  siteId: string;
  link: LinkInfo;
  /** Why it went down, as the Link's status says it. */
  reason: string;
}

/** Counters the data plane keeps adding to while the stream is open. */
export interface StreamStats {
  /** Payload bytes this site received for the stream over its link. */
  readonly bytesIn: number;
  /** Payload bytes this site sent for the stream over its link. */
  readonly bytesOut: number;
}

/**
 * Where this site stands in the stream: `listener` (the client side, its listener), `connector`
 * (the backend side) or `relay` (passing it between two links). `bytesIn`/`bytesOut` are
 * counted on the link toward the far end (listener, connector) or toward the origin (relay): a
 * listener's `bytesOut` and a connector's or relay's `bytesIn` are the client's bytes to the service.
 */
export type StreamRole = "listener" | "connector" | "relay";

export interface StreamInfo {
  /** Unique per router while the process runs. */
  id: number;
  role: StreamRole;
  routingKey: string;
  /** Site with the listener. */
  originSiteId: string;
  /** Site with the connector. */
  destSiteId: string;
  /** The other end of the stream as this site sees it: dest for a listener, origin otherwise. */
  remoteSiteId: string;
  remoteSiteName: string;
  /** Local listener or connector name (not for relays). */
  resource?: string;
  /** Epoch ms when this site took the stream on. */
  startedAt: number;
}

export interface StreamOpenMessage {
  siteId: string;
  stream: StreamInfo;
  /** Live: keeps growing until the stream closes. */
  stats: StreamStats;
}

export type StreamOutcome = "end" | "reset" | "refused";

export interface StreamCloseMessage {
  siteId: string;
  /** For a client refused before any stream existed (no reachable connector), `remoteSiteId` is "". */
  stream: StreamInfo;
  /** `end`: both directions finished; `reset`: aborted after it was accepted; `refused`: before. */
  outcome: StreamOutcome;
  /** The RESET code (docs/link-protocol.md §3), for `reset` and most `refused`. */
  resetCode?: number;
  reason?: string;
  bytesIn: number;
  bytesOut: number;
  durationMs: number;
}

export type RedemptionOutcome = "redeemed" | "refused" | "unknown" | "expired" | "exhausted" | "invalid" | "undelivered" | "failed" | (string & {});

export interface GrantRedemptionMessage {
  /** The AccessGrant's name, when the claim named one. */
  grant?: string;
  outcome: RedemptionOutcome;
  /** The redeeming site's name, when it said. */
  siteName?: string;
}

export const linkUpChannel = diagnostics.channel(CHANNELS.linkUp);
export const linkDownChannel = diagnostics.channel(CHANNELS.linkDown);
export const streamOpenChannel = diagnostics.channel(CHANNELS.streamOpen);
export const streamCloseChannel = diagnostics.channel(CHANNELS.streamClose);
export const grantRedemptionChannel = diagnostics.channel(CHANNELS.grantRedemption);

/**
 * The message builders the publishers call, only once they know someone subscribes. An object
 * (not loose functions) so a test can count the calls.
 */
export const build = {
  linkUp(siteId: string, link: LinkInfo, reconnects: number): LinkUpMessage {
    return { siteId, link, reconnects };
  },
  linkDown(siteId: string, link: LinkInfo, reason: string): LinkDownMessage {
    return { siteId, link, reason };
  },
  streamOpen(siteId: string, stream: StreamInfo, stats: StreamStats): StreamOpenMessage {
    return { siteId, stream, stats };
  },
  streamClose(siteId: string, stream: StreamInfo, outcome: StreamOutcome, stats: StreamStats, resetCode: number | undefined, reason: string | undefined, now = Date.now()): StreamCloseMessage {
    return {
      siteId,
      stream,
      outcome,
      ...(resetCode !== undefined ? { resetCode } : {}),
      ...(reason ? { reason } : {}),
      bytesIn: stats.bytesIn,
      bytesOut: stats.bytesOut,
      durationMs: Math.max(0, now - stream.startedAt),
    };
  },
};

type Handler<T> = (message: T) => void;

/** Subscribes to the events of one kind; returns the unsubscribe function. */
export function subscribe(name: typeof CHANNELS.linkUp, handler: Handler<LinkUpMessage>): () => void;
export function subscribe(name: typeof CHANNELS.linkDown, handler: Handler<LinkDownMessage>): () => void;
export function subscribe(name: typeof CHANNELS.streamOpen, handler: Handler<StreamOpenMessage>): () => void;
export function subscribe(name: typeof CHANNELS.streamClose, handler: Handler<StreamCloseMessage>): () => void;
export function subscribe(name: typeof CHANNELS.grantRedemption, handler: Handler<GrantRedemptionMessage>): () => void;
export function subscribe(name: string, handler: Handler<never>): () => void {
  const listener = handler as unknown as (message: unknown, name: string | symbol) => void;
  diagnostics.subscribe(name, listener);
  return () => {
    diagnostics.unsubscribe(name, listener);
  };
}
