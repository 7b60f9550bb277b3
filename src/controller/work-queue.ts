/**
 * Keys waiting to be reconciled, processed one at a time. A key added while it waits is not
 * added twice; a key added while it is being processed runs once more afterwards. A failed key
 * is retried with exponential backoff of its own (and its backoff is reset by its next success);
 * a key may also ask to be looked at again after a delay.
 */
import { Backoff, type BackoffOptions } from "../common/backoff.js";

/** What a reconcile asks of the queue: nothing more, or another look after a delay. */
export type ReconcileResult = void | { retryAfterMs: number };

export interface WorkQueueOptions {
  process(key: string): Promise<ReconcileResult>;
  /** Called when `process` throws, with the delay before the key is tried again. */
  failed(key: string, error: Error, retryInMs: number): Promise<void> | void;
  backoff?: Pick<BackoffOptions, "initialMs" | "maxMs" | "random">;
}

export class WorkQueue {
  private readonly waiting = new Set<string>();
  private readonly backoffs = new Map<string, Backoff>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly idleWaiters: Array<() => void> = [];
  private active: string | undefined;
  private again = false;
  private running = false;
  private stopped = false;

  constructor(private readonly options: WorkQueueOptions) {}

  add(key: string): void {
    if (this.stopped) return;
    this.clearTimer(key);
    if (this.active === key) this.again = true;
    else this.waiting.add(key);
    if (!this.running) void this.run();
  }

  /** Adds `key` after `delayMs`, unless it is added sooner. */
  addAfter(key: string, delayMs: number): void {
    if (this.stopped) return;
    this.clearTimer(key);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, Math.max(0, delayMs));
    timer.unref();
    this.timers.set(key, timer);
  }

  /** How many times in a row `key` has failed. */
  failures(key: string): number {
    return this.backoffs.get(key)?.attempts ?? 0;
  }

  /** Keys waiting for a delayed retry. */
  get delayed(): string[] {
    return [...this.timers.keys()];
  }

  /** Resolves when nothing waits or runs (delayed retries do not count). */
  idle(): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  stop(): void {
    this.stopped = true;
    this.waiting.clear();
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      for (;;) {
        const key = this.waiting.values().next().value as string | undefined;
        if (key === undefined || this.stopped) break;
        this.waiting.delete(key);
        this.active = key;
        this.again = false;
        await this.processOne(key);
        this.active = undefined;
        if (this.again) this.waiting.add(key);
        // Between keys, let timers and I/O (the data plane) run: a burst of reconciles that
        // find nothing to write would otherwise hold the event loop until the queue is empty.
        await new Promise((resolve) => setImmediate(resolve));
      }
    } finally {
      this.running = false;
      this.active = undefined;
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }

  private async processOne(key: string): Promise<void> {
    try {
      const result = await this.options.process(key);
      this.backoffs.delete(key);
      if (result && !this.again) this.addAfter(key, result.retryAfterMs);
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      let backoff = this.backoffs.get(key);
      if (!backoff) {
        backoff = new Backoff({ initialMs: 500, maxMs: 30_000, ...this.options.backoff });
        this.backoffs.set(key, backoff);
      }
      const delay = backoff.next();
      try {
        await this.options.failed(key, error, delay);
      } catch {
        // Reporting a failure must not stop the queue; the retry below still happens.
      }
      if (!this.again) this.addAfter(key, delay);
    }
  }

  private clearTimer(key: string): void {
    const timer = this.timers.get(key);
    if (timer) clearTimeout(timer);
    this.timers.delete(key);
  }
}
