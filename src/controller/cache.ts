/**
 * The controller's copy of the namespace's resources, filled by one list per kind at start and
 * refreshed by watch events, so reconcilers can look at other resources (a Link at its Secret,
 * a Listener at the other Listeners' ports) without a read of the store each time.
 */
import { KINDS, resourceKey, type Kind, type Resource, type ResourceByKind } from "../api/index.js";
import type { ResourceStore } from "../platform/index.js";

export class ResourceCache {
  private readonly byKey = new Map<string, Resource>();
  private changes = 0;

  constructor(private readonly store: ResourceStore) {}

  async load(): Promise<void> {
    this.byKey.clear();
    this.changes++;
    for (const kind of KINDS) {
      for (const resource of await this.store.list(kind)) this.byKey.set(resourceKey(kind, resource.metadata.name), resource);
    }
  }

  /** Reads one resource from the store again; returns it (undefined if it is gone). */
  async refresh<K extends Kind>(kind: K, name: string): Promise<ResourceByKind[K] | undefined> {
    const resource = await this.store.get(kind, name);
    this.set(kind, name, resource);
    return resource;
  }

  set(kind: Kind, name: string, resource: Resource | undefined): void {
    const key = resourceKey(kind, name);
    const before = this.byKey.get(key);
    if (resource) this.byKey.set(key, resource);
    else this.byKey.delete(key);
    if (!sameVersion(before, resource)) this.changes++;
  }

  /** Keeps the resource as stored after a status write: its desired state is unchanged. */
  setStatus(kind: Kind, name: string, resource: Resource): void {
    const key = resourceKey(kind, name);
    if (this.byKey.has(key)) this.byKey.set(key, resource);
  }

  /**
   * Advances with every change other than a status write: what was computed from the desired
   * state of the resources (a plan) is still right while it stays the same.
   */
  get version(): number {
    return this.changes;
  }

  /** The resource, also while it is being deleted. */
  get<K extends Kind>(kind: K, name: string): ResourceByKind[K] | undefined {
    return this.byKey.get(resourceKey(kind, name)) as ResourceByKind[K] | undefined;
  }

  /** The resource unless it is absent or being deleted. */
  live<K extends Kind>(kind: K, name: string): ResourceByKind[K] | undefined {
    const resource = this.get(kind, name);
    return resource && !isDeleted(resource) ? resource : undefined;
  }

  /** Resources of a kind that are not being deleted, by name. */
  list<K extends Kind>(kind: K): Array<ResourceByKind[K]> {
    const out: Array<ResourceByKind[K]> = [];
    for (const resource of this.byKey.values()) {
      if (resource.kind === kind && !isDeleted(resource)) out.push(resource as ResourceByKind[K]);
    }
    return out.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  }

  /** Names of every resource of a kind, including those being deleted. */
  names(kind: Kind): string[] {
    const prefix = `${kind}/`;
    return [...this.byKey.keys()].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length));
  }
}

function sameVersion(a: Resource | undefined, b: Resource | undefined): boolean {
  if (!a || !b) return a === b;
  return a.metadata.resourceVersion !== undefined && a.metadata.resourceVersion === b.metadata.resourceVersion && !!a.metadata.deletionTimestamp === !!b.metadata.deletionTimestamp;
}

export function isDeleted(resource: Resource): boolean {
  return !!resource.metadata.deletionTimestamp;
}
