/**
 * Parsing resource files off the main thread, for the site process. The YAML parser is linear
 * but not fast: a file within the size limits built to be slow (a 1 MiB flow sequence of
 * single digits, say) takes seconds to parse, and on the main thread that stalls the router,
 * whose links would miss their heartbeats. In a worker thread it costs only that thread, and a
 * parse that takes too long is abandoned (the worker is replaced) and reported as a problem.
 *
 * Files of a few KiB (nearly every resource) are parsed on the main thread: even built to be
 * slow they take a fraction of a second there, and no worker has to stay loaded (a worker
 * costs the site process about 20 MB). The worker starts for the first larger file and ends
 * once it has been idle for a while.
 *
 * This module is both sides: imported normally it exports OffThreadParser; loaded as the worker
 * (workerData.role) it answers parse requests.
 */
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { parseDocuments, type ParseResult } from "../../api/index.js";

const ROLE = "skupper-resource-parser";
/** A parse that takes longer than this is given up: the file is reported and skipped. */
export const PARSE_TIMEOUT_MS = 20_000;
/** Texts up to this size are parsed on the calling thread. */
export const INLINE_PARSE_MAX_BYTES = 8 * 1024;
/** A worker with nothing to parse for this long is ended. */
export const WORKER_IDLE_MS = 30_000;

interface Request {
  id: number;
  text: string;
  source: string;
}

type Reply = { id: number; result: ParseResult } | { ready: true };

if (!isMainThread && parentPort && (workerData as { role?: string } | undefined)?.role === ROLE) {
  const port = parentPort;
  port.on("message", ({ id, text, source }: Request) => {
    port.postMessage({ id, result: parseDocuments(text, source) } satisfies Reply);
  });
  port.postMessage({ ready: true } satisfies Reply);
}

interface Pending {
  source: string;
  resolve: (result: ParseResult) => void;
  timer?: NodeJS.Timeout;
}

export class OffThreadParser {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  /** Whether the current worker has loaded and answers: time spent starting it does not count. */
  private ready = false;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly timeoutMs = PARSE_TIMEOUT_MS,
    private readonly idleMs = WORKER_IDLE_MS,
  ) {}

  /** Whether a worker thread is loaded. */
  get workerRunning(): boolean {
    return this.worker !== undefined;
  }

  /** Like parseDocuments (never rejects): resources and problems, each problem naming `source`. */
  parse(text: string, source: string): Promise<ParseResult> {
    if (Buffer.byteLength(text) <= INLINE_PARSE_MAX_BYTES) return Promise.resolve(parseDocuments(text, source));
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    const worker = this.ensureWorker();
    const id = ++this.nextId;
    return new Promise<ParseResult>((resolve) => {
      const pending: Pending = { source, resolve };
      this.pending.set(id, pending);
      if (this.ready) this.startTimer(pending);
      worker.postMessage({ id, text, source } satisfies Request);
    });
  }

  async close(): Promise<void> {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    const worker = this.worker;
    this.worker = undefined;
    this.failAll("was not parsed: the site process is stopping");
    await worker?.terminate();
  }

  /** Each request is timed from when the worker could start on it; requests queue behind each other. */
  private startTimer(pending: Pending): void {
    pending.timer = setTimeout(() => {
      // The worker is busy with this file and would be for who knows how long: replace it.
      this.failAll(`could not be parsed within ${Math.round(this.timeoutMs / 1000)} s, so it is skipped`);
    }, this.timeoutMs * Math.max(1, this.pending.size));
    pending.timer.unref();
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(new URL(import.meta.url), { workerData: { role: ROLE } });
    this.ready = false;
    worker.unref();
    worker.on("message", (reply: Reply) => {
      if ("ready" in reply) {
        this.ready = true;
        for (const pending of this.pending.values()) this.startTimer(pending);
        return;
      }
      const { id, result } = reply;
      const pending = this.pending.get(id);
      if (!pending) return;
      this.pending.delete(id);
      clearTimeout(pending.timer);
      pending.resolve(result);
      if (this.pending.size === 0) this.endWhenIdle(worker);
    });
    const lost = (why: string) => {
      if (this.worker !== worker) return;
      this.failAll(why);
    };
    worker.on("error", (err) => lost(`could not be parsed (${err.message}), so it is skipped`));
    worker.on("exit", (code) => lost(`could not be parsed (the parser stopped with code ${code}), so it is skipped`));
    this.worker = worker;
    return worker;
  }

  private endWhenIdle(worker: Worker): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      if (this.worker !== worker || this.pending.size > 0) return;
      this.worker = undefined;
      this.ready = false;
      void worker.terminate();
    }, this.idleMs);
    this.idleTimer.unref();
  }

  /** Answers every pending parse with a problem and discards the worker (a new one starts on demand). */
  private failAll(problem: string): void {
    const worker = this.worker;
    this.worker = undefined;
    this.ready = false;
    void worker?.terminate();
    for (const [id, pending] of this.pending) {
      this.pending.delete(id);
      clearTimeout(pending.timer);
      const fileProblem = `${pending.source}: ${problem}`;
      pending.resolve({ resources: [], problems: [fileProblem], fileProblems: [fileProblem], rejected: [] });
    }
  }
}
