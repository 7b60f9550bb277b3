/**
 * The local platform's ResourceStore: the semantics of `ResourceStore` (see ../types.ts) on the
 * files of one namespace (docs/storage.md):
 *
 * - desired state in `input/resources/<Kind>-<name>.yaml` (with `metadata.generation`, never a
 *   status or the fields the store assigns), written by whoever changes it;
 * - status in `runtime/resources/<Kind>-<name>.yaml` (the resource with `metadata.uid`,
 *   `metadata.creationTimestamp` and `status`), written by the site process only.
 *
 * `resourceVersion` is not stored: it is a hash of the desired document (generation included),
 * so it changes with every change of desired state or metadata and never with a status write.
 *
 * Without a watch (the CLI) every call reads the files. While a watch runs (the site process),
 * `get`/`list` are answered from a snapshot kept current by the watch and by this store's own
 * writes, which show at once (read-your-writes).
 */
import { createHash, randomUUID } from "node:crypto";
import type { watch as fsWatch } from "node:fs";
import path from "node:path";
import {
  checkResourceName,
  MAX_FILE_BYTES,
  parseDocuments,
  prune,
  resourceKey,
  toYaml,
  validateResource,
  type Kind,
  type Resource,
  type ResourceByKind,
} from "../../api/index.js";
import { ConflictError, errorMessage, InvalidInputError, NotFoundError, ValidationError } from "../../common/errors.js";
import { readTextLimited, removeIfExists } from "../../common/files.js";
import { logger } from "../../common/log.js";
import type { ResourceStore, StatusOf, Unwatch, WatchEvent, WatchEventType } from "../types.js";
import { LocalStore, type InputSnapshot, type LocalStoreOptions, type RuntimeEntry } from "./files.js";
import type { SitePaths } from "./paths.js";

const log = logger("store");

/** Refreshes of the snapshot re-read at most this often when this store writes meanwhile. */
const MAX_REFRESH_ATTEMPTS = 5;

export interface LocalResourceStoreOptions extends LocalStoreOptions {
  /** Debounce of the input watch (default 30 ms). */
  debounceMs?: number;
  /** `fs.watch`, except in tests. */
  watchDirectory?: typeof fsWatch;
  /** Called when the input problems change while a watch runs (they are published with the network status). */
  onProblemsChanged?: () => void;
}

/** A desired resource as the store keeps it (generation set, nothing the store assigns) and its version. */
interface Entry {
  resource: Resource;
  resourceVersion: string;
}

interface Listener {
  onEvent: (event: WatchEvent) => void;
  /** Whether it has had its initial events; only then does it get changes. */
  synced: boolean;
}

interface WatchState {
  listeners: Set<Listener>;
  input: Map<string, Entry>;
  /** Runtime files by resource key: only this process writes them while it watches. */
  runtime: Map<string, RuntimeEntry>;
  loaded: boolean;
  ready: Promise<void>;
  stopFiles: () => void;
  refreshing: Promise<void> | undefined;
  again: boolean;
}

export class LocalResourceStore implements ResourceStore {
  readonly namespace: string;
  /** The raw file layer. */
  readonly files: LocalStore;
  private readonly debounceMs: number;
  private readonly watchDirectory: typeof fsWatch | undefined;
  private readonly onProblemsChanged: (() => void) | undefined;
  private currentProblems: string[] = [];
  private reportedProblems = new Set<string>();
  private watching: WatchState | undefined;
  /** Advanced by every write of this store: a snapshot read that overlapped one is read again. */
  private writeSeq = 0;

  constructor(
    readonly paths: SitePaths,
    options: LocalResourceStoreOptions = {},
  ) {
    this.namespace = paths.namespace;
    this.files = new LocalStore(paths, options.parse ? { parse: options.parse } : {});
    this.debounceMs = options.debounceMs ?? 30;
    this.watchDirectory = options.watchDirectory;
    this.onProblemsChanged = options.onProblemsChanged;
  }

  /**
   * Input files that could not be read, parsed or validated, each naming file and field, as of
   * the last full read of the input (always current while a watch runs).
   */
  problems(): string[] {
    return [...this.currentProblems];
  }

  // ---- reads ----

  async get<K extends Kind>(kind: K, name: string): Promise<ResourceByKind[K] | undefined> {
    checkResourceName(kind, name);
    const key = resourceKey(kind, name);
    const w = await this.loadedWatch();
    if (w) return this.fromMemory(w, key) as ResourceByKind[K] | undefined;
    const input = await this.files.getInput(kind, name);
    const runtime = await this.files.readRuntimeEntry(kind, name);
    if (input) return merged(toEntry(input), runtime) as ResourceByKind[K];
    return runtime ? (deletedResource(runtime) as ResourceByKind[K]) : undefined;
  }

  async list<K extends Kind>(kind: K): Promise<Array<ResourceByKind[K]>> {
    const w = await this.loadedWatch();
    const out: Resource[] = [];
    if (w) {
      for (const [key, entry] of w.input) if (entry.resource.kind === kind) out.push(merged(entry, w.runtime.get(key)));
      for (const [key, runtime] of w.runtime) if (runtime.resource.kind === kind && !w.input.has(key)) out.push(deletedResource(runtime));
    } else {
      const snapshot = await this.readSnapshot();
      const runtime = new Map((await this.files.readRuntimeEntries(kind)).map((e) => [e.resource.metadata.name, e]));
      const names = new Set<string>();
      for (const resource of snapshot.resources) {
        if (resource.kind !== kind) continue;
        names.add(resource.metadata.name);
        out.push(merged(toEntry(resource), runtime.get(resource.metadata.name)));
      }
      for (const [name, entry] of runtime) if (!names.has(name)) out.push(deletedResource(entry));
    }
    return out.sort((a, b) => compareNames(a.metadata.name, b.metadata.name)) as Array<ResourceByKind[K]>;
  }

  // ---- desired state ----

  async create<R extends Resource>(resource: R): Promise<R> {
    const desired = normalize(resource, 1, this.namespace);
    const { kind } = desired;
    const { name } = desired.metadata;
    const key = resourceKey(kind, name);
    return this.files.withInputLock(async () => {
      await this.files.createInput(desired, {
        // A deleted resource's status awaiting finalize is not the new resource's.
        whenAbsent: async () => {
          if (await removeIfExists(this.files.runtimeFile(kind, name))) this.afterWrite((w) => void w.runtime.delete(key));
        },
      });
      const entry = toEntry(desired);
      this.afterWrite((w) => {
        w.runtime.delete(key);
        w.input.set(key, entry);
        return { type: "added", kind, name };
      });
      return merged(entry, undefined) as R;
    });
  }

  async update<R extends Resource>(resource: R): Promise<R> {
    const { kind } = resource;
    const { name, resourceVersion } = resource.metadata;
    checkResourceName(kind, name);
    const key = resourceKey(kind, name);
    return this.files.withInputLock(async () => {
      const found = await this.files.locateInput(kind, name);
      if (!found) throw new NotFoundError(`${kind} "${name}" does not exist in namespace "${this.namespace}"`);
      const current = toEntry(found.resource);
      if (resourceVersion !== undefined && resourceVersion !== current.resourceVersion) {
        throw new ConflictError(`${kind} "${name}" was changed by another command meanwhile; read it again and retry`);
      }
      const generation = current.resource.metadata.generation ?? 1;
      const candidate = normalize(resource, generation, this.namespace);
      const desired = desiredKey(candidate) === desiredKey(current.resource) ? candidate : normalize(resource, generation + 1, this.namespace);
      const entry = toEntry(desired);
      if (found.own) {
        if (entry.resourceVersion !== current.resourceVersion) await this.files.writeInput(desired);
      } else {
        // A hand-written file: one holding only this resource is replaced by the resource's own
        // file; one holding others too is the user's to edit, as for delete.
        const text = (await readTextLimited(found.file, MAX_FILE_BYTES, { regularOnly: true })) ?? "";
        if (parseDocuments(text, found.file).resources.length > 1) {
          throw new NotFoundError(`${kind} "${name}" is defined in ${found.file} together with other resources; change it in that file by hand`);
        }
        await this.files.writeInput(desired);
        await removeIfExists(found.file);
      }
      this.afterWrite((w) => {
        const before = w.input.get(key);
        w.input.set(key, entry);
        return before?.resourceVersion === entry.resourceVersion ? undefined : { type: before ? "modified" : "added", kind, name };
      });
      return merged(entry, await this.currentRuntime(kind, name)) as R;
    });
  }

  async delete(kind: Kind, name: string): Promise<boolean> {
    checkResourceName(kind, name);
    const key = resourceKey(kind, name);
    return this.files.withInputLock(async () => {
      const deleted = await this.files.deleteInput(kind, name);
      if (deleted) this.afterWrite((w) => (w.input.delete(key) ? { type: "deleted", kind, name } : undefined));
      return deleted;
    });
  }

  // ---- status ----

  async updateStatus<K extends Kind>(kind: K, name: string, status: StatusOf<K>): Promise<ResourceByKind[K] | undefined> {
    checkResourceName(kind, name);
    if (kind === "Secret") throw new InvalidInputError("a Secret has no status");
    const key = resourceKey(kind, name);
    const w = await this.loadedWatch();
    let entry: Entry | undefined;
    let previous: RuntimeEntry | undefined;
    if (w) {
      entry = w.input.get(key);
      previous = w.runtime.get(key);
    } else {
      const input = await this.files.getInput(kind, name);
      entry = input ? toEntry(input) : undefined;
      previous = entry ? await this.files.readRuntimeEntry(kind, name) : undefined;
    }
    if (!entry) return undefined;
    const before = previous?.resource.metadata;
    const document = {
      ...entry.resource,
      metadata: {
        ...entry.resource.metadata,
        uid: typeof before?.uid === "string" && before.uid ? before.uid : randomUUID(),
        creationTimestamp: typeof before?.creationTimestamp === "string" && before.creationTimestamp ? before.creationTimestamp : new Date().toISOString(),
      },
      status,
    } as Resource;
    const text = toYaml(document);
    let runtime = previous;
    if (text !== previous?.text) {
      await this.files.writeRuntimeText(kind, name, text);
      // Kept as it reads back from the file (empty values dropped), so memory and files agree.
      runtime = { resource: prune(document) as Resource, text, file: this.files.runtimeFile(kind, name), mtimeMs: Date.now() };
      const written = runtime;
      // Status writes are not reported to watchers (ResourceStore allows it): a controller that
      // writes status on every event would otherwise wake itself up.
      this.afterWrite((state) => void state.runtime.set(key, written));
    }
    return merged(entry, runtime) as ResourceByKind[K];
  }

  async finalize(kind: Kind, name: string): Promise<void> {
    checkResourceName(kind, name);
    const key = resourceKey(kind, name);
    const w = await this.loadedWatch();
    // Created again meanwhile: the status is the new resource's (create removed the old one's).
    if (w ? w.input.has(key) : await this.files.getInput(kind, name)) return;
    await this.files.deleteRuntime(kind, name);
    // No event: the delete was reported; this only makes the resource disappear for good.
    this.afterWrite((state) => void state.runtime.delete(key));
  }

  // ---- watch ----

  watch(onEvent: (event: WatchEvent) => void): Unwatch {
    const w = this.watching ?? this.startWatch();
    const listener: Listener = { onEvent, synced: false };
    w.listeners.add(listener);
    void w.ready.then(() => {
      if (!w.listeners.has(listener) || this.watching !== w) return;
      listener.synced = true;
      deliver(listener, initialEvents(w));
    });
    return () => {
      if (!w.listeners.delete(listener)) return;
      if (w.listeners.size === 0 && this.watching === w) {
        this.watching = undefined;
        w.stopFiles();
      }
    };
  }

  private startWatch(): WatchState {
    const w: WatchState = {
      listeners: new Set(),
      input: new Map(),
      runtime: new Map(),
      loaded: false,
      ready: Promise.resolve(),
      stopFiles: () => undefined,
      refreshing: undefined,
      again: false,
    };
    this.watching = w;
    // Watching first, then reading: a change made while the snapshot is read is not missed.
    w.stopFiles = this.watchDirectory
      ? this.files.watchInput(() => this.scheduleRefresh(w), this.debounceMs, this.watchDirectory)
      : this.files.watchInput(() => this.scheduleRefresh(w), this.debounceMs);
    // If even that fails, reads go to the files (loadedWatch) and the next change tries again.
    w.ready = this.load(w).catch((err: Error) => log.error(`reading ${this.paths.inputResources} failed: ${err.stack ?? err.message}`));
    return w;
  }

  /** The initial snapshot: input and every runtime file. */
  private async load(w: WatchState): Promise<void> {
    let snapshot: InputSnapshot;
    let runtime: RuntimeEntry[];
    for (let attempt = 1; ; attempt++) {
      const seq = this.writeSeq;
      snapshot = await this.readSnapshot();
      try {
        runtime = await this.files.readRuntimeEntries();
      } catch (err) {
        log.warn(`cannot read ${this.paths.runtimeResources}: ${errorMessage(err)}`);
        runtime = [];
      }
      if (seq === this.writeSeq || attempt >= MAX_REFRESH_ATTEMPTS) break;
    }
    w.input = entries(snapshot);
    w.runtime = new Map(runtime.map((e) => [resourceKey(e.resource.kind, e.resource.metadata.name), e]));
    w.loaded = true;
    this.reportProblems();
  }

  private scheduleRefresh(w: WatchState): void {
    if (this.watching !== w) return;
    if (w.refreshing) {
      w.again = true;
      return;
    }
    w.refreshing = (async () => {
      await w.ready;
      if (!w.loaded) {
        // The first read failed: this is the first snapshot, reported as the initial one.
        await this.load(w);
        this.emit(w, initialEvents(w));
        return;
      }
      do {
        w.again = false;
        await this.refresh(w);
      } while (w.again && this.watching === w);
    })()
      .catch((err: Error) => log.error(`reading ${this.paths.inputResources} failed: ${err.stack ?? err.message}`))
      .finally(() => {
        w.refreshing = undefined;
      });
  }

  /** Reads the input again and reports what changed. */
  private async refresh(w: WatchState): Promise<void> {
    let snapshot: InputSnapshot;
    let runtimeFiles: Set<string> | undefined;
    for (let attempt = 1; ; attempt++) {
      const seq = this.writeSeq;
      snapshot = await this.readSnapshot();
      runtimeFiles = await this.files.runtimeFileNames().catch(() => undefined);
      if (seq === this.writeSeq || attempt >= MAX_REFRESH_ATTEMPTS) break;
    }
    if (this.watching !== w) return;
    const next = entries(snapshot);
    const events: WatchEvent[] = [];
    for (const [key, entry] of next) {
      const before = w.input.get(key);
      if (!before) events.push(event("added", entry.resource));
      else if (before.resourceVersion !== entry.resourceVersion) events.push(event("modified", entry.resource));
    }
    for (const [key, entry] of w.input) if (!next.has(key)) events.push(event("deleted", entry.resource));
    w.input = next;
    // A runtime file removed by another process: a `create` of a deleted resource's name.
    if (runtimeFiles) for (const [key, runtime] of w.runtime) if (!runtimeFiles.has(path.basename(runtime.file))) w.runtime.delete(key);
    this.reportProblems();
    this.emit(w, events);
  }

  // ---- helpers ----

  /** The watch's snapshot, once loaded, if a watch runs. */
  private async loadedWatch(): Promise<WatchState | undefined> {
    const w = this.watching;
    if (!w) return undefined;
    await w.ready;
    return this.watching === w && w.loaded ? w : undefined;
  }

  private async readSnapshot(): Promise<InputSnapshot> {
    const snapshot = await this.files.readInput();
    this.currentProblems = snapshot.problems;
    return snapshot;
  }

  private async currentRuntime(kind: Kind, name: string): Promise<RuntimeEntry | undefined> {
    const w = this.watching?.loaded ? this.watching : undefined;
    return w ? w.runtime.get(resourceKey(kind, name)) : this.files.readRuntimeEntry(kind, name);
  }

  /** Input problems go to the log once each, while a watch runs (the site process). */
  private reportProblems(): void {
    for (const problem of this.currentProblems) if (!this.reportedProblems.has(problem)) log.warn(`input: ${problem}`);
    const changed = this.currentProblems.length !== this.reportedProblems.size || this.currentProblems.some((p) => !this.reportedProblems.has(p));
    this.reportedProblems = new Set(this.currentProblems);
    if (changed) this.onProblemsChanged?.();
  }

  /** Records a write of this store in the watch's snapshot and reports the event it returns. */
  private afterWrite(change: (w: WatchState) => WatchEvent | undefined): void {
    this.writeSeq++;
    const w = this.watching;
    if (!w?.loaded) return;
    const happened = change(w);
    if (happened) this.emit(w, [happened]);
  }

  private emit(w: WatchState, events: WatchEvent[]): void {
    if (events.length === 0) return;
    for (const listener of [...w.listeners]) if (listener.synced) deliver(listener, events);
  }

  private fromMemory(w: WatchState, key: string): Resource | undefined {
    const entry = w.input.get(key);
    const runtime = w.runtime.get(key);
    if (entry) return merged(entry, runtime);
    return runtime ? deletedResource(runtime) : undefined;
  }
}

function deliver(listener: Listener, events: WatchEvent[]): void {
  for (const e of events) {
    try {
      listener.onEvent(e);
    } catch (err) {
      log.error(`a watcher failed on ${e.type} ${e.kind}/${e.name}: ${(err as Error).stack ?? errorMessage(err)}`);
    }
  }
}

/** `added` for every resource, `deleted` for every status left by a resource deleted meanwhile. */
function initialEvents(w: WatchState): WatchEvent[] {
  const events: WatchEvent[] = [];
  for (const entry of w.input.values()) events.push(event("added", entry.resource));
  for (const [key, runtime] of w.runtime) if (!w.input.has(key)) events.push(event("deleted", runtime.resource));
  return events;
}

function event(type: WatchEventType, resource: Resource): WatchEvent {
  return { type, kind: resource.kind, name: resource.metadata.name };
}

function entries(snapshot: InputSnapshot): Map<string, Entry> {
  return new Map(snapshot.resources.map((r) => [resourceKey(r.kind, r.metadata.name), toEntry(r)]));
}

/** Names in the order Kubernetes lists them (byte order; names are ASCII). */
function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---- documents ----

/** Metadata only the store sets: never taken from a client or an input file. */
type Assigned = "uid" | "resourceVersion" | "creationTimestamp" | "deletionTimestamp";

/** The desired part: no status, nothing the store assigns; generation as stored (default 1). */
function desiredOf(resource: Resource): Resource {
  const { status: _status, ...rest } = resource as Resource & { status?: unknown };
  const { uid: _uid, resourceVersion: _rv, creationTimestamp: _ct, deletionTimestamp: _dt, ...metadata } = rest.metadata as Resource["metadata"] &
    Partial<Record<Assigned, unknown>>;
  return { ...rest, metadata: { ...metadata, generation: metadata.generation ?? 1 } } as Resource;
}

function toEntry(resource: Resource): Entry {
  const desired = desiredOf(resource);
  return { resource: desired, resourceVersion: versionOf(desired) };
}

/** First 16 hex digits of the SHA-256 of the canonical desired document, generation included. */
function versionOf(desired: Resource): string {
  return createHash("sha256").update(canonicalJson(desired)).digest("hex").slice(0, 16);
}

/** Everything but metadata and status, canonical: what a generation counts changes of. */
function desiredKey(resource: Resource): string {
  const { metadata: _metadata, status: _status, ...rest } = resource as Resource & { status?: unknown };
  return canonicalJson(rest);
}

/** JSON with keys sorted at every level, empty values dropped (as in the files). */
export function canonicalJson(value: unknown): string {
  const sorted = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sorted);
    if (v !== null && typeof v === "object") {
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(v).sort()) out[key] = sorted((v as Record<string, unknown>)[key]);
      return out;
    }
    return v;
  };
  return JSON.stringify(sorted(prune(value)) ?? null);
}

/**
 * A resource a client gives, as it will be stored and read back: status, assigned metadata and
 * the namespace dropped, `generation` set, empty values dropped, validated (exit code 2 if not valid).
 */
function normalize(resource: Resource, generation: number, namespace: string): Resource {
  checkResourceName(resource.kind, resource.metadata.name);
  const desired = desiredOf(resource);
  const { namespace: given, ...metadata } = desired.metadata;
  if (given !== undefined && given !== namespace) {
    // As the CLI always did: a resource is applied to the namespace it is applied in.
    log.debug(`${resource.kind} "${resource.metadata.name}": metadata.namespace "${given}" ignored; stored in "${namespace}"`);
  }
  const result = validateResource(prune({ ...desired, metadata: { ...metadata, generation } }), `${resource.kind} "${resource.metadata.name}"`);
  if (!result.ok) throw new ValidationError(result.problems);
  return result.resource;
}

/** The input resource with what the runtime file adds: uid, creationTimestamp, status. */
function merged(entry: Entry, runtime: RuntimeEntry | undefined): Resource {
  const resource = structuredClone(entry.resource) as Resource & { status?: unknown };
  const metadata = resource.metadata;
  metadata.resourceVersion = entry.resourceVersion;
  if (runtime) {
    const { uid, creationTimestamp } = runtime.resource.metadata;
    if (typeof uid === "string") metadata.uid = uid;
    if (typeof creationTimestamp === "string") metadata.creationTimestamp = creationTimestamp;
    const status = statusOf(runtime.resource);
    if (status !== undefined) resource.status = status;
  }
  return resource;
}

/** A resource whose input is gone but whose status is still there: deleted, awaiting finalize. */
function deletedResource(runtime: RuntimeEntry): Resource {
  const entry = toEntry(runtime.resource);
  const resource = merged(entry, runtime);
  const deletionTimestamp = new Date(runtime.mtimeMs).toISOString();
  resource.metadata.deletionTimestamp = deletionTimestamp;
  resource.metadata.resourceVersion = versionOf({ ...entry.resource, metadata: { ...entry.resource.metadata, deletionTimestamp } } as Resource);
  return resource;
}

/**
 * The status of a runtime file. Runtime files before the store kept `observedGeneration` had
 * the generation the status was for in `metadata.generation`: that is its observedGeneration.
 */
function statusOf(runtime: Resource): unknown {
  const status = (runtime as { status?: unknown }).status;
  if (status === null || typeof status !== "object" || Array.isArray(status)) return status ?? undefined;
  const generation = runtime.metadata.generation;
  if ((status as { observedGeneration?: unknown }).observedGeneration === undefined && typeof generation === "number") {
    return structuredClone({ ...status, observedGeneration: generation });
  }
  return structuredClone(status);
}
