/**
 * Backends of connectors with a selector (Kubernetes pods), followed with one watch per selector
 * in use. A change of backends reconciles the connectors that use the selector.
 */
import type { Connector } from "../api/index.js";
import type { SelectorWatch, SiteNetwork } from "../platform/index.js";
import type { SelectorTargets } from "./services.js";

export class SelectorBackends {
  private readonly watches = new Map<string, SelectorWatch>();
  /** Advanced on every change of backends: plans made before are stale. */
  version = 0;

  constructor(
    private readonly network: SiteNetwork,
    private readonly onChange: (selector: string) => void,
  ) {}

  /** Targets of the given connectors; starts watches for new selectors and ends unused ones. */
  targetsFor(connectors: Connector[]): SelectorTargets {
    const inUse = new Set(connectors.filter((c) => !c.spec.host && c.spec.selector).map((c) => c.spec.selector as string));
    for (const [selector, watch] of this.watches) {
      if (!inUse.has(selector)) {
        watch.close();
        this.watches.delete(selector);
      }
    }
    for (const selector of inUse) {
      if (!this.watches.has(selector)) {
        this.watches.set(
          selector,
          this.network.watchSelector(selector, () => {
            this.version++;
            this.onChange(selector);
          }),
        );
      }
    }
    return (connector) => {
      const selector = connector.spec.selector as string;
      const watch = this.watches.get(selector);
      if (!watch) return { problem: `no watch for the selector "${selector}"` };
      if (watch.problem) return { problem: watch.problem };
      const includeNotReady = connector.spec.includeNotReadyPods === true;
      const addresses = watch.addresses(includeNotReady);
      if (addresses.length === 0) {
        return { problem: `No ${includeNotReady ? "running" : "ready"} pods match the selector "${selector}"` };
      }
      return addresses;
    };
  }

  close(): void {
    for (const watch of this.watches.values()) watch.close();
    this.watches.clear();
  }
}
