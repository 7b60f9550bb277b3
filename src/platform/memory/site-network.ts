/** A SiteNetwork for tests: exposure, listener placements and selector backends set by the test. */
import type { Listener, Site } from "../../api/index.js";
import type { LinkAccessExposure, LinkAccessPorts, PublishedListener, SelectorWatch, SiteNetwork } from "../types.js";

export class MemorySiteNetwork implements SiteNetwork {
  /** What exposeLinkAccess answers; by default the bound ports on 192.0.2.1. */
  exposure: ((ports: LinkAccessPorts) => LinkAccessExposure) | undefined;
  readonly exposed: Array<{ site: string; ports: LinkAccessPorts }> = [];
  withdrawals = 0;
  /** Listener name → placement or problem; a listener not named listens on 0.0.0.0 and its own port. */
  readonly placements = new Map<string, PublishedListener | { problem: string }>();
  readonly published: string[][] = [];
  private readonly backends = new Map<string, { ready: string[]; running: string[]; problem?: string }>();
  private readonly watchers = new Map<string, Set<() => void>>();
  openWatches = 0;

  async exposeLinkAccess(site: Site, ports: LinkAccessPorts): Promise<LinkAccessExposure> {
    this.exposed.push({ site: site.metadata.name, ports });
    return this.exposure ? this.exposure(ports) : { hosts: ["192.0.2.1"], ...ports };
  }

  async withdrawLinkAccess(): Promise<void> {
    this.withdrawals++;
  }

  async publishListeners(_site: Site, listeners: Listener[]): Promise<Map<string, PublishedListener | { problem: string }>> {
    this.published.push(listeners.map((l) => l.metadata.name));
    return new Map(listeners.map((l) => [l.metadata.name, this.placements.get(l.metadata.name) ?? { host: "0.0.0.0", port: l.spec.port }]));
  }

  /** Sets the pods a selector chooses (ready ones, and running but not ready ones) and tells the watchers. */
  setBackends(selector: string, ready: string[], notReady: string[] = [], problem?: string): void {
    this.backends.set(selector, { ready, running: [...ready, ...notReady], ...(problem ? { problem } : {}) });
    for (const notify of this.watchers.get(selector) ?? []) notify();
  }

  watchSelector(selector: string, onChange: () => void): SelectorWatch {
    const watchers = this.watchers.get(selector) ?? new Set();
    this.watchers.set(selector, watchers);
    watchers.add(onChange);
    this.openWatches++;
    let closed = false;
    const backends = () => this.backends.get(selector);
    return {
      addresses: (includeNotReady) => [...((includeNotReady ? backends()?.running : backends()?.ready) ?? [])].sort(),
      get problem() {
        return backends()?.problem;
      },
      close: () => {
        if (closed) return;
        closed = true;
        watchers.delete(onChange);
        this.openWatches--;
      },
    };
  }

  async close(): Promise<void> {
    for (const [, watchers] of this.watchers) watchers.clear();
    this.openWatches = 0;
  }
}
