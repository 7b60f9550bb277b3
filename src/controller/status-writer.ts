/**
 * Status writes, serialised per resource. The status is computed when its write starts, so the
 * last write always carries the latest state (a redemption counted while a status refresh was
 * queued is never overwritten by an older count), and a status equal to the last one written, or
 * to the one stored, is not written again.
 */
import { resourceKey, type Kind, type ResourceByKind } from "../api/index.js";
import type { ResourceStore, StatusOf } from "../platform/index.js";
import type { ResourceCache } from "./cache.js";

export class StatusWriter {
  private readonly chains = new Map<string, Promise<unknown>>();
  private readonly written = new Map<string, string>();

  constructor(
    private readonly store: ResourceStore,
    private readonly cache: ResourceCache,
  ) {}

  /**
   * Writes the status `build()` returns (nothing if it returns undefined or what was last
   * written). Resolves with the stored resource, or undefined if it no longer exists.
   */
  write<K extends Kind>(kind: K, name: string, build: () => StatusOf<K> | undefined): Promise<ResourceByKind[K] | undefined> {
    const key = resourceKey(kind, name);
    const previous = this.chains.get(key) ?? Promise.resolve();
    const next = previous.then(async () => {
      const status = build();
      if (status === undefined) return this.cache.get(kind, name);
      const text = JSON.stringify(status);
      const current = this.cache.get(kind, name) as { status?: unknown } | undefined;
      // Also compare with what is stored: after a restart nothing was written yet, and every
      // resource would otherwise get its unchanged status written again.
      if (this.written.get(key) === text || (current !== undefined && JSON.stringify(current.status) === text)) return current as ResourceByKind[K] | undefined;
      const stored = await this.store.updateStatus(kind, name, status);
      if (stored) {
        this.written.set(key, text);
        this.cache.setStatus(kind, name, stored);
      }
      return stored;
    });
    const tail = next.catch(() => undefined);
    this.chains.set(key, tail);
    void tail.then(() => {
      if (this.chains.get(key) === tail) this.chains.delete(key);
    });
    return next;
  }

  forget(kind: Kind, name: string): void {
    this.written.delete(resourceKey(kind, name));
  }

  async idle(): Promise<void> {
    await Promise.all([...this.chains.values()]);
  }
}
