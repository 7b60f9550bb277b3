/**
 * A stream relayed through an intermediate router: two stream ends on two links, each
 * forwarding what the other receives. Data waits here while the next hop has no credit or its
 * link's write buffer is full, and credit is returned upstream only as data moves on, so a relay
 * holds at most one window per direction, never stops reading its links, and cannot be made to
 * fill a link socket that its peer does not read (whatever credit that peer grants).
 */
import { holdCopy, type HeldCopy } from "./buffers.js";
import { ResetCode } from "./frames.js";
import type { LinkWaiter } from "./session.js";
import { StreamEndpoint } from "./stream.js";

export class RelayEnd extends StreamEndpoint implements LinkWaiter {
  other!: RelayEnd;
  /** Data received on `other` waiting for credit on this end: copies, as reads are views of a buffer the next read overwrites. */
  private queue: HeldCopy[] = [];
  /** Bytes of the queue's head already sent. */
  private headSent = 0;
  private waitingForLink = false;
  private finQueued = false;
  /** Bytes forwarded from this end's input but not yet credited back to its sender. */
  private uncredited = 0;

  constructor(private readonly onDone: () => void) {
    super();
  }

  static pair(onDone: () => void): [RelayEnd, RelayEnd] {
    let remaining = 2;
    const done = () => {
      if (--remaining === 0) onDone();
    };
    const upstream = new RelayEnd(done);
    const downstream = new RelayEnd(done);
    upstream.other = downstream;
    downstream.other = upstream;
    return [upstream, downstream];
  }

  override onAccept(): void {
    this.other.sendAccept();
  }

  override onData(chunk: Buffer): void {
    const out = this.other;
    if (out.closed) return;
    if (out.queue.length === 0 && out.sendCredit >= chunk.length && !out.session?.blocked) {
      out.sendData(chunk);
      this.forwarded(chunk.length);
      return;
    }
    out.queue.push(holdCopy(chunk));
    out.drain();
  }

  override onWindow(): void {
    this.drain();
  }

  resumeFromLink(): void {
    this.waitingForLink = false;
    this.drain();
  }

  override onFin(): void {
    const out = this.other;
    if (out.queue.length === 0) out.sendFin();
    else out.finQueued = true;
    this.checkDone();
    out.checkDone();
  }

  override onReset(code: number, message: string): void {
    this.clearQueue();
    this.other.clearQueue();
    if (this.waitingForLink) this.session?.cancelWait(this);
    if (this.other.waitingForLink) this.other.session?.cancelWait(this.other);
    this.other.sendReset(code, message);
    this.markDone();
    this.other.markDone();
  }

  override onLinkLost(reason: string): void {
    this.onReset(ResetCode.LinkLost, reason);
  }

  /** Sends queued data as far as credit and the link's write buffer allow. */
  private drain(): void {
    while (this.queue.length > 0 && this.sendCredit > 0 && !this.closed) {
      if (this.session?.blocked) {
        if (!this.waitingForLink) {
          this.waitingForLink = true;
          this.session.waitForDrain(this);
        }
        return;
      }
      const head = this.queue[0] as HeldCopy;
      const piece = head.bytes.subarray(this.headSent, Math.min(head.bytes.length, this.headSent + this.sendCredit));
      this.sendData(piece);
      this.other.forwarded(piece.length);
      this.headSent += piece.length;
      if (this.headSent === head.bytes.length) {
        this.queue.shift();
        this.headSent = 0;
        head.release();
      }
    }
    if (this.queue.length === 0 && this.finQueued) {
      this.finQueued = false;
      this.sendFin();
      this.checkDone();
    }
  }

  private clearQueue(): void {
    for (const held of this.queue) held.release();
    this.queue = [];
    this.headSent = 0;
  }

  private forwarded(bytes: number): void {
    this.uncredited += bytes;
    // A relay's window stays at STREAM_WINDOW, which bounds what it holds per stream; the ends'
    // windows may grow (StreamEndpoint.returnCredit).
    if (this.uncredited >= this.creditThreshold) {
      this.grant(this.uncredited);
      this.uncredited = 0;
    }
  }

  private done = false;

  private checkDone(): void {
    if (this.sentFin && this.gotFin) this.markDone();
  }

  private markDone(): void {
    if (this.done) return;
    this.done = true;
    this.onDone();
  }
}
