/**
 * A list and watch of one resource type (in all namespaces or in one), reporting the namespace of
 * each object that appeared, changed or went away. Only names and resourceVersions are kept:
 * the events are hints, the reconcile reads what is there.
 *
 * The watch is resumed from the last resourceVersion seen when its connection closes (the
 * server's timeout, a network failure: after a backoff), and the type is listed again when the
 * server answers 410 Gone (its history no longer reaches that far back); the differences from
 * what was known, deletions included, are reported then.
 */
import { Backoff } from "../common/backoff.js";
import { errorMessage } from "../common/errors.js";
import { logger } from "../common/log.js";

const log = logger("operator");

export interface ListedObject {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
}

export interface Listing {
  items: ListedObject[];
  resourceVersion: string;
}

/** Stops a watch connection. */
export interface Abortable {
  abort(): void;
}

/**
 * How to reach the API server for one type: `list` once, then `watch` from a resourceVersion,
 * calling `onEvent` per event and `onDone` once when the connection ends (with the error, if any;
 * an error with `statusCode` 410 means the resourceVersion is too old).
 */
export interface ListWatchSource {
  /** What is watched, for the log: `Sites in all namespaces`. */
  readonly what: string;
  list(): Promise<Listing>;
  watch(resourceVersion: string, onEvent: (type: string, object: unknown) => void, onDone: (err: unknown) => void): Promise<Abortable>;
}

export interface InformerOptions {
  /** Called with the namespace of every object that was added, changed or deleted. */
  onChange(namespace: string): void;
  backoff?: { initialMs: number; maxMs: number };
}

export class Informer {
  /** `namespace/name` → resourceVersion. */
  private readonly known = new Map<string, string>();
  private resourceVersion = "";
  private stopped = false;
  private connection = 0;
  private abortable: Abortable | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly backoff: Backoff;

  constructor(
    private readonly source: ListWatchSource,
    private readonly options: InformerOptions,
  ) {
    this.backoff = new Backoff(options.backoff ?? { initialMs: 500, maxMs: 30_000 });
  }

  start(): void {
    void this.relist();
  }

  stop(): void {
    this.stopped = true;
    this.connection++;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.abortable?.abort();
    this.abortable = undefined;
  }

  /** The namespaces of the objects known now. */
  namespaces(): Set<string> {
    return new Set([...this.known.keys()].map((key) => key.slice(0, key.indexOf("/"))));
  }

  private changed(namespace: string): void {
    if (!this.stopped) this.options.onChange(namespace);
  }

  private async relist(): Promise<void> {
    if (this.stopped) return;
    let listing: Listing;
    try {
      listing = await this.source.list();
    } catch (err) {
      this.retry(`listing ${this.source.what} failed`, err, () => this.relist());
      return;
    }
    if (this.stopped) return;
    const seen = new Set<string>();
    for (const item of listing.items) {
      const key = keyOf(item);
      if (!key) continue;
      seen.add(key);
      const version = item.metadata?.resourceVersion ?? "";
      if (this.known.get(key) !== version) {
        this.known.set(key, version);
        this.changed(namespaceOf(key));
      }
    }
    for (const key of [...this.known.keys()]) {
      if (seen.has(key)) continue;
      this.known.delete(key);
      this.changed(namespaceOf(key));
    }
    this.resourceVersion = listing.resourceVersion;
    this.backoff.reset();
    void this.connect();
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const connection = ++this.connection;
    const current = () => connection === this.connection && !this.stopped;
    let gone = false;
    let failure: string | undefined;
    const onEvent = (type: string, object: unknown) => {
      if (!current()) return;
      if (type === "ERROR") {
        const status = object as { code?: number; message?: string } | undefined;
        if (status?.code === 410) gone = true;
        else failure = status?.message ?? JSON.stringify(object);
        this.abortable?.abort();
        return;
      }
      const item = object as ListedObject | undefined;
      const version = item?.metadata?.resourceVersion;
      if (version) this.resourceVersion = version;
      this.backoff.reset();
      if (type === "BOOKMARK") return;
      const key = item ? keyOf(item) : undefined;
      if (!key) return;
      if (type === "DELETED") {
        this.known.delete(key);
        this.changed(namespaceOf(key));
      } else if (type === "ADDED" || type === "MODIFIED") {
        if (this.known.get(key) === version) return;
        this.known.set(key, version ?? "");
        this.changed(namespaceOf(key));
      }
    };
    const onDone = (err: unknown) => {
      if (!current()) return;
      this.connection++;
      this.abortable = undefined;
      const status = (err as { statusCode?: number } | null)?.statusCode;
      if (gone || status === 410) {
        log.debug(`watch of ${this.source.what}: resourceVersion ${this.resourceVersion} is too old; listing again`);
        void this.relist();
      } else if (failure !== undefined || (err && !isAbort(err))) {
        this.retry(`the watch of ${this.source.what} failed`, failure ?? err, () => this.connect());
      } else {
        log.debug(`watch of ${this.source.what} closed; resuming from resourceVersion ${this.resourceVersion}`);
        void this.connect();
      }
    };
    try {
      const abortable = await this.source.watch(this.resourceVersion, onEvent, onDone);
      if (current()) this.abortable = abortable;
      else abortable.abort();
    } catch (err) {
      onDone(err);
    }
  }

  private retry(what: string, err: unknown, again: () => Promise<void>): void {
    if (this.stopped) return;
    const delay = this.backoff.next();
    log.warn(`${what} (trying again in ${(delay / 1000).toFixed(1)} s): ${typeof err === "string" ? err : errorMessage(err)}`);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void again();
    }, delay);
  }
}

function keyOf(item: ListedObject): string | undefined {
  const name = item.metadata?.name;
  const namespace = item.metadata?.namespace;
  return name && namespace ? `${namespace}/${name}` : undefined;
}

function namespaceOf(key: string): string {
  return key.slice(0, key.indexOf("/"));
}

function isAbort(err: unknown): boolean {
  return err instanceof Error && (err.name === "AbortError" || (err as { type?: string }).type === "aborted");
}
