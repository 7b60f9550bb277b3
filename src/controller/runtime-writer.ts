/**
 * Writes of runtime status files, serialised per file. The content is computed when the write
 * starts, so the last write always carries the latest state (a redemption count recorded
 * while a status refresh was queued is never overwritten by an older value).
 */
import { toYaml, type Resource } from "../api/index.js";
import type { LocalStore } from "../store/index.js";

export class RuntimeWriter {
  private readonly chains = new Map<string, Promise<void>>();
  private readonly written = new Map<string, string>();

  constructor(private readonly store: LocalStore) {}

  /** Writes the resource `build()` returns (or deletes it when it returns undefined), if changed. */
  write(kind: Resource["kind"], name: string, build: () => Resource | undefined): Promise<void> {
    const key = `${kind}/${name}`;
    const previous = this.chains.get(key) ?? Promise.resolve();
    const next = previous.then(async () => {
      const resource = build();
      if (!resource) {
        if (this.written.get(key) === "") return;
        await this.store.deleteRuntime(kind, name);
        this.written.set(key, "");
        return;
      }
      const text = toYaml(resource);
      if (this.written.get(key) === text) return;
      await this.store.writeRuntime(resource);
      this.written.set(key, text);
    });
    const tail = next.catch(() => undefined);
    this.chains.set(key, tail);
    void tail.then(() => {
      if (this.chains.get(key) === tail) this.chains.delete(key);
    });
    return next;
  }

  /** Names of runtime files written or deleted by this writer, for cleanup of the rest. */
  known(kind: string): string[] {
    const prefix = `${kind}/`;
    return [...this.written.entries()].filter(([k, v]) => k.startsWith(prefix) && v !== "").map(([k]) => k.slice(prefix.length));
  }

  async idle(): Promise<void> {
    await Promise.all([...this.chains.values()]);
  }
}
