/**
 * Links without TLS or the network, for unit tests of the data plane (src/router/): sockets
 * that `LinkSession` accepts in place of a TLSSocket, sessions wired back to back, stream ends
 * that record what they receive and grant credit only when told, routers joined in memory, and
 * bounded waits.
 *
 * - `FakeSocket` only records what a session writes; the test feeds frames in by hand.
 * - `memorySocketPair()` gives two connected sockets. Bytes written on one are delivered to the
 *   other in FIFO order, in pieces of up to `chunkSize` bytes (default 64 KiB; several writes
 *   may share a piece), one piece per `setImmediate` turn, like a TLS socket handing over records. Writes under `cork()` wait for `uncork()`. A side can
 *   stop reading (`pauseReading()`): the writer's buffer then fills, `write()` returns false
 *   past `highWaterMark`, and `drain` comes once it has emptied again, as with a real socket.
 *   Every delivered byte also passes a tap that parses frames, so tests can count what crossed
 *   the wire per stream.
 */
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import type { TLSSocket } from "node:tls";
import { encodeFrame, FrameParser, FrameType, HEADER_SIZE, PROTOCOL_VERSION, WINDOW_UPDATE_THRESHOLD } from "../../src/router/frames.js";
import type { LinkDialer } from "../../src/router/links.js";
import type { Router } from "../../src/router/router.js";
import { LinkSession, type Hello, type SessionOwner } from "../../src/router/session.js";
import { StreamEndpoint, type OpenRequest } from "../../src/router/stream.js";

// ---- frames ----

/** One frame as bytes. */
export const frame = (type: number, stream: number, payload?: string | Buffer): Buffer =>
  Buffer.concat(encodeFrame(type, stream, payload === undefined ? undefined : Buffer.isBuffer(payload) ? payload : Buffer.from(payload, "latin1")));

export interface ParsedFrame {
  type: number;
  stream: number;
  payload: Buffer;
}

/** Parses a byte string made of whole frames (DATA pieces are reported as DATA frames). */
export function parseFrames(bytes: Buffer): ParsedFrame[] {
  const out: ParsedFrame[] = [];
  new FrameParser({
    onFrame: (type, stream, payload) => out.push({ type, stream, payload: Buffer.from(payload) }),
    onData: (stream, payload) => out.push({ type: FrameType.Data, stream, payload: Buffer.from(payload) }),
    onProtocolError: (message) => assert.fail(message),
  }).push(bytes);
  return out;
}

// ---- a socket that only records ----

/** Just enough of a TLS socket for LinkSession: records what is written. */
export class FakeSocket extends EventEmitter {
  readonly written: Buffer[] = [];
  /**
   * A session writes the frames of a turn when the turn ends; `fakeSession` sets this to flush
   * them, so that `frames()` shows everything written so far.
   */
  flushWriter: (() => void) | undefined;
  ended = false;
  destroyed = false;
  setNoDelay(): this {
    return this;
  }
  cork(): void {}
  uncork(): void {}
  write(chunk: Buffer): boolean {
    this.written.push(Buffer.from(chunk));
    return true;
  }
  end(): void {
    this.ended = true;
  }
  destroy(): void {
    this.destroyed = true;
  }
  /** Frames written so far, parsed. */
  frames(): ParsedFrame[] {
    this.flushWriter?.();
    return parseFrames(Buffer.concat(this.written));
  }
}

// ---- sessions ----

/** A SessionOwner that records what the session reports, and optionally hands OPENs to a callback. */
export class RecordingOwner implements SessionOwner {
  up = 0;
  down: Array<{ reason: string; wasUp: boolean }> = [];
  incoming: Array<{ id: number; key: string }> = [];
  states: unknown[] = [];
  constructor(private readonly onOpen?: (session: LinkSession, id: number, request: OpenRequest) => void) {}
  sessionUp(): void {
    this.up++;
  }
  sessionDown(_session: LinkSession, reason: string, wasUp: boolean): void {
    this.down.push({ reason, wasUp });
  }
  sessionUpdated(): void {}
  incomingStream(session: LinkSession, id: number, request: OpenRequest): void {
    this.incoming.push({ id, key: request.key });
    this.onOpen?.(session, id, request);
  }
  linkState(_session: LinkSession, payload: unknown): void {
    this.states.push(payload);
  }
}

export const localHello: Hello = { v: PROTOCOL_VERSION, siteId: "site-local", siteName: "local", instance: 1, version: "test", window: 1 << 20 };
export const peerHello: Hello = { v: PROTOCOL_VERSION, siteId: "site-peer", siteName: "peer", instance: 2, version: "test", window: 1 << 20 };

/** A started session on a FakeSocket; `feed` delivers frames as if the peer had sent them. */
export function fakeSession(role: "dialer" | "acceptor" = "acceptor"): {
  socket: FakeSocket;
  owner: RecordingOwner;
  link: LinkSession;
  feed: (...frames: Buffer[]) => void;
} {
  const socket = new FakeSocket();
  const owner = new RecordingOwner();
  const link = new LinkSession(socket as unknown as TLSSocket, role, localHello, owner, "test-link");
  socket.flushWriter = () => link.flush();
  link.start();
  const feed = (...frames: Buffer[]) => socket.emit("data", Buffer.concat(frames));
  return { socket, owner, link, feed };
}

/** The reason in the first GOAWAY the session wrote, if any. */
export function goAwayReason(socket: FakeSocket): string | undefined {
  const goAway = socket.frames().find((f) => f.type === FrameType.GoAway);
  return goAway ? (JSON.parse(goAway.payload.toString()) as { reason: string }).reason : undefined;
}

// ---- connected in-memory sockets ----

/**
 * What crossed one direction of a memory link, frame by frame: DATA frames are counted (length
 * only), other frames are kept. Parsed here, independently of FrameParser, so a parser bug does
 * not hide itself.
 */
export class WireTap {
  readonly frames: Array<{ type: number; stream: number; payload?: Buffer; length: number }> = [];
  /** DATA payload bytes per stream id. */
  readonly dataBytes = new Map<number, number>();
  bytes = 0;
  private header = Buffer.alloc(0);
  private current: { type: number; stream: number; payload?: Buffer; length: number } | undefined;
  private remaining = 0;
  private parts: Buffer[] = [];

  push(chunk: Buffer): void {
    this.bytes += chunk.length;
    let offset = 0;
    while (offset < chunk.length) {
      if (!this.current) {
        const take = Math.min(HEADER_SIZE - this.header.length, chunk.length - offset);
        this.header = Buffer.concat([this.header, chunk.subarray(offset, offset + take)]);
        offset += take;
        if (this.header.length < HEADER_SIZE) return;
        const type = this.header[0] as number;
        this.current = { type, stream: this.header.readUInt32BE(1), length: this.header.readUInt32BE(5) };
        this.remaining = this.current.length;
        this.header = Buffer.alloc(0);
        this.frames.push(this.current);
      }
      const current = this.current;
      const take = Math.min(this.remaining, chunk.length - offset);
      if (current.type === FrameType.Data) this.dataBytes.set(current.stream, this.data(current.stream) + take);
      else this.parts.push(chunk.subarray(offset, offset + take));
      offset += take;
      this.remaining -= take;
      if (this.remaining === 0) {
        if (current.type !== FrameType.Data) current.payload = Buffer.concat(this.parts);
        this.parts = [];
        this.current = undefined;
      }
    }
  }

  data(stream: number): number {
    return this.dataBytes.get(stream) ?? 0;
  }

  /** Frames of `type` (optionally on `stream`). */
  of(type: number, stream?: number): Array<{ type: number; stream: number; payload?: Buffer; length: number }> {
    return this.frames.filter((f) => f.type === type && (stream === undefined || f.stream === stream));
  }

  /** RESET frames as stream, code and reason. */
  resets(stream?: number): Array<{ stream: number; code: number; reason: string }> {
    return this.of(FrameType.Reset, stream).map((f) => ({ stream: f.stream, code: f.payload?.[0] ?? -1, reason: f.payload?.toString("utf8", 1) ?? "" }));
  }
}

const sockets = new Set<MemorySocket>();

export interface MemorySocketOptions {
  /** Largest piece handed to the reader in one turn. */
  chunkSize?: number;
  /** Write buffer size above which write() returns false (a link uses 1 MiB). */
  highWaterMark?: number;
}

export class MemorySocket extends EventEmitter {
  peer!: MemorySocket;
  /** Everything this socket wrote that the peer has received. */
  readonly tap = new WireTap();
  destroyed = false;
  remoteAddress: string | undefined = undefined;
  private queue: Buffer[] = [];
  private queued = 0;
  private corks = 0;
  private needDrain = false;
  private ending = false;
  private scheduled = false;
  private readingPaused = false;
  private readonly chunkSize: number;
  private readonly highWaterMark: number;

  constructor(options: MemorySocketOptions = {}) {
    super();
    this.chunkSize = options.chunkSize ?? 64 * 1024;
    this.highWaterMark = options.highWaterMark ?? 1024 * 1024;
    sockets.add(this);
  }

  /** Bytes written but not yet received by the peer. */
  get writableLength(): number {
    return this.queued;
  }

  get writableHighWaterMark(): number {
    return this.highWaterMark;
  }

  setNoDelay(): this {
    return this;
  }

  cork(): void {
    this.corks++;
  }

  uncork(): void {
    if (this.corks > 0) this.corks--;
    this.schedule();
  }

  write(chunk: Buffer): boolean {
    if (this.destroyed || this.ending) return false;
    if (chunk.length > 0) {
      this.queue.push(Buffer.from(chunk));
      this.queued += chunk.length;
      this.schedule();
    }
    const ok = this.queued < this.highWaterMark;
    if (!ok) this.needDrain = true;
    return ok;
  }

  /** Graceful end: what was written is still delivered, then the peer sees `end` and both close. */
  end(): void {
    if (this.destroyed || this.ending) return;
    this.ending = true;
    this.corks = 0;
    this.schedule();
  }

  /** Like a TCP close: written data still arrives, then the peer sees `end`. */
  destroy(err?: Error): void {
    if (this.destroyed) return;
    if (err) {
      this.destroyed = true;
      this.queue = [];
      this.queued = 0;
      process.nextTick(() => {
        this.emit("error", err);
        this.emit("close");
        this.peer.abort();
      });
      return;
    }
    this.end();
    this.destroyed = true;
  }

  /** The connection breaks: both sides see ECONNRESET and close; nothing queued arrives. */
  cut(): void {
    this.queue = [];
    this.queued = 0;
    this.destroyed = true;
    process.nextTick(() => {
      this.emit("close");
      this.peer.abort();
    });
  }

  /** This side stops reading: the peer's writes pile up in its buffer. */
  pauseReading(): void {
    this.readingPaused = true;
  }

  resumeReading(): void {
    this.readingPaused = false;
    this.peer.schedule();
  }

  /** Nothing queued in either direction. */
  get idle(): boolean {
    return this.sendIdle && this.peer.sendIdle;
  }

  /** Nothing to deliver, or the peer does not read. */
  private get sendIdle(): boolean {
    return !this.scheduled && (this.queued === 0 || this.peer.readingPaused) && !this.ending;
  }

  private abort(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.queue = [];
    this.queued = 0;
    this.emit("error", Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }));
    this.emit("close");
  }

  private schedule(): void {
    if (this.scheduled || this.corks > 0) return;
    if (this.queue.length === 0 && !this.ending) return;
    this.scheduled = true;
    setImmediate(() => this.deliver());
  }

  private deliver(): void {
    this.scheduled = false;
    const peer = this.peer;
    if (peer.readingPaused && this.queue.length > 0) return; // resumeReading() reschedules
    if (peer.destroyed && !peer.ending) {
      this.queue = [];
      this.queued = 0;
      return;
    }
    if (this.queue.length > 0) {
      // One piece of up to chunkSize bytes per turn, made of as many queued writes as fit.
      const parts: Buffer[] = [];
      let size = 0;
      while (size < this.chunkSize && this.queue.length > 0) {
        const head = this.queue[0] as Buffer;
        const take = Math.min(head.length, this.chunkSize - size);
        parts.push(take === head.length ? head : head.subarray(0, take));
        if (take === head.length) this.queue.shift();
        else this.queue[0] = head.subarray(take);
        size += take;
      }
      const piece = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
      this.queued -= piece.length;
      this.tap.push(piece);
      peer.emit("data", piece);
      if (this.needDrain && this.queued === 0 && !this.destroyed) {
        this.needDrain = false;
        this.emit("drain");
      }
      if (this.queue.length > 0 || this.ending) this.schedule();
      return;
    }
    if (this.ending) {
      this.ending = false;
      this.destroyed = true;
      peer.emit("end");
      peer.destroyed = true;
      this.emit("close");
      peer.emit("close");
    }
  }
}

/** Two connected in-memory sockets. */
export function memorySocketPair(options: MemorySocketOptions = {}): [MemorySocket, MemorySocket] {
  const a = new MemorySocket(options);
  const b = new MemorySocket(options);
  a.peer = b;
  b.peer = a;
  return [a, b];
}

// ---- waiting ----

/** Resolves once `condition()` holds; fails after `timeoutMs` naming what it waited for. */
export async function until(what: string, condition: () => boolean, timeoutMs = 1500): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/**
 * Resolves once no memory socket has anything in flight for a few consecutive turns (pending
 * setImmediate flushes included), i.e. the sessions have nothing more to say to each other.
 */
export async function settle(timeoutMs = 1500): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let quiet = 0;
  while (quiet < 3) {
    if (Date.now() > deadline) throw new Error(`memory links still busy after ${timeoutMs} ms`);
    await new Promise((resolve) => setImmediate(resolve));
    quiet = [...sockets].every((s) => s.destroyed || s.idle) ? quiet + 1 : 0;
  }
}

/** Forgets closed sockets (call between tests so `settle` looks only at live ones). */
export function forgetSockets(): void {
  sockets.clear();
}

// ---- session pairs ----

export interface SessionPair {
  /** The dialer's session (odd stream ids). */
  a: LinkSession;
  /** The acceptor's session (even stream ids). */
  b: LinkSession;
  ownerA: RecordingOwner;
  ownerB: RecordingOwner;
  socketA: MemorySocket;
  socketB: MemorySocket;
  close(): void;
}

export interface PairOptions extends MemorySocketOptions {
  /** Called for each OPEN that reaches `a` / `b`: attach an endpoint or refuse. */
  onOpenA?: (session: LinkSession, id: number, request: OpenRequest) => void;
  onOpenB?: (session: LinkSession, id: number, request: OpenRequest) => void;
  siteA?: string;
  siteB?: string;
}

/** Two sessions on a memory link, handshake done (both up). */
export async function sessionPair(options: PairOptions = {}): Promise<SessionPair> {
  const [socketA, socketB] = memorySocketPair(options);
  const ownerA = new RecordingOwner(options.onOpenA);
  const ownerB = new RecordingOwner(options.onOpenB);
  const siteA = options.siteA ?? "site-a";
  const siteB = options.siteB ?? "site-b";
  const hello = (siteId: string, instance: number): Hello => ({ v: PROTOCOL_VERSION, siteId, siteName: siteId, instance, version: "test", window: 1 << 20 });
  const a = new LinkSession(socketA as unknown as TLSSocket, "dialer", { ...hello(siteA, 1), linkName: "a-to-b", cost: 1 }, ownerA, "a");
  const b = new LinkSession(socketB as unknown as TLSSocket, "acceptor", hello(siteB, 2), ownerB, "b");
  a.start();
  b.start();
  await until("both sessions up", () => a.state === "up" && b.state === "up");
  return {
    a,
    b,
    ownerA,
    ownerB,
    socketA,
    socketB,
    close() {
      a.close("test over");
      b.close("test over");
    },
  };
}

// ---- stream ends under test control ----

export interface EndpointEvent {
  kind: "accept" | "fin" | "reset" | "window";
  code?: number;
  message?: string;
}

/**
 * A stream end for tests. Receiving: counts (and optionally keeps) bytes; returns credit only
 * when `consume()` is called, or as a reader would if `autoRead` is set. Sending: `write()`
 * respects credit and holds the rest until WINDOW frames arrive; `writeIgnoringCredit()` does not.
 */
export class TestEndpoint extends StreamEndpoint {
  readonly events: EndpointEvent[] = [];
  received = 0;
  readonly chunks: Buffer[] = [];
  private unconsumed = 0;
  private outbox: Buffer[] = [];
  private finAfterOutbox = false;

  constructor(private readonly options: { autoRead?: boolean; keep?: boolean } = {}) {
    super();
  }

  override onAccept(): void {
    this.events.push({ kind: "accept" });
  }
  override onData(chunk: Buffer): void {
    this.received += chunk.length;
    this.unconsumed += chunk.length;
    if (this.options.keep) this.chunks.push(Buffer.from(chunk));
    if (this.options.autoRead && this.unconsumed >= WINDOW_UPDATE_THRESHOLD) this.consume();
  }
  override onWindow(): void {
    this.events.push({ kind: "window" });
    this.pump();
  }
  override onFin(): void {
    this.events.push({ kind: "fin" });
  }
  override onReset(code: number, message: string): void {
    this.events.push({ kind: "reset", code, message });
    this.closed = true;
  }

  get text(): string {
    return Buffer.concat(this.chunks).toString();
  }

  get reset(): EndpointEvent | undefined {
    return this.events.find((e) => e.kind === "reset");
  }

  has(kind: EndpointEvent["kind"]): boolean {
    return this.events.some((e) => e.kind === kind);
  }

  /** The reader takes everything received so far: credit goes back to the sender. */
  consume(): void {
    const bytes = this.unconsumed;
    this.unconsumed = 0;
    this.grant(bytes);
  }

  /** Bytes held back for lack of credit. */
  get backlog(): number {
    return this.outbox.reduce((n, b) => n + b.length, 0);
  }

  /** Sends within credit, in pieces of at most 64 KiB; holds the rest until credit comes. */
  write(data: Buffer | string): void {
    this.outbox.push(Buffer.isBuffer(data) ? data : Buffer.from(data));
    this.pump();
  }

  /** FIN once everything written has been sent. */
  end(): void {
    this.finAfterOutbox = true;
    this.pump();
  }

  writeIgnoringCredit(data: Buffer): void {
    this.sendData(data);
  }

  private pump(): void {
    while (this.outbox.length > 0 && this.sendCredit > 0 && !this.closed) {
      const head = this.outbox[0] as Buffer;
      const size = Math.min(head.length, this.sendCredit, 64 * 1024);
      this.sendData(head.subarray(0, size));
      if (size === head.length) this.outbox.shift();
      else this.outbox[0] = head.subarray(size);
    }
    if (this.outbox.length === 0 && this.finAfterOutbox && !this.closed) {
      this.finAfterOutbox = false;
      this.sendFin();
    }
  }
}

/** Attaches a fresh TestEndpoint to every OPEN a session receives; they are collected in `ends`. */
export function acceptInto(ends: TestEndpoint[], options: { autoRead?: boolean; keep?: boolean; accept?: boolean } = {}) {
  return (session: LinkSession, id: number): void => {
    const end = new TestEndpoint(options);
    session.attach(id, end);
    ends.push(end);
    if (options.accept !== false) end.sendAccept();
  };
}

export const request = (key = "backend", dest = "site-b", origin = "site-a", hops = 32): OpenRequest => ({ key, dest, origin, hops });

// ---- routers on memory links ----

/**
 * Links two routers in memory: `dialer` plays the side with the Link (odd stream ids), `acceptor`
 * the side with link access. Only the session layer is real: there is no LinkDialer, so nothing
 * reconnects, and the link does not show in `status().outgoing`.
 */
export function linkRouters(
  dialer: Router,
  acceptor: Router,
  options: MemorySocketOptions & { cost?: number; name?: string } = {},
): { socketA: MemorySocket; socketB: MemorySocket; session: LinkSession; close: () => void } {
  const [socketA, socketB] = memorySocketPair(options);
  acceptor.acceptSession(socketB as unknown as TLSSocket, { certificate: undefined, helloTimeoutMs: 10_000, authenticated() {} });
  const standIn = {
    name: options.name ?? `${dialer.siteId}-to-${acceptor.siteId}`,
    config: { cost: options.cost ?? 1 },
    sessionUp() {},
    sessionDown() {},
  } as unknown as LinkDialer;
  const session = dialer.startSession(socketA as unknown as TLSSocket, standIn, undefined);
  return { socketA, socketB, session, close: () => session.close("test over") };
}
