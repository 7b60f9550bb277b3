/**
 * One link: a TLS 1.3 connection carrying many streams in both directions, link-state updates
 * and heartbeats. Either side may open streams (dialer odd ids, acceptor even ids).
 */
import type { TLSSocket } from "node:tls";
import { logger } from "../common/log.js";
import { readIntoSharedBuffer, WriteBatch } from "./buffers.js";
import { scheduleFlush, type Flushable } from "./flush.js";
import {
  FrameParser,
  HEADER_SIZE,
  writeHeader,
  FrameType,
  PROTOCOL_VERSION,
  ResetCode,
  STREAM_WINDOW,
  type FrameHandler,
} from "./frames.js";
import type { PeerIdentityCheck } from "./identity.js";
import { parseLinkStateUpdate, type LinkStateAdvert } from "./routing.js";
import { parseTrafficUpdate, type TrafficSummary } from "./traffic.js";
import type { OpenRequest, StreamEndpoint } from "./stream.js";

const log = logger("link");

/** How often the heartbeat timer looks at the link. */
const HEARTBEAT_TICK_MS = 500;
const PING_INTERVAL_MS = 1000;
/** A peer silent for this long is dead (the issue bound is 3 s; one tick of slack is inside it). */
export const DEAD_AFTER_MS = 2500;
export const DEFAULT_HELLO_TIMEOUT_MS = 10_000;
/** Our PINGs carry 8 bytes; a little room is left for later versions, no more. */
export const MAX_PING_PAYLOAD = 64;
/**
 * Replies to the peer's control frames (PONG, RESET refusing an OPEN) that may wait unsent. A peer
 * that keeps asking without reading the answers is dropped past this.
 */
export const MAX_QUEUED_CONTROL_REPLY_BYTES = 256 * 1024;
/**
 * Bytes that may wait unsent on the link socket. Writers of stream data stop at the link's
 * high-water mark (1 MiB) and wait for 'drain', so only a peer that does not read gets here.
 */
export const MAX_UNSENT_LINK_BYTES = 32 * 1024 * 1024;
/** Data frames up to this size may skip the batching wait (see writeData). */
const DIRECT_WRITE_MAX = 4096;

export interface Hello {
  v: number;
  siteId: string;
  siteName: string;
  /** Changes every time the peer's site process starts. */
  instance: number;
  version: string;
  window: number;
  /** Dialer only: the name of its Link and its cost. */
  linkName?: string;
  cost?: number;
}

export interface SessionOwner {
  sessionUp(session: LinkSession): void;
  sessionDown(session: LinkSession, reason: string, wasUp: boolean): void;
  sessionUpdated(session: LinkSession): void;
  incomingStream(session: LinkSession, id: number, request: OpenRequest): void;
  /** A LINK_STATE frame, already parsed and validated. */
  linkState(session: LinkSession, adverts: LinkStateAdvert[]): void;
  /** A TRAFFIC frame, already parsed and validated. */
  traffic?(session: LinkSession, summaries: TrafficSummary[]): void;
}

export interface SessionOptions {
  /** Checks the site id the peer announces against its certificate; absent, any id is taken. */
  identity?: PeerIdentityCheck;
  /** Default DEFAULT_HELLO_TIMEOUT_MS. */
  helloTimeoutMs?: number;
  /** Called once, when the peer's first HELLO has been accepted. */
  onHandshakeComplete?: () => void;
}

/** Something paused because the link's write buffer is full. */
export interface LinkWaiter {
  resumeFromLink(): void;
}

export type SessionRole = "dialer" | "acceptor";

export class LinkSession implements Flushable, FrameHandler {
  readonly streams = new Map<number, StreamEndpoint>();
  peer: Hello | undefined;
  state: "handshake" | "up" | "closed" = "handshake";
  rttMs: number | undefined;
  /** The link's write buffer is over its high-water mark. */
  blocked = false;
  closeReason = "";
  /** The socket error that ended the link, if one did. */
  closeError: Error | undefined;
  /**
   * True when the link was refused for what it is (its identity, a link to itself, a protocol
   * version), by either side: dialing again cannot succeed until someone changes something.
   */
  refused = false;
  readonly connectedAt = Date.now();

  private readonly parser: FrameParser;
  private readonly waiters = new Set<LinkWaiter>();
  private nextId: number;
  /** Frames of this event-loop turn, written together when it ends (see flush.ts). */
  private readonly batch = new WriteBatch();
  private corked = false;
  /** Bytes received on / written to the link socket (LinkStats). */
  bytesIn = 0;
  bytesOut = 0;
  private bytesSeen = 0;
  private lastHeardAt = Date.now();
  private lastPingAt = 0;
  private heartbeat: NodeJS.Timeout | undefined;
  private helloTimer: NodeJS.Timeout | undefined;
  /** Bytes of control replies handed to the socket and not yet written out by it. */
  private queuedControlReplyBytes = 0;

  constructor(
    readonly socket: TLSSocket,
    readonly role: SessionRole,
    private local: Hello,
    private readonly owner: SessionOwner,
    /** For logs: link name (dialer) or remote address (acceptor). */
    readonly label: string,
    private readonly options: SessionOptions = {},
  ) {
    this.nextId = role === "dialer" ? 1 : 2;
    this.parser = new FrameParser(this);
  }

  start(): void {
    const socket = this.socket;
    socket.setNoDelay(true);
    const onRead = (chunk: Buffer) => {
      this.bytesIn += chunk.length;
      this.parser.push(chunk);
    };
    readIntoSharedBuffer(socket, onRead, { paused: "never" });
    // Reads that arrived before, or all of them where the shared buffer is not available.
    socket.on("data", onRead);
    socket.on("drain", () => this.onDrain());
    socket.on("end", () => this.close("the remote site closed the link"));
    socket.on("error", (err) => {
      this.closeError ??= err;
      this.close(describeSocketError(err));
    });
    socket.on("close", () => this.close("connection closed"));
    this.sendHello();
    this.helloTimer = setTimeout(
      () => this.close("the remote site did not complete the link handshake in time"),
      this.options.helloTimeoutMs ?? DEFAULT_HELLO_TIMEOUT_MS,
    );
    this.helloTimer.unref();
    this.heartbeat = setInterval(() => this.tick(), HEARTBEAT_TICK_MS);
    this.heartbeat.unref();
  }

  /** The cost both ends use: the dialer's configured cost. */
  get cost(): number {
    return Math.max(1, (this.role === "dialer" ? this.local.cost : this.peer?.cost) ?? 1);
  }

  get peerSiteId(): string | undefined {
    return this.peer?.siteId;
  }

  /** Dialer: change the advertised cost without reconnecting. */
  updateCost(cost: number): void {
    if (this.local.cost === cost) return;
    this.local = { ...this.local, cost };
    if (this.state !== "closed") this.sendHello();
  }

  // ---- streams ----

  openStream(endpoint: StreamEndpoint, request: OpenRequest): void {
    let id = this.nextId;
    while (this.streams.has(id)) id = this.advanceId(id);
    this.nextId = this.advanceId(id);
    endpoint.session = this;
    endpoint.id = id;
    this.streams.set(id, endpoint);
    this.writeFrame(FrameType.Open, id, Buffer.from(JSON.stringify(request)));
  }

  attach(id: number, endpoint: StreamEndpoint): void {
    endpoint.session = this;
    endpoint.id = id;
    this.streams.set(id, endpoint);
  }

  /** Refuses an OPEN that no endpoint was attached to. */
  refuse(id: number, code: number, message: string): void {
    this.writeControlReply(FrameType.Reset, id, resetPayload(code, message));
  }

  /** `chunk` is copied: it may be a view of a read buffer that the next read overwrites. */
  writeData(endpoint: StreamEndpoint, chunk: Buffer): void {
    if (this.state === "closed") return;
    const frame = this.batch.claim(HEADER_SIZE + chunk.length);
    writeHeader(frame, FrameType.Data, endpoint.id, chunk.length);
    chunk.copy(frame, HEADER_SIZE);
    this.bytesOut += frame.length;
    if (!this.corked && chunk.length <= DIRECT_WRITE_MAX) {
      // The first small frame of a tick (interactive traffic) leaves at once, as one TLS record;
      // what follows in the same tick is batched as usual.
      if (!this.batch.writeTo(this.socket)) this.blocked = true;
      this.cork();
      return;
    }
    this.cork();
    this.checkBlocked();
  }

  writeWindow(endpoint: StreamEndpoint, bytes: number): void {
    const payload = Buffer.allocUnsafe(4);
    payload.writeUInt32BE(bytes, 0);
    this.writeFrame(FrameType.Window, endpoint.id, payload);
  }

  writeAccept(endpoint: StreamEndpoint): void {
    this.writeFrame(FrameType.Accept, endpoint.id);
  }

  writeFin(endpoint: StreamEndpoint): void {
    this.writeFrame(FrameType.Fin, endpoint.id);
    this.finishIfDone(endpoint);
  }

  writeReset(endpoint: StreamEndpoint, code: number, message: string): void {
    this.detach(endpoint);
    this.writeFrame(FrameType.Reset, endpoint.id, resetPayload(code, message));
  }

  /** Calls `waiter.resumeFromLink()` once the write buffer drains. */
  waitForDrain(waiter: LinkWaiter): void {
    this.waiters.add(waiter);
  }

  cancelWait(waiter: LinkWaiter): void {
    this.waiters.delete(waiter);
  }

  sendLinkState(payload: unknown): void {
    this.writeFrame(FrameType.LinkState, 0, Buffer.from(JSON.stringify(payload)));
  }

  sendTraffic(summaries: TrafficSummary[]): void {
    this.writeFrame(FrameType.Traffic, 0, Buffer.from(JSON.stringify(summaries)));
  }

  /**
   * Graceful close: tells the peer why, then ends the connection once written. `refused` marks a
   * refusal that retrying cannot cure (see `refused`), so both sides report it as an error.
   */
  shutdown(reason: string, options: { refused?: boolean } = {}): void {
    if (this.state === "closed") return;
    if (options.refused) this.refused = true;
    this.writeFrame(FrameType.GoAway, 0, Buffer.from(JSON.stringify(options.refused ? { reason, refused: true } : { reason })));
    this.flush();
    this.teardown(reason);
    this.socket.end();
    const timer = setTimeout(() => this.socket.destroy(), 2000);
    timer.unref();
  }

  close(reason: string): void {
    if (this.state === "closed") return;
    this.teardown(reason);
    this.socket.destroy();
  }

  // ---- Flushable ----

  flush(): void {
    if (!this.corked) return;
    this.corked = false;
    if (this.state === "closed" && this.socket.destroyed) {
      this.batch.discard();
      return;
    }
    if (!this.batch.writeTo(this.socket)) this.blocked = true;
    else if (this.blocked) this.onDrain(); // blocked by the batch alone: no 'drain' will come
    const unsent = this.socket.writableLength;
    if (unsent > MAX_UNSENT_LINK_BYTES) {
      this.dropPeer(`the remote site does not read from the link: ${unsent} bytes are waiting to be sent (limit ${MAX_UNSENT_LINK_BYTES})`);
    }
  }

  // ---- FrameHandler ----

  onFrame(type: number, streamId: number, payload: Buffer): void {
    if (this.state === "closed") return;
    if (streamId === 0) {
      this.onControlFrame(type, payload);
      return;
    }
    if (this.state !== "up") {
      this.protocolError(`stream frame before the link handshake completed`);
      return;
    }
    switch (type) {
      case FrameType.Open:
        this.onOpen(streamId, payload);
        return;
      case FrameType.Accept: {
        const endpoint = this.streams.get(streamId);
        if (!endpoint) return;
        endpoint.accepted = true;
        endpoint.onAccept();
        return;
      }
      case FrameType.Window: {
        const endpoint = this.streams.get(streamId);
        if (!endpoint || payload.length !== 4) return;
        endpoint.sendCredit += payload.readUInt32BE(0);
        endpoint.onWindow();
        return;
      }
      case FrameType.Fin: {
        const endpoint = this.streams.get(streamId);
        if (!endpoint) return;
        endpoint.gotFin = true;
        this.finishIfDone(endpoint);
        endpoint.onFin();
        return;
      }
      case FrameType.Reset: {
        const endpoint = this.streams.get(streamId);
        if (!endpoint) return;
        this.detach(endpoint);
        const code = payload.length > 0 ? (payload[0] as number) : ResetCode.ProtocolError;
        const reason = payload.length > 1 ? payload.toString("utf8", 1) : "";
        endpoint.noteReset(code, reason);
        endpoint.onReset(code, reason);
        return;
      }
      default:
        log.debug(`${this.label}: ignoring frame type ${type} on stream ${streamId}`);
    }
  }

  onData(streamId: number, piece: Buffer): void {
    const endpoint = this.streams.get(streamId);
    if (!endpoint) return; // data racing a reset we sent
    endpoint.recvAllowance -= piece.length;
    endpoint.bytesIn += piece.length;
    if (endpoint.recvAllowance < 0) {
      endpoint.sendReset(ResetCode.FlowControl, "flow-control window exceeded");
      endpoint.onReset(ResetCode.FlowControl, "the remote site exceeded the stream's flow-control window");
      return;
    }
    endpoint.onData(piece);
  }

  onProtocolError(message: string): void {
    this.protocolError(message);
  }

  // ---- internals ----

  private onControlFrame(type: number, payload: Buffer): void {
    if (this.state !== "up" && type !== FrameType.Hello && type !== FrameType.GoAway) {
      // Nothing else is answered, stored or even looked at for a peer that has not said who it is.
      if (type === FrameType.LinkState) return this.protocolError("link-state update before handshake");
      return this.protocolError(`control frame of type ${type} before the link handshake completed`);
    }
    switch (type) {
      case FrameType.Hello:
        this.onHello(payload);
        return;
      case FrameType.LinkState: {
        let adverts: LinkStateAdvert[];
        try {
          adverts = parseLinkStateUpdate(JSON.parse(payload.toString("utf8")));
        } catch (err) {
          this.protocolError(`bad link-state update: ${(err as Error).message}`);
          return;
        }
        // A failure in storing, flooding or route computation is this site's bug, not the
        // peer's protocol error: report it as ours and keep the link (and the process) up.
        try {
          this.owner.linkState(this, adverts);
        } catch (err) {
          log.error(`${this.label}: applying a link-state update failed (a fault in this site, not the peer): ${(err as Error).stack ?? (err as Error).message}`);
        }
        return;
      }
      case FrameType.Traffic: {
        let summaries: TrafficSummary[];
        try {
          summaries = parseTrafficUpdate(JSON.parse(payload.toString("utf8")));
        } catch (err) {
          this.protocolError(`bad traffic summary: ${(err as Error).message}`);
          return;
        }
        try {
          this.owner.traffic?.(this, summaries);
        } catch (err) {
          log.error(`${this.label}: applying a traffic summary failed (a fault in this site, not the peer): ${(err as Error).stack ?? (err as Error).message}`);
        }
        return;
      }
      case FrameType.Ping:
        if (payload.length > MAX_PING_PAYLOAD) {
          this.protocolError(`PING payload of ${payload.length} bytes exceeds the limit of ${MAX_PING_PAYLOAD}`);
          return;
        }
        this.writeControlReply(FrameType.Pong, 0, payload);
        return;
      case FrameType.Pong:
        if (payload.length === 8) {
          const sent = payload.readBigUInt64BE(0);
          this.rttMs = Number(process.hrtime.bigint() - sent) / 1e6;
        }
        return;
      case FrameType.GoAway: {
        let reason = "the remote site closed the link";
        try {
          const parsed = JSON.parse(payload.toString("utf8")) as { reason?: unknown; refused?: unknown };
          if (parsed.refused === true) this.refused = true;
          if (typeof parsed.reason === "string") reason = `the remote site ${this.refused ? "refused" : "closed"} the link: ${parsed.reason}`;
        } catch {
          // keep the generic reason
        }
        this.close(reason);
        return;
      }
      default:
        log.debug(`${this.label}: ignoring control frame type ${type}`);
    }
  }

  private onHello(payload: Buffer): void {
    let hello: Hello;
    try {
      hello = parseHello(payload);
    } catch (err) {
      this.protocolError(`bad handshake: ${(err as Error).message}`);
      return;
    }
    if (hello.v !== PROTOCOL_VERSION) {
      this.shutdown(`link protocol version ${hello.v} is not supported (this site speaks ${PROTOCOL_VERSION})`, { refused: true });
      return;
    }
    if (hello.siteId === this.local.siteId) {
      this.shutdown("a site cannot link to itself", { refused: true });
      return;
    }
    if (this.peer && this.peer.siteId !== hello.siteId) {
      this.protocolError("the remote site changed its identity on an open link");
      return;
    }
    const first = this.peer === undefined;
    if (first) {
      const refusal = this.options.identity?.verify(hello.siteId);
      if (refusal !== undefined) {
        log.warn(`${this.label}: refused the link: ${refusal}`);
        this.shutdown(refusal, { refused: true });
        return;
      }
    }
    this.peer = hello;
    if (first) {
      if (this.helloTimer) clearTimeout(this.helloTimer);
      this.state = "up";
      this.options.onHandshakeComplete?.();
      this.owner.sessionUp(this);
    } else {
      this.owner.sessionUpdated(this);
    }
  }

  private onOpen(id: number, payload: Buffer): void {
    const peerParity = this.role === "dialer" ? 0 : 1;
    if (id % 2 !== peerParity || this.streams.has(id)) {
      this.protocolError(`stream id ${id} is not valid for the remote site to open`);
      return;
    }
    let request: OpenRequest;
    try {
      request = parseOpen(payload);
    } catch (err) {
      this.refuse(id, ResetCode.ProtocolError, `bad OPEN: ${(err as Error).message}`);
      return;
    }
    this.owner.incomingStream(this, id, request);
  }

  private sendHello(): void {
    this.writeFrame(FrameType.Hello, 0, Buffer.from(JSON.stringify(this.local)));
  }

  private writeFrame(type: number, streamId: number, payload?: Buffer, written?: () => void): void {
    if (this.state === "closed") return;
    const length = payload ? payload.length : 0;
    const frame = this.batch.claim(HEADER_SIZE + length, written);
    writeHeader(frame, type, streamId, length);
    if (payload) payload.copy(frame, HEADER_SIZE);
    this.bytesOut += frame.length;
    this.cork();
    this.checkBlocked();
  }

  /** Blocks writers of stream data while the turn's frames and the socket's unsent bytes fill the link's buffer. */
  private checkBlocked(): void {
    if (this.batch.bytes + this.socket.writableLength >= this.socket.writableHighWaterMark) this.blocked = true;
  }

  /**
   * Writes a frame that answers one of the peer's, counting it until the socket has written it
   * out: a peer that keeps asking but does not read is dropped instead of buffered without end.
   */
  private writeControlReply(type: number, streamId: number, payload: Buffer): void {
    if (this.state === "closed") return;
    const bytes = HEADER_SIZE + payload.length;
    if (this.queuedControlReplyBytes + bytes > MAX_QUEUED_CONTROL_REPLY_BYTES) {
      this.dropPeer(
        `the remote site does not read the replies to its control frames: ${this.queuedControlReplyBytes} bytes of replies are waiting to be sent (limit ${MAX_QUEUED_CONTROL_REPLY_BYTES})`,
      );
      return;
    }
    this.queuedControlReplyBytes += bytes;
    this.writeFrame(type, streamId, payload, () => {
      this.queuedControlReplyBytes -= bytes;
    });
  }

  /** Ends a link whose peer misbehaves in a way a GOAWAY would not help with (it is not reading). */
  private dropPeer(reason: string): void {
    if (this.state === "closed") return;
    log.warn(`${this.label}: dropping the link: ${reason}`);
    this.close(reason);
  }

  private cork(): void {
    if (this.corked) return;
    this.corked = true;
    scheduleFlush(this);
  }

  private onDrain(): void {
    this.blocked = false;
    if (this.waiters.size === 0) return;
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const waiter of waiters) {
      if (this.blocked) {
        this.waiters.add(waiter);
        continue;
      }
      waiter.resumeFromLink();
    }
  }

  private finishIfDone(endpoint: StreamEndpoint): void {
    if (endpoint.sentFin && endpoint.gotFin) this.detach(endpoint);
  }

  private detach(endpoint: StreamEndpoint): void {
    endpoint.closed = true;
    if (this.streams.get(endpoint.id) === endpoint) this.streams.delete(endpoint.id);
  }

  private advanceId(id: number): number {
    const next = id + 2;
    return next > 0xffffffff ? (this.role === "dialer" ? 1 : 2) : next;
  }

  private tick(): void {
    if (this.state === "closed") return;
    const now = Date.now();
    if (this.bytesIn !== this.bytesSeen) {
      this.bytesSeen = this.bytesIn;
      this.lastHeardAt = now;
    } else if (now - this.lastHeardAt >= DEAD_AFTER_MS) {
      // Timers run before the reads of an event-loop turn: after this process was stalled (CPU
      // starved, a long GC), bytes from a live peer may be waiting unread. Judge after them.
      setImmediate(() => {
        if (this.state === "closed" || this.bytesIn !== this.bytesSeen) return;
        this.close(`no heartbeat from the remote site for ${Math.round((Date.now() - this.lastHeardAt) / 1000)} s`);
      });
    }
    if (now - this.lastPingAt >= PING_INTERVAL_MS - HEARTBEAT_TICK_MS / 2) {
      this.lastPingAt = now;
      const payload = Buffer.allocUnsafe(8);
      payload.writeBigUInt64BE(process.hrtime.bigint(), 0);
      this.writeFrame(FrameType.Ping, 0, payload);
    }
  }

  private protocolError(message: string): void {
    log.warn(`${this.label}: protocol error: ${message}`);
    this.shutdown(`protocol error: ${message}`);
  }

  private teardown(reason: string): void {
    if (this.state === "closed") return; // e.g. the flush of a GOAWAY found a peer that does not read
    const wasUp = this.state === "up";
    this.state = "closed";
    this.closeReason = reason;
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.helloTimer) clearTimeout(this.helloTimer);
    this.waiters.clear();
    const streams = [...this.streams.values()];
    this.streams.clear();
    for (const endpoint of streams) {
      endpoint.closed = true;
      endpoint.noteReset(ResetCode.LinkLost, reason);
      endpoint.onLinkLost(reason);
    }
    this.owner.sessionDown(this, reason, wasUp);
  }
}

function resetPayload(code: number, message: string): Buffer {
  const text = Buffer.from(message.slice(0, 512), "utf8");
  const payload = Buffer.allocUnsafe(1 + text.length);
  payload[0] = code;
  text.copy(payload, 1);
  return payload;
}

function parseHello(payload: Buffer): Hello {
  const value = JSON.parse(payload.toString("utf8")) as Record<string, unknown>;
  const str = (key: string) => {
    if (typeof value[key] !== "string" || value[key] === "") throw new Error(`"${key}" must be a non-empty string`);
    return value[key] as string;
  };
  const num = (key: string) => {
    if (typeof value[key] !== "number" || !Number.isFinite(value[key])) throw new Error(`"${key}" must be a number`);
    return value[key] as number;
  };
  const hello: Hello = {
    v: num("v"),
    siteId: str("siteId"),
    siteName: str("siteName"),
    instance: num("instance"),
    version: typeof value.version === "string" ? value.version : "unknown",
    window: typeof value.window === "number" ? value.window : STREAM_WINDOW,
  };
  if (typeof value.linkName === "string") hello.linkName = value.linkName;
  if (typeof value.cost === "number" && Number.isInteger(value.cost)) hello.cost = value.cost;
  return hello;
}

function parseOpen(payload: Buffer): OpenRequest {
  const value = JSON.parse(payload.toString("utf8")) as Record<string, unknown>;
  const { key, dest, origin, hops } = value;
  if (typeof key !== "string" || key === "") throw new Error("routing key missing");
  if (typeof dest !== "string" || typeof origin !== "string") throw new Error("destination or origin missing");
  if (typeof hops !== "number" || !Number.isInteger(hops)) throw new Error("hop count missing");
  return { key, dest, origin, hops };
}

/** Turns a socket error into a sentence about the link. */
export function describeSocketError(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case "ECONNRESET":
      return "the connection was reset by the remote site";
    case "EPIPE":
      return "the remote site closed the connection";
    case "ETIMEDOUT":
      return "the connection timed out";
    default:
      return err.message;
  }
}
