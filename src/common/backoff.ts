export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  factor?: number;
  /** Random source in [0, 1); injectable for tests. */
  random?: () => number;
}

/**
 * Exponential backoff with "equal jitter": each delay is half the exponential step plus a
 * random share of the other half, so retries of many sites never synchronise.
 */
export class Backoff {
  private attempt = 0;
  private readonly factor: number;
  private readonly random: () => number;

  constructor(private readonly options: BackoffOptions) {
    this.factor = options.factor ?? 2;
    this.random = options.random ?? Math.random;
  }

  next(): number {
    const step = Math.min(this.options.maxMs, this.options.initialMs * this.factor ** this.attempt);
    this.attempt++;
    return Math.round(step / 2 + this.random() * (step / 2));
  }

  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}
