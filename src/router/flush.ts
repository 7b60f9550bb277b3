/**
 * Write coalescing. A TLS socket hands us plaintext in ≤16 KiB pieces, each in its own tick, so
 * writes are corked on first use and uncorked together in `setImmediate`: many small writes
 * become one writev (one SSL_write on a link, one syscall on a TCP socket).
 */

export interface Flushable {
  flush(): void;
}

let pending: Flushable[] = [];
let scheduled = false;

function runFlush(): void {
  scheduled = false;
  const batch = pending;
  pending = [];
  for (let i = 0; i < batch.length; i++) (batch[i] as Flushable).flush();
}

/** Arranges for `target.flush()` once, after the current I/O phase. Callers track "already scheduled". */
export function scheduleFlush(target: Flushable): void {
  pending.push(target);
  if (!scheduled) {
    scheduled = true;
    setImmediate(runFlush);
  }
}
