/**
 * Bounds on the connections of the grant server. Anyone who can reach its port may connect
 * (redeeming a token is what authenticates a client, so every connection starts out
 * unauthenticated), so no connection may hold a descriptor longer than the documented limits
 * and the number of connections open at once is capped.
 *
 * Node's own `headersTimeout`/`requestTimeout` are checked only every
 * `connectionsCheckingInterval` (30 s by default) and only once a request has started, and the
 * TLS handshake timeout defaults to 120 s; so every connection here gets deadlines of its own,
 * counted from the moment it was accepted:
 *
 * - the TLS handshake must be done within `handshakeTimeoutMs`,
 * - the request headers must be in within `headersTimeoutMs`,
 * - the whole request (headers and body) within `requestTimeoutMs`; a connection whose request
 *   has not been answered by then is closed, unless its response is already being written,
 * - a response being written gets at most `idleTimeoutMs` more; and at any point, a connection
 *   on which no byte moves for `idleTimeoutMs` is closed.
 *
 * Connections beyond `maxConnections` are closed as soon as they are accepted.
 *
 * (The link port gets a generic limiter in src/common; this one is the grant server's own.)
 */
import type { Socket } from "node:net";
import type { Server as TlsServer, TLSSocket } from "node:tls";
import { logger } from "../common/log.js";

const log = logger("grant-server");

export interface ConnectionLimits {
  /** The TLS handshake must complete within this time after the connection was accepted. */
  handshakeTimeoutMs: number;
  /** The request headers must be complete within this time after the connection was accepted. */
  headersTimeoutMs: number;
  /** The whole request must be in, and answered, within this time after the connection was accepted. */
  requestTimeoutMs: number;
  /** A connection on which no byte moves in either direction for this long is closed. */
  idleTimeoutMs: number;
  /** Connections open at once; any more are closed as soon as they are accepted. */
  maxConnections: number;
}

export const DEFAULT_CONNECTION_LIMITS: Readonly<ConnectionLimits> = Object.freeze({
  handshakeTimeoutMs: 5_000,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 15_000,
  idleTimeoutMs: 5_000,
  maxConnections: 64,
});

/** The defaults with `overrides` applied; throws if the result is not a consistent set of limits. */
export function connectionLimits(overrides: Partial<ConnectionLimits> = {}): ConnectionLimits {
  const limits = { ...DEFAULT_CONNECTION_LIMITS, ...overrides };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isInteger(value) || value <= 0) {
      throw new RangeError(`grant server limit ${name} must be a positive integer (got ${String(value)})`);
    }
  }
  if (limits.handshakeTimeoutMs > limits.headersTimeoutMs || limits.headersTimeoutMs > limits.requestTimeoutMs) {
    throw new RangeError(
      `grant server limits must satisfy handshakeTimeoutMs <= headersTimeoutMs <= requestTimeoutMs (got ${limits.handshakeTimeoutMs}, ${limits.headersTimeoutMs}, ${limits.requestTimeoutMs})`,
    );
  }
  return limits;
}

/** How far a connection has come; each deadline applies to the stages before it. */
export type ConnectionStage = "handshake" | "headers" | "body" | "processing" | "responding";

interface TrackedConnection {
  raw: Socket;
  tls?: TLSSocket;
  stage: ConnectionStage;
  timers: NodeJS.Timeout[];
  released: boolean;
}

export class ConnectionGuard {
  /** Accepted sockets, by remote address, until their TLS socket shows up under the same address. */
  private readonly accepting = new Map<string, TrackedConnection>();
  private readonly bySocket = new WeakMap<Socket, TrackedConnection>();
  private open = 0;
  private droppedCount = 0;
  private lastDropLog = 0;

  constructor(readonly limits: ConnectionLimits) {}

  /** Connections currently open (accepted and not yet closed). */
  get openConnections(): number {
    return this.open;
  }

  /** Connections closed at once because `maxConnections` were already open. */
  get dropped(): number {
    return this.droppedCount;
  }

  /** Installs the cap and the deadlines on a TLS (or HTTPS) server before it listens. */
  attach(server: TlsServer): void {
    // net.Server closes connections beyond this at accept time, before any byte is read.
    server.maxConnections = this.limits.maxConnections;
    server.on("drop", () => this.droppedConnection());
    server.on("connection", (raw: Socket) => this.accepted(raw));
    server.on("secureConnection", (socket: TLSSocket) => this.secured(socket));
  }

  /** Records how far the request on `socket` has come (the socket of an IncomingMessage). */
  advance(socket: Socket | null | undefined, stage: ConnectionStage): void {
    const tracked = socket ? this.bySocket.get(socket) : undefined;
    if (tracked) tracked.stage = stage;
  }

  private accepted(raw: Socket): void {
    const tracked: TrackedConnection = { raw, stage: "handshake", timers: [], released: false };
    this.open++;
    const key = addressKey(raw);
    if (key) this.accepting.set(key, tracked);
    const { handshakeTimeoutMs, headersTimeoutMs, requestTimeoutMs, idleTimeoutMs } = this.limits;
    this.deadline(tracked, handshakeTimeoutMs, ["handshake"], "the TLS handshake was not completed");
    this.deadline(tracked, headersTimeoutMs, ["handshake", "headers"], "the request headers were not received");
    this.deadline(tracked, requestTimeoutMs, ["handshake", "headers", "body", "processing"], "the request was not completed");
    this.deadline(tracked, requestTimeoutMs + idleTimeoutMs, ["handshake", "headers", "body", "processing", "responding"], "the response was not taken");
    raw.once("close", () => {
      this.release(tracked);
      if (key && this.accepting.get(key) === tracked) this.accepting.delete(key);
    });
  }

  private secured(socket: TLSSocket): void {
    const key = addressKey(socket);
    const tracked = key ? this.accepting.get(key) : undefined;
    if (!tracked) {
      // Only a connection that is already gone has no address; nothing to serve.
      socket.destroy();
      return;
    }
    this.accepting.delete(key as string);
    tracked.tls = socket;
    tracked.stage = "headers";
    this.bySocket.set(socket, tracked);
    socket.setTimeout(this.limits.idleTimeoutMs);
    socket.on("timeout", () => this.expire(tracked, `no data moved for ${this.limits.idleTimeoutMs} ms`));
    socket.once("close", () => this.release(tracked));
  }

  private deadline(tracked: TrackedConnection, afterMs: number, stages: ConnectionStage[], what: string): void {
    const timer = setTimeout(() => {
      if (stages.includes(tracked.stage)) this.expire(tracked, `${what} within ${afterMs} ms of connecting`);
    }, afterMs);
    timer.unref();
    tracked.timers.push(timer);
  }

  private expire(tracked: TrackedConnection, why: string): void {
    if (tracked.released) return;
    log.debug(`closing a connection from ${tracked.raw.remoteAddress ?? "?"}: ${why}`);
    (tracked.tls ?? tracked.raw).destroy();
    tracked.raw.destroy();
  }

  private release(tracked: TrackedConnection): void {
    if (tracked.released) return;
    tracked.released = true;
    this.open--;
    for (const timer of tracked.timers) clearTimeout(timer);
    tracked.timers.length = 0;
  }

  private droppedConnection(): void {
    this.droppedCount++;
    const now = Date.now();
    if (now - this.lastDropLog >= 10_000) {
      this.lastDropLog = now;
      log.warn(`${this.limits.maxConnections} connections are open already; closing new ones at once (${this.droppedCount} so far)`);
    }
  }
}

/** "address|port" of a connected socket, the same for a TCP socket and the TLS socket over it. */
function addressKey(socket: Socket): string | undefined {
  const { remoteAddress, remotePort } = socket;
  return remoteAddress && remotePort ? `${remoteAddress}|${remotePort}` : undefined;
}
