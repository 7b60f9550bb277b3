/**
 * Bounds what unauthenticated clients can hold on a listening port: at most `maxConnections`
 * of them at once, and none for longer than its deadline, counted from acceptance, not from the
 * last byte, so trickling bytes does not help. When the limit is reached, the oldest pending
 * connection is closed to make room: a flood of idle connections then cannot lock out a client
 * that completes its handshake promptly, and the descriptors held stay bounded either way.
 * A server admits each accepted socket and says when the client has proved who it is; from then
 * on the connection no longer counts and has no deadline here (its protocol bounds idle time).
 *
 * Protocol-agnostic: works for `net`, `tls` and `http(s)` servers alike. For a TLS server, admit
 * the raw socket from the server's own 'connection' event; destroying it closes the TLS socket
 * too. (A plain `net.Server` in front that hands sockets on with `emit("connection")` works as
 * well, but the TLS sockets it yields are measurably slower for their whole life.)
 */
import type net from "node:net";
import type tls from "node:tls";

export interface UnauthenticatedConnectionLimits {
  /** Connections admitted but not yet authenticated; more are closed at once. */
  maxConnections: number;
  /** The longest a connection may stay unauthenticated, from the moment it was accepted. */
  timeoutMs: number;
}

export interface PendingConnection {
  /** Replaces the deadline with a new one `timeoutMs` from now, for the next phase of a handshake. */
  restartDeadline(timeoutMs: number, reason: string): void;
  /** The client proved who it is: the connection stops counting and loses its deadline. */
  authenticated(): void;
}

export interface LimiterEvents {
  /** A pending connection was closed to make room for a newer one. */
  evicted?(socket: net.Socket, reason: string): void;
  /** A connection was closed because it did not authenticate in time. */
  expired?(socket: net.Socket, reason: string): void;
}

interface Entry {
  socket: net.Socket;
  timer: NodeJS.Timeout | undefined;
}

export class UnauthenticatedConnectionLimiter {
  /** In order of acceptance: the first is the oldest. */
  private readonly entries = new Set<Entry>();

  constructor(
    private readonly limits: UnauthenticatedConnectionLimits,
    private readonly events: LimiterEvents = {},
  ) {
    if (!(limits.maxConnections >= 1)) throw new Error(`the limit of unauthenticated connections must be at least 1, not ${limits.maxConnections}`);
  }

  /** Connections admitted and neither authenticated nor closed yet. */
  get pending(): number {
    return this.entries.size;
  }

  /**
   * Admits a just-accepted socket, closing the oldest pending one first if the limit is reached.
   * `expiryReason` is reported if the first deadline passes.
   */
  admit(socket: net.Socket, expiryReason = `the client did not authenticate within ${seconds(this.limits.timeoutMs)}`): PendingConnection {
    while (this.entries.size >= this.limits.maxConnections) {
      const oldest = this.entries.values().next().value as Entry;
      this.settle(oldest);
      this.events.evicted?.(oldest.socket, `${this.limits.maxConnections} connections were already waiting to authenticate; the oldest was closed`);
      oldest.socket.destroy();
    }
    const entry: Entry = { socket, timer: undefined };
    this.entries.add(entry);
    const onClose = () => this.settle(entry);
    socket.once("close", onClose);
    const arm = (timeoutMs: number, reason: string) => {
      if (entry.timer) clearTimeout(entry.timer);
      entry.timer = setTimeout(() => {
        this.settle(entry);
        this.events.expired?.(socket, reason);
        socket.destroy();
      }, timeoutMs);
      entry.timer.unref();
    };
    arm(this.limits.timeoutMs, expiryReason);
    return {
      restartDeadline: (timeoutMs, reason) => {
        if (this.entries.has(entry)) arm(timeoutMs, reason);
      },
      authenticated: () => {
        this.settle(entry);
        socket.removeListener("close", onClose);
      },
    };
  }

  private settle(entry: Entry): void {
    if (!this.entries.delete(entry)) return;
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = undefined;
  }
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

/**
 * For a TLS server: admits every raw socket it accepts to `limiter` (from its own 'connection'
 * event), and returns how to claim a socket's pending entry once its handshake is done
 * ('secureConnection'); undefined when the limiter has already closed it.
 */
export function admitTlsHandshakes(
  server: tls.Server,
  limiter: UnauthenticatedConnectionLimiter,
  reason: string,
): (socket: tls.TLSSocket) => PendingConnection | undefined {
  const handshaking = new Map<string, PendingConnection>();
  const keyOf = (socket: net.Socket) => `${socket.remoteAddress}|${socket.remotePort}`;
  server.on("connection", (socket: net.Socket) => {
    const pending = limiter.admit(socket, reason);
    const key = keyOf(socket);
    handshaking.set(key, pending);
    socket.once("close", () => {
      if (handshaking.get(key) === pending) handshaking.delete(key);
    });
  });
  return (socket) => {
    const key = keyOf(socket);
    const pending = handshaking.get(key);
    handshaking.delete(key);
    return pending;
  };
}
