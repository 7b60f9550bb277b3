/** Failures a test arranges in advance: "the next N matching calls of this operation fail". */

export interface FaultOptions {
  /** How many matching calls fail (default 1). */
  times?: number;
  /** What the failing call throws; default: an Error saying which call was made to fail. */
  error?: Error;
}

interface Fault<Op extends string> {
  op: Op;
  matches: (target: string) => boolean;
  remaining: number;
  error?: Error;
}

export class FaultInjector<Op extends string> {
  private faults: Array<Fault<Op>> = [];

  add(op: Op, matches: (target: string) => boolean, options: FaultOptions = {}): void {
    const times = options.times ?? 1;
    if (!Number.isInteger(times) || times < 1) throw new RangeError(`times must be a positive integer, not ${times}`);
    this.faults.push({ op, matches, remaining: times, ...(options.error ? { error: options.error } : {}) });
  }

  /** Throws if a fault matches this call, using up one of its times. `target` names the call in messages. */
  check(op: Op, target: string): void {
    const fault = this.faults.find((f) => f.op === op && f.matches(target));
    if (!fault) return;
    if (--fault.remaining === 0) this.faults.splice(this.faults.indexOf(fault), 1);
    throw fault.error ?? new Error(`injected failure: ${op} ${target}`.trimEnd());
  }

  /** Faults not used up yet. */
  get pending(): number {
    return this.faults.reduce((sum, f) => sum + f.remaining, 0);
  }

  clear(): void {
    this.faults = [];
  }
}
