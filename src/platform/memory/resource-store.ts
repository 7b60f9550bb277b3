import { randomUUID } from "node:crypto";
import { isDeepStrictEqual } from "node:util";
import { checkKind, checkResourceName, DEFAULT_NAMESPACE, resourceKey, validateNamespace } from "../../api/names.js";
import type { Kind, ObjectMeta, Resource, ResourceByKind } from "../../api/index.js";
import { AlreadyExistsError, ConflictError, errorMessage, NotFoundError } from "../../common/errors.js";
import type { ResourceStore, StatusOf, Unwatch, WatchEvent } from "../types.js";
import { FaultInjector, type FaultOptions } from "./faults.js";

export type ResourceOperation = "create" | "update" | "updateStatus" | "delete" | "finalize";

export interface ResourceFaultOptions extends FaultOptions {
  /** Only calls on resources of this kind fail. */
  kind?: Kind;
  /** Only calls on resources of this name fail. */
  name?: string;
}

/** One call of a writing operation, in the order made; `error` is set if it rejected. */
export interface ResourceOperationRecord {
  op: ResourceOperation;
  kind: string;
  name: string;
  error?: string;
}

interface Entry {
  resource: Resource;
  /** Whether status was ever written: only then does a delete wait for `finalize`. */
  statusWritten: boolean;
}

/** The metadata fields only the store sets. */
const STORE_METADATA = ["namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp"] as const;

/**
 * A ResourceStore in memory, with the semantics documented on the interface (see types.ts),
 * for controller unit tests. Every object it returns or keeps is a copy. `failNext` makes
 * chosen writes fail; `log` records every write call, so a test can count them.
 */
export class MemoryResourceStore implements ResourceStore {
  readonly namespace: string;
  readonly log: ResourceOperationRecord[] = [];
  private readonly entries = new Map<string, Entry>();
  private readonly watchers = new Set<(event: WatchEvent) => void>();
  private readonly faults = new FaultInjector<ResourceOperation>();
  private version = 0;

  constructor(namespace: string = DEFAULT_NAMESPACE) {
    this.namespace = validateNamespace(namespace);
  }

  /** Write calls that resolved (whether or not they changed anything). */
  get writes(): number {
    return this.log.filter((record) => record.error === undefined).length;
  }

  clearLog(): void {
    this.log.length = 0;
  }

  /** Makes the next matching call(s) of `op` reject before they change anything. */
  failNext(op: ResourceOperation, options: ResourceFaultOptions = {}): void {
    const { kind, name } = options;
    this.faults.add(
      op,
      (target) => {
        const [targetKind, targetName] = target.split("/");
        return (kind === undefined || kind === targetKind) && (name === undefined || name === targetName);
      },
      options,
    );
  }

  /** Injected failures not used up yet. */
  get pendingFaults(): number {
    return this.faults.pending;
  }

  async list<K extends Kind>(kind: K): Promise<Array<ResourceByKind[K]>> {
    checkKind(kind);
    return [...this.entries.values()]
      .map((entry) => entry.resource)
      .filter((resource) => resource.kind === kind)
      .sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1))
      .map((resource) => copy(resource) as ResourceByKind[K]);
  }

  async get<K extends Kind>(kind: K, name: string): Promise<ResourceByKind[K] | undefined> {
    checkResourceName(kind, name);
    const entry = this.entries.get(resourceKey(kind, name));
    return entry ? (copy(entry.resource) as ResourceByKind[K]) : undefined;
  }

  create<R extends Resource>(resource: R): Promise<R> {
    return this.write("create", resource.kind, resource.metadata.name, () => {
      const key = resourceKey(resource.kind, resource.metadata.name);
      if (this.entries.has(key)) throw new AlreadyExistsError(`${key} already exists`);
      const stored = withoutStatus(copy(resource));
      stored.metadata = {
        ...clientMetadata(stored.metadata),
        namespace: this.namespace,
        uid: randomUUID(),
        creationTimestamp: new Date().toISOString(),
        generation: 1,
        resourceVersion: this.nextVersion(),
      };
      this.entries.set(key, { resource: stored, statusWritten: false });
      this.emit({ type: "added", kind: resource.kind, name: resource.metadata.name });
      return copy(stored);
    });
  }

  update<R extends Resource>(resource: R): Promise<R> {
    return this.write("update", resource.kind, resource.metadata.name, () => {
      const key = resourceKey(resource.kind, resource.metadata.name);
      const entry = this.entries.get(key);
      if (!entry) throw new NotFoundError(`${key} does not exist`);
      const stored = entry.resource;
      const expected = resource.metadata.resourceVersion;
      if (expected !== undefined && expected !== stored.metadata.resourceVersion) {
        throw new ConflictError(`${key} has changed since resourceVersion ${expected} was read; read it again and retry`);
      }
      const next = withoutStatus(copy(resource));
      next.metadata = { ...clientMetadata(next.metadata), ...storeMetadata(stored.metadata) };
      if ("status" in stored) Object.assign(next, { status: copy(stored.status) });
      if (isDeepStrictEqual(next, stored)) return copy(stored) as R;
      if (!isDeepStrictEqual(desiredState(next), desiredState(stored))) next.metadata.generation = (stored.metadata.generation ?? 0) + 1;
      next.metadata.resourceVersion = this.nextVersion();
      entry.resource = next;
      this.emit({ type: "modified", kind: resource.kind, name: resource.metadata.name });
      return copy(next);
    });
  }

  updateStatus<K extends Kind>(kind: K, name: string, status: StatusOf<K>): Promise<ResourceByKind[K] | undefined> {
    return this.write("updateStatus", kind, name, () => {
      const entry = this.entries.get(resourceKey(kind, name));
      if (!entry) return undefined;
      entry.statusWritten = true;
      const next = copy(entry.resource) as Resource & { status?: unknown };
      if (status === undefined) delete next.status;
      else next.status = copy(status);
      if (!isDeepStrictEqual(next, entry.resource)) {
        next.metadata.resourceVersion = this.nextVersion();
        entry.resource = next;
      }
      return copy(entry.resource) as ResourceByKind[K];
    });
  }

  delete(kind: Kind, name: string): Promise<boolean> {
    return this.write("delete", kind, name, () => {
      const key = resourceKey(kind, name);
      const entry = this.entries.get(key);
      if (!entry) return false;
      if (!entry.statusWritten) {
        this.entries.delete(key);
      } else if (entry.resource.metadata.deletionTimestamp) {
        return true;
      } else {
        const terminating = copy(entry.resource);
        terminating.metadata.deletionTimestamp = new Date().toISOString();
        terminating.metadata.resourceVersion = this.nextVersion();
        entry.resource = terminating;
      }
      this.emit({ type: "deleted", kind, name });
      return true;
    });
  }

  /** Removes a resource being deleted; does nothing to one that is not (or no longer) there or not deleted. */
  finalize(kind: Kind, name: string): Promise<void> {
    return this.write("finalize", kind, name, () => {
      const key = resourceKey(kind, name);
      if (!this.entries.get(key)?.resource.metadata.deletionTimestamp) return;
      this.entries.delete(key);
      this.emit({ type: "deleted", kind, name });
    });
  }

  /**
   * Reports `added` for each resource (`deleted` for one being deleted), then one event per
   * create, update that changed something, delete and finalize; never for status writes.
   * Events are delivered in order, each in its own microtask.
   */
  watch(onEvent: (event: WatchEvent) => void): Unwatch {
    let active = true;
    const deliver = (event: WatchEvent): void => queueMicrotask(() => active && onEvent(event));
    const existing = [...this.entries.values()].map((e) => e.resource).sort((a, b) => (resourceKey(a.kind, a.metadata.name) < resourceKey(b.kind, b.metadata.name) ? -1 : 1));
    for (const resource of existing) {
      deliver({ type: resource.metadata.deletionTimestamp ? "deleted" : "added", kind: resource.kind, name: resource.metadata.name });
    }
    this.watchers.add(deliver);
    return () => {
      active = false;
      this.watchers.delete(deliver);
    };
  }

  private async write<T>(op: ResourceOperation, kind: Kind, name: string, apply: () => T): Promise<T> {
    const record: ResourceOperationRecord = { op, kind, name };
    this.log.push(record);
    try {
      checkResourceName(kind, name);
      this.faults.check(op, resourceKey(kind, name));
      return apply();
    } catch (err) {
      record.error = errorMessage(err);
      throw err;
    }
  }

  private nextVersion(): string {
    return String(++this.version);
  }

  private emit(event: WatchEvent): void {
    for (const deliver of this.watchers) deliver({ ...event });
  }
}

/** A deep copy, as the resource would come back from storage (undefined fields dropped). */
function copy<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

function withoutStatus<R extends Resource>(resource: R): R {
  delete (resource as { status?: unknown }).status;
  return resource;
}

function clientMetadata(metadata: ObjectMeta): ObjectMeta {
  const result = { ...metadata };
  for (const field of STORE_METADATA) delete result[field];
  return result;
}

function storeMetadata(metadata: ObjectMeta): Partial<ObjectMeta> {
  const result: Partial<ObjectMeta> = {};
  for (const field of STORE_METADATA) if (metadata[field] !== undefined) Object.assign(result, { [field]: metadata[field] });
  return result;
}

/** Everything but metadata and status: what `generation` counts changes of. */
function desiredState(resource: Resource): Record<string, unknown> {
  const rest: Record<string, unknown> = { ...resource };
  delete rest.metadata;
  delete rest.status;
  return rest;
}
