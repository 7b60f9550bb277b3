/**
 * One end of a multiplexed stream on a link. Subclasses bridge it to a TCP socket
 * (SocketBridge) or to a stream on another link (relay).
 */
import { MAX_STREAM_WINDOW, STREAM_WINDOW } from "./frames.js";
import type { LinkSession } from "./session.js";

/** What an OPEN frame asks for. */
export interface OpenRequest {
  /** Routing key of the service. */
  key: string;
  /** Site id of the router with the chosen connector. */
  dest: string;
  /** Site id of the router with the listener. */
  origin: string;
  /** Hops left before the stream is refused, so a routing loop cannot circulate a stream. */
  hops: number;
}

export abstract class StreamEndpoint {
  session: LinkSession | undefined;
  id = 0;
  /** Bytes we may still send before the peer grants more. */
  sendCredit = STREAM_WINDOW;
  /** Bytes the peer may still send us; going below zero is a flow-control violation. */
  recvAllowance = STREAM_WINDOW;
  /** The credit this end grants its sender in all: STREAM_WINDOW, doubled while the receiver keeps up. */
  recvWindow = STREAM_WINDOW;
  /** We sent FIN. */
  sentFin = false;
  /** Peer sent FIN. */
  gotFin = false;
  /** Detached from the session (finished or reset). */
  closed = false;
  /** Stream payload bytes received over / sent on this end's link (StreamStats). */
  bytesIn = 0;
  bytesOut = 0;
  /** ACCEPT was sent or received on this end. */
  accepted = false;
  /** The first RESET this end sent or received (or code 5 when its link went). */
  resetCode: number | undefined;
  resetReason: string | undefined;

  /** The far end accepted the stream (its connector reached the backend). */
  abstract onAccept(): void;
  abstract onData(chunk: Buffer): void;
  /** Credit arrived; `sendCredit` already includes it. */
  abstract onWindow(): void;
  abstract onFin(): void;
  abstract onReset(code: number, message: string): void;

  /** Called by the session when its link goes away while the stream is open. */
  onLinkLost(reason: string): void {
    this.onReset(5, reason);
  }

  /** Records how the stream ended, first reset only. */
  noteReset(code: number, message: string): void {
    if (this.resetCode !== undefined) return;
    this.resetCode = code;
    this.resetReason = message;
  }

  sendData(chunk: Buffer): void {
    this.sendCredit -= chunk.length;
    this.bytesOut += chunk.length;
    this.session?.writeData(this, chunk);
  }

  /** Consumed bytes after which credit goes back: half the window. */
  get creditThreshold(): number {
    return this.recvWindow / 2;
  }

  /**
   * Returns credit for `consumed` bytes. While the consumer takes data as fast as it arrives
   * (`keepingUp`), the window doubles with each grant, up to MAX_STREAM_WINDOW: a fast stream gets
   * the bytes in flight its throughput needs. Once the consumer falls behind, credit is held back
   * until the window is down to STREAM_WINDOW again, so a slow consumer's stream holds at most
   * the initial window here (after at most MAX_STREAM_WINDOW while it slowed down).
   */
  returnCredit(consumed: number, keepingUp: boolean): void {
    let change = 0;
    if (keepingUp) change = Math.min(this.recvWindow, MAX_STREAM_WINDOW - this.recvWindow);
    else change = -Math.min(consumed, this.recvWindow - STREAM_WINDOW);
    this.recvWindow += change;
    this.grant(consumed + change);
  }

  grant(bytes: number): void {
    if (bytes <= 0 || this.closed) return;
    this.recvAllowance += bytes;
    this.session?.writeWindow(this, bytes);
  }

  sendAccept(): void {
    this.accepted = true;
    this.session?.writeAccept(this);
  }

  sendFin(): void {
    if (this.sentFin || this.closed) return;
    this.sentFin = true;
    this.session?.writeFin(this);
  }

  sendReset(code: number, message = ""): void {
    if (this.closed) return;
    this.noteReset(code, message);
    this.session?.writeReset(this, code, message);
  }
}
