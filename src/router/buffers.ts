/**
 * Byte buffers of the data plane, kept off the garbage collector's hot path.
 *
 * Left to itself, Node allocates a fresh buffer for every read (64 KiB from a TCP socket, 16 KiB
 * of plaintext from a TLS socket). At gigabits per second those allocations are external
 * memory that makes V8 run a full mark-compact every few hundred megabytes, and on a site
 * process that was measured at over a third of its CPU. Here:
 *
 * - every socket of the thread reads into one shared buffer (`readIntoSharedBuffer`); a read is
 *   handed over as a view that is only valid during the call;
 * - what a socket is to write is copied into regions of shared slabs (`WriteBatch`), which are
 *   reused once the socket has written them; the few places that keep read data longer (waiting
 *   for credit, for the next hop) copy it.
 */
import type { Socket } from "node:net";
import { TLSSocket } from "node:tls";

export const SHARED_READ_BUFFER_SIZE = 64 * 1024;
const sharedReadBuffer = Buffer.allocUnsafe(SHARED_READ_BUFFER_SIZE);

/** Receives one read: a view of the shared buffer, overwritten by the next read of any socket. */
export type ReadHandler = (chunk: Buffer) => void;

interface OnreadFields {
  buffer: symbol;
  callback: symbol;
}

let onreadFields: OnreadFields | null | undefined;

/** The socket fields behind net.Socket's `onread` option, or null when this Node has none. */
function fieldsOf(socket: Socket): OnreadFields | null {
  if (onreadFields !== undefined) return onreadFields;
  const symbols = Object.getOwnPropertySymbols(socket);
  const buffer = symbols.find((s) => s.description === "kBuffer");
  const callback = symbols.find((s) => s.description === "kBufferCb");
  onreadFields = buffer && callback ? { buffer, callback } : null;
  return onreadFields;
}

/**
 * Makes `socket` read into the thread's shared buffer and hand each read to `onRead`, in place of
 * 'data' events. This is what net.Socket's `onread` option does, but Node offers that option only
 * to sockets it creates itself for connect(), not to sockets a server accepted nor to TLS sockets
 * over them; those get the same fields set here. Call before the socket starts reading; the
 * caller must also listen for 'data', where reads that arrived before come. A plain socket may be
 * paused and resumed as usual; a TLS socket is taken only from a caller that never pauses it
 * (`paused: "never"`). Returns false, changing nothing, when the socket is not taken or this Node
 * lacks the fields: then every read comes as 'data'.
 */
export function readIntoSharedBuffer(socket: Socket, onRead: ReadHandler, options: { paused?: "never" } = {}): boolean {
  const fields = fieldsOf(socket);
  // A TLS socket goes on handing over the records it has decrypted after pause(): with 'data'
  // they wait in the stream's buffer, here they would reach onRead while paused.
  if (options.paused !== "never" && socket instanceof TLSSocket) return false;
  const handle = (socket as unknown as { _handle?: { useUserBuffer?: (buffer: Buffer) => void } | null })._handle;
  if (!fields || !handle || typeof handle.useUserBuffer !== "function") return false;
  const target = socket as unknown as Record<symbol, unknown>;
  if (target[fields.buffer]) return false; // reads into a buffer of its own already
  target[fields.buffer] = sharedReadBuffer;
  target[fields.callback] = (nread: number, buffer: Buffer) => {
    onRead(buffer.subarray(0, nread));
  };
  handle.useUserBuffer(sharedReadBuffer);
  return true;
}

// ---- slabs ----

const SLAB_SIZE = 512 * 1024;
/** Free slabs kept for reuse: 16 MiB at most, however busy the site was. */
const MAX_FREE_SLABS = 32;
const freeSlabs: Buffer[] = [];

class Slab {
  readonly buffer: Buffer;
  used = 0;
  /** Regions handed out and not released yet. */
  live = 0;
  /** No more regions are cut from it; it is reused once the last one is released. */
  full = false;

  constructor(size: number) {
    this.buffer = size === SLAB_SIZE ? (freeSlabs.pop() ?? Buffer.allocUnsafeSlow(SLAB_SIZE)) : Buffer.allocUnsafe(size);
    if (size !== SLAB_SIZE) this.full = true;
  }

  release(regions: number): void {
    this.live -= regions;
    if (this.live === 0 && this.full && this.buffer.length === SLAB_SIZE && freeSlabs.length < MAX_FREE_SLABS) freeSlabs.push(this.buffer);
  }
}

let current: Slab | undefined;

/** `length` bytes cut from the current slab (a new one when it has no room). */
function claimRegion(length: number): { slab: Slab; start: number } {
  if (length > SLAB_SIZE / 4) {
    // Bigger than any read or frame of the data path: a buffer of its own.
    const own = new Slab(length);
    own.full = true;
    own.live = 1;
    own.used = length;
    return { slab: own, start: 0 };
  }
  let slab = current;
  if (!slab || SLAB_SIZE - slab.used < length) {
    if (slab) {
      slab.full = true;
      slab.release(0);
    }
    slab = current = new Slab(SLAB_SIZE);
  }
  const start = slab.used;
  slab.used += length;
  slab.live++;
  return { slab, start };
}

/** Bytes copied into a slab, held until `release()`. */
export interface HeldCopy {
  readonly bytes: Buffer;
  release(): void;
}

/**
 * A copy of `data` that stays valid until released, for read data that must wait (for credit, for
 * the next hop): cut from a slab, so waiting costs no allocation.
 */
export function holdCopy(data: Buffer): HeldCopy {
  const { slab, start } = claimRegion(data.length);
  const bytes = slab.buffer.subarray(start, start + data.length);
  data.copy(bytes);
  let released = false;
  return {
    bytes,
    release: () => {
      if (released) return;
      released = true;
      slab.release(1);
    },
  };
}

interface Region {
  slab: Slab;
  start: number;
  end: number;
  /** Claims merged into this region, released together. */
  claims: number;
  /** Called once the socket has written the region. */
  written: Array<() => void> | undefined;
}

/**
 * What one socket is to write in one event-loop turn, gathered into slab regions: the bytes stay
 * valid until the socket has written them, without a fresh buffer per write, and consecutive
 * claims are written as one buffer (one SSL_write on a TLS socket instead of a copy that joins
 * the pieces first).
 */
export class WriteBatch {
  private regions: Region[] = [];
  /** Bytes claimed and not yet handed to the socket. */
  bytes = 0;

  /**
   * `length` bytes at the end of the batch, to fill before the batch is written; `written` is
   * called once the socket has written them.
   */
  claim(length: number, written?: () => void): Buffer {
    const { slab, start } = claimRegion(length);
    const last = this.regions[this.regions.length - 1];
    if (last && last.slab === slab && last.end === start) {
      last.end += length;
      last.claims++;
      if (written) (last.written ??= []).push(written);
    } else {
      this.regions.push({ slab, start, end: start + length, claims: 1, written: written ? [written] : undefined });
    }
    this.bytes += length;
    return slab.buffer.subarray(start, start + length);
  }

  /** A copy of `data` at the end of the batch. */
  append(data: Buffer): void {
    data.copy(this.claim(data.length));
  }

  get empty(): boolean {
    return this.regions.length === 0;
  }

  /** Hands everything to `socket` (one writev when there are several regions); socket.write's answer. */
  writeTo(socket: Socket): boolean {
    const regions = this.regions;
    if (regions.length === 0) return true;
    this.regions = [];
    this.bytes = 0;
    let ok = true;
    if (regions.length > 1) socket.cork();
    for (const region of regions) {
      ok = socket.write(region.slab.buffer.subarray(region.start, region.end), () => {
        region.slab.release(region.claims);
        if (region.written) for (const callback of region.written) callback();
      });
    }
    if (regions.length > 1) socket.uncork();
    return ok;
  }

  /** Drops what was not written (the socket is gone). */
  discard(): void {
    for (const region of this.regions) region.slab.release(region.claims);
    this.regions = [];
    this.bytes = 0;
  }
}
