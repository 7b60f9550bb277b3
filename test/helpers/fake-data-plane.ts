/**
 * A data plane without sockets, for unit tests of the controller: it keeps the configuration it
 * is given, reports a status built from it, and lets the test decide what the network does
 * (links come up or fail, routing keys find their match) and which calls fail.
 */
import { FaultInjector, type FaultOptions } from "../../src/platform/memory/faults.js";
import type { DataPlane, DataPlaneFactory } from "../../src/router/data-plane.js";
import type { LinkServerConfig, LinkState, OutgoingLinkConfig } from "../../src/router/links.js";
import type {
  ConnectorStatus,
  LinkServerStatus,
  ListenerStatus,
  NetworkSite,
  OutgoingLinkStatus,
  RouterIdentity,
  RouterOptions,
  RouterStatus,
} from "../../src/router/router.js";
import type { ConnectorConfig, ListenerConfig } from "../../src/router/services.js";

export type DataPlaneMethod = "setLinkServer" | "setOutgoingLinks" | "setListeners" | "setConnectors" | "close";

export interface LinkStateDetails {
  remoteSiteId?: string;
  remoteSiteName?: string;
  message?: string;
}

interface OutgoingLinkState extends LinkStateDetails {
  state: LinkState;
  since: number;
}

const DEFAULT_LINK_MESSAGE: Record<LinkState, string> = { connecting: "Connecting", up: "OK", error: "the link failed" };

export class FakeDataPlane implements DataPlane {
  /** The configuration last applied by each setter. */
  linkServerConfig: LinkServerConfig | undefined;
  outgoingLinkConfigs: OutgoingLinkConfig[] = [];
  listenerConfigs: ListenerConfig[] = [];
  connectorConfigs: ConnectorConfig[] = [];
  /** Every call made, failed ones included, in order. */
  readonly calls: DataPlaneMethod[] = [];
  /** How many times `onChange` was called. */
  changes = 0;
  closed = false;
  private readonly links = new Map<string, OutgoingLinkState>();
  private readonly matching = new Map<string, boolean>();
  private readonly faults = new FaultInjector<DataPlaneMethod>();
  private readonly startedAt = Date.now();
  private changePending = false;

  constructor(
    readonly identity: RouterIdentity,
    private readonly options: RouterOptions = {},
  ) {}

  /** Makes the next call(s) of `method` throw (or reject) without applying anything. */
  failNext(method: DataPlaneMethod, options: FaultOptions = {}): void {
    this.faults.add(method, () => true, options);
  }

  /** What the network does to an outgoing link; the link must be configured. */
  setLinkState(name: string, state: "up" | "error", details: LinkStateDetails = {}): void {
    if (!this.links.has(name)) throw new Error(`no outgoing link "${name}" is configured`);
    this.links.set(name, { state, since: Date.now(), ...details });
    this.notifyChange();
  }

  /**
   * Whether the network has a match for `routingKey`: listeners of that key report
   * `hasMatchingConnector`, connectors `hasMatchingListener`. `undefined` goes back to the
   * default: a match only when this site itself has the other side.
   */
  setMatching(routingKey: string, matching: boolean | undefined): void {
    if (matching === undefined) this.matching.delete(routingKey);
    else this.matching.set(routingKey, matching);
    this.notifyChange();
  }

  async setLinkServer(config: LinkServerConfig | undefined): Promise<LinkServerStatus> {
    this.call("setLinkServer");
    this.linkServerConfig = config && structuredClone(config);
    this.notifyChange();
    return this.linkServerStatus();
  }

  setOutgoingLinks(configs: OutgoingLinkConfig[]): void {
    this.call("setOutgoingLinks");
    this.outgoingLinkConfigs = structuredClone(configs);
    const wanted = new Set(configs.map((c) => c.name));
    for (const name of this.links.keys()) if (!wanted.has(name)) this.links.delete(name);
    for (const name of wanted) if (!this.links.has(name)) this.links.set(name, { state: "connecting", since: Date.now() });
    this.notifyChange();
  }

  setListeners(configs: ListenerConfig[]): void {
    this.call("setListeners");
    this.listenerConfigs = structuredClone(configs);
    this.notifyChange();
  }

  setConnectors(configs: ConnectorConfig[]): void {
    this.call("setConnectors");
    this.connectorConfigs = structuredClone(configs);
    this.notifyChange();
  }

  async close(): Promise<void> {
    this.call("close");
    this.closed = true;
  }

  status(): RouterStatus {
    const outgoing: OutgoingLinkStatus[] = this.outgoingLinkConfigs.map((config) => {
      const link = this.links.get(config.name) ?? { state: "connecting", since: this.startedAt };
      const remoteSiteId = link.state === "up" ? (link.remoteSiteId ?? config.remoteSiteId) : undefined;
      return {
        name: config.name,
        state: link.state,
        message: link.message ?? DEFAULT_LINK_MESSAGE[link.state],
        cost: config.cost,
        since: link.since,
        ...(remoteSiteId ? { remoteSiteId } : {}),
        ...(link.state === "up" && link.remoteSiteName ? { remoteSiteName: link.remoteSiteName } : {}),
      };
    });
    const listeners: ListenerStatus[] = this.listenerConfigs.map((config) => ({
      name: config.name,
      routingKey: config.routingKey,
      host: config.host,
      port: config.port,
      state: "listening",
      message: "OK",
      hasMatchingConnector: this.matching.get(config.routingKey) ?? this.connectorConfigs.some((c) => c.routingKey === config.routingKey),
      connections: 0,
    }));
    const connectors: ConnectorStatus[] = this.connectorConfigs.map((config) => ({
      name: config.name,
      routingKey: config.routingKey,
      host: config.host,
      port: config.port,
      hasMatchingListener: this.matching.get(config.routingKey) ?? this.listenerConfigs.some((l) => l.routingKey === config.routingKey),
      connections: 0,
    }));
    return {
      siteId: this.identity.siteId,
      siteName: this.identity.siteName,
      linkServer: this.linkServerStatus(),
      outgoing,
      incoming: [],
      listeners,
      connectors,
      network: this.network(outgoing),
    };
  }

  private linkServerStatus(): LinkServerStatus {
    return this.linkServerConfig ? { state: "listening", message: "OK" } : { state: "disabled", message: "Link access is not enabled" };
  }

  /** This site, and each site an outgoing link is up to (one hop away). */
  private network(outgoing: OutgoingLinkStatus[]): NetworkSite[] {
    const { siteId, siteName, namespace, version } = this.identity;
    const self: NetworkSite = {
      id: siteId,
      name: siteName,
      instance: this.startedAt,
      seq: 1,
      links: {},
      connectors: countByKey(this.connectorConfigs),
      listeners: countByKey(this.listenerConfigs),
      version,
      ...(namespace ? { namespace } : {}),
      reachable: true,
      cost: 0,
    };
    const remotes = new Map<string, NetworkSite>();
    for (const link of outgoing) {
      if (!link.remoteSiteId || link.remoteSiteId in self.links) continue;
      self.links[link.remoteSiteId] = link.cost;
      remotes.set(link.remoteSiteId, {
        id: link.remoteSiteId,
        name: link.remoteSiteName ?? "",
        instance: 0,
        seq: 1,
        links: { [siteId]: link.cost },
        connectors: {},
        listeners: {},
        reachable: true,
        cost: link.cost,
      });
    }
    return [self, ...remotes.values()];
  }

  private call(method: DataPlaneMethod): void {
    this.calls.push(method);
    this.faults.check(method, "");
  }

  /** Calls `onChange` once, in a microtask, for all the changes made until then. */
  private notifyChange(): void {
    if (this.changePending) return;
    this.changePending = true;
    queueMicrotask(() => {
      this.changePending = false;
      if (this.closed) return;
      this.changes++;
      this.options.onChange?.();
    });
  }
}

function countByKey(configs: Array<{ routingKey: string }>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const { routingKey } of configs) counts[routingKey] = (counts[routingKey] ?? 0) + 1;
  return counts;
}

/** A DataPlaneFactory that keeps every data plane it makes, newest last. */
export function fakeDataPlaneFactory(): { factory: DataPlaneFactory; instances: FakeDataPlane[] } {
  const instances: FakeDataPlane[] = [];
  const factory: DataPlaneFactory = (identity, options) => {
    const dataPlane = new FakeDataPlane(identity, options);
    instances.push(dataPlane);
    return dataPlane;
  };
  return { factory, instances };
}
