/**
 * The TCP adaptor's unit: one application TCP socket bridged to one stream on a link.
 * Listener side: the client socket (paused until the far end has reached its backend).
 * Connector side: the socket to the backend.
 */
import { Socket } from "node:net";
import { TLSSocket } from "node:tls";
import { holdCopy, readIntoSharedBuffer, WriteBatch, type HeldCopy } from "./buffers.js";
import { scheduleFlush, type Flushable } from "./flush.js";
import { MAX_DATA_PAYLOAD, ResetCode } from "./frames.js";
import type { LinkWaiter } from "./session.js";
import { StreamEndpoint } from "./stream.js";

/** Local socket buffer size: corked writes of a few frames do not report backpressure. */
export const SOCKET_HIGH_WATER_MARK = 256 * 1024;
/** Unsent bytes in a local socket's buffer up to which its consumer counts as keeping up. */
const KEEPING_UP_BYTES = 64 * 1024;
/** Pieces up to this size may skip the batching wait (see onData). */
const DIRECT_WRITE_MAX = 4096;

export interface BridgeOwner {
  /** Called once when the bridge is finished, however it ended. */
  bridgeClosed(bridge: SocketBridge): void;
}

/** Where a bridge is counted while it is open. */
export interface BridgeAccounting {
  /** The listener's or connector's set of open connections. */
  group: Set<unknown>;
  /** Balancing counter key (listener side only). */
  counter?: string;
  /** Which side of the service this bridge is: decides which way is "to the service". */
  role: "listener" | "connector";
  /** The router's record of the stream, for counting and events. */
  record?: unknown;
}

export class SocketBridge extends StreamEndpoint implements Flushable, LinkWaiter {
  /** Bytes read from the socket that did not fit in the stream's credit yet (a view of `held`). */
  private pending: Buffer | undefined;
  private held: HeldCopy | undefined;
  /** The socket's read side ended; FIN goes out once `pending` is sent. */
  private readEnded = false;
  private pausedForLink = false;
  /** Stream data of this event-loop turn, written to the socket together when it ends. */
  private batch: WriteBatch | undefined;
  private corked = false;
  /** Bytes handed to socket.write() and bytes already credited back to the sender. */
  private delivered = 0;
  private credited = 0;
  private finished = false;
  /** Listener side: abandons the stream if it is not accepted in time. */
  acceptTimer: NodeJS.Timeout | undefined;

  /** Payload bytes from the client toward the service, and back (Connection). */
  get toService(): number {
    return this.accounting.role === "listener" ? this.bytesOut : this.bytesIn;
  }

  get fromService(): number {
    return this.accounting.role === "listener" ? this.bytesIn : this.bytesOut;
  }

  /** Ended with both FINs (not by a reset). */
  get endedCleanly(): boolean {
    return this.resetCode === undefined;
  }

  constructor(
    readonly socket: Socket,
    private readonly owner: BridgeOwner,
    readonly accounting: BridgeAccounting,
  ) {
    super();
    accounting.group.add(this);
  }

  private started = false;

  /** Starts moving bytes: called when the stream is accepted (listener side) or the backend is connected (connector side). */
  start(): void {
    if (this.started) return; // a repeated ACCEPT must not attach the socket twice
    this.started = true;
    const socket = this.socket;
    const onRead = (chunk: Buffer) => this.onSocketData(chunk);
    readIntoSharedBuffer(socket, onRead);
    // Reads that arrived before, or all of them where the shared buffer is not available.
    socket.on("data", onRead);
    socket.on("end", () => this.onSocketEnd());
    socket.on("drain", () => this.creditCheck());
    socket.resume();
  }

  /** Listens for socket failures from the moment the bridge exists. */
  watch(): void {
    this.socket.on("error", () => this.abort(ResetCode.Cancelled, "the local connection failed"));
    this.socket.on("close", () => this.onSocketClose());
  }

  // ---- stream → socket ----

  override onAccept(): void {
    this.clearAcceptTimer();
    this.start();
  }

  /** `chunk` is copied: it is a view of the link's read buffer, which the next read overwrites. */
  override onData(chunk: Buffer): void {
    if (this.socket.destroyed) return;
    const batch = (this.batch ??= new WriteBatch());
    batch.append(chunk);
    this.delivered += chunk.length;
    if (!this.corked && chunk.length <= DIRECT_WRITE_MAX) {
      // As on the link: a lone small piece goes out now; the rest of the tick is batched.
      batch.writeTo(this.socket);
    }
    if (!this.corked) {
      this.corked = true;
      scheduleFlush(this);
    }
  }

  override onFin(): void {
    if (!this.socket.destroyed) {
      this.flush();
      this.socket.end();
    }
    this.finishIfDone();
  }

  override onReset(_code: number, _message: string): void {
    if (this.finished) return;
    this.clearAcceptTimer();
    this.finished = true;
    this.closed = true;
    this.hold(undefined);
    if (!this.socket.destroyed) resetSocket(this.socket);
    this.owner.bridgeClosed(this);
  }

  // ---- socket → stream ----

  override onWindow(): void {
    this.resumeReading();
  }

  resumeFromLink(): void {
    this.pausedForLink = false;
    this.resumeReading();
  }

  flush(): void {
    if (!this.corked) return;
    this.corked = false;
    if (this.socket.destroyed) this.batch?.discard();
    else this.batch?.writeTo(this.socket);
    this.creditCheck();
  }

  /** Tears the connection down from this side: reset to the far end, RST to the local socket. */
  abort(code: number, message: string): void {
    if (this.finished) return;
    this.clearAcceptTimer();
    this.finished = true;
    this.sendReset(code, message);
    this.closed = true;
    this.hold(undefined);
    if (!this.socket.destroyed) resetSocket(this.socket);
    this.owner.bridgeClosed(this);
  }

  private onSocketData(chunk: Buffer): void {
    if (this.closed) return;
    if (this.pending || this.sendCredit < chunk.length || this.session?.blocked) {
      // Copied: `chunk` may be a view of the shared read buffer.
      this.hold(this.pending ? Buffer.concat([this.pending, chunk]) : chunk);
      this.socket.pause();
      this.sendPending();
      return;
    }
    if (chunk.length <= MAX_DATA_PAYLOAD) this.sendData(chunk);
    else this.sendSliced(chunk);
    if (this.session?.blocked) this.pauseForLink();
  }

  private sendSliced(chunk: Buffer): void {
    for (let offset = 0; offset < chunk.length; offset += MAX_DATA_PAYLOAD) {
      this.sendData(chunk.subarray(offset, Math.min(chunk.length, offset + MAX_DATA_PAYLOAD)));
    }
  }

  /** Sends as much of `pending` as credit and the link allow; returns true when all was sent. */
  private sendPending(): boolean {
    while (this.pending && this.sendCredit > 0 && !this.closed) {
      if (this.session?.blocked) {
        this.pauseForLink();
        return false;
      }
      const size = Math.min(this.sendCredit, MAX_DATA_PAYLOAD, this.pending.length);
      const piece = this.pending.subarray(0, size);
      this.pending = size === this.pending.length ? undefined : this.pending.subarray(size);
      this.sendData(piece);
      if (!this.pending) this.hold(undefined);
    }
    if (this.pending) return false;
    if (this.readEnded) this.sendFinAndCheck();
    return true;
  }

  /** Keeps a copy of `data` as `pending` (none: lets go of what was held). */
  private hold(data: Buffer | undefined): void {
    const previous = this.held;
    this.held = data ? holdCopy(data) : undefined;
    this.pending = this.held?.bytes;
    previous?.release();
  }

  private resumeReading(): void {
    if (this.closed || this.pausedForLink) return;
    if (!this.sendPending()) return;
    if (!this.readEnded && this.sendCredit > 0 && this.socket.isPaused()) this.socket.resume();
  }

  private pauseForLink(): void {
    if (this.pausedForLink || !this.session) return;
    this.pausedForLink = true;
    this.socket.pause();
    this.session.waitForDrain(this);
  }

  private onSocketEnd(): void {
    this.readEnded = true;
    if (!this.pending) this.sendFinAndCheck();
  }

  private sendFinAndCheck(): void {
    this.sendFin();
    this.finishIfDone();
  }

  /** Returns credit for bytes the socket has taken off our hands. */
  private creditCheck(): void {
    if (this.closed) return;
    const consumed = this.delivered - this.socket.writableLength - (this.batch?.bytes ?? 0);
    if (consumed - this.credited >= this.creditThreshold) {
      // Keeping up: what was written is already out of Node's buffer, or nearly.
      this.returnCredit(consumed - this.credited, this.socket.writableLength <= KEEPING_UP_BYTES);
      this.credited = consumed;
    }
  }

  private clearAcceptTimer(): void {
    if (this.acceptTimer) clearTimeout(this.acceptTimer);
    this.acceptTimer = undefined;
  }

  private onSocketClose(): void {
    if (this.finished) return;
    if (this.sentFin && this.gotFin) {
      this.finished = true;
      this.owner.bridgeClosed(this);
      return;
    }
    // Both directions ended cleanly (what the socket sent last may still wait for window, its
    // FIN after it): not an abort. sendPending sends the rest and the FIN, and finishIfDone then
    // sees the closed socket.
    if (this.readEnded && this.gotFin) return;
    this.abort(ResetCode.Cancelled, "the local connection closed");
  }

  private finishIfDone(): void {
    if (this.finished || !this.sentFin || !this.gotFin) return;
    // Both directions ended cleanly; the socket closes itself once its writes are flushed.
    if (this.socket.destroyed || this.socket.closed) {
      this.finished = true;
      this.owner.bridgeClosed(this);
    }
  }
}

/** RST to the local peer: an aborted stream must never look like a clean end of data. */
export function resetSocket(socket: Socket): void {
  try {
    socket.resetAndDestroy();
  } catch {
    // A TLS socket cannot reset itself: reset the TCP socket under it, where there is one.
    const raw = rawSocketOf(socket);
    if (raw) {
      resetSocket(raw);
      socket.destroy();
    } else socket.destroy();
  }
}

/** The raw TCP socket under a TLS socket that a server accepted (Node keeps it as `_parent`). */
function rawSocketOf(socket: Socket): Socket | undefined {
  const parent = socket instanceof TLSSocket ? (socket as unknown as { _parent?: unknown })._parent : undefined;
  return parent instanceof Socket && !(parent instanceof TLSSocket) ? parent : undefined;
}
