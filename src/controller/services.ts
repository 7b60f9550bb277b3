/** Listeners and connectors: resources to router configuration, router state to status. */
import {
  ConditionType,
  failed,
  pending,
  ready,
  requiredConditions,
  setCondition,
  withAggregate,
  type Condition,
  type Connector,
  type ConnectorStatus,
  type Listener,
  type ListenerStatus,
  type MultiKeyListener,
  type MultiKeyListenerStatus,
  type Secret,
} from "../api/index.js";
import { connectorTls, listenerTls } from "./service-credentials.js";
import type { ConnectorConfig, KeyStrategy, ListenerConfig, ConnectorStatus as RouterConnector, ListenerStatus as RouterListener } from "../router/index.js";

export interface ServicePlan<C> {
  configs: C[];
  problems: Map<string, string>;
}

/** Why the router cannot serve this listener at all, if so. */
export function unsupportedListener(listener: Listener): string | undefined {
  const { type } = listener.spec;
  if (type && type !== "tcp") return `listener type "${type}" is not supported (only tcp)`;
  return undefined;
}

/** The namespace's Secrets by name, where listeners and connectors find their `tlsCredentials`. */
export type Secrets = ReadonlyMap<string, Secret>;

/** Where a listener listens, or why it cannot, as its platform published it. */
export type ListenerPlacement = { host: string; port: number } | { problem: string };

/**
 * Listeners to router configuration. Without `placements` each listens on its `spec.host` and
 * `spec.port`; with them (Kubernetes: a Service in front of the site's pods), where its platform
 * placed it. A listener with `tlsCredentials` takes them from its Secret in `secrets`.
 */
export function planListeners(
  listeners: Listener[],
  secrets: Secrets,
  placements?: Map<string, ListenerPlacement>,
  strategies?: ReadonlyMap<string, KeyStrategy>,
): ServicePlan<ListenerConfig> {
  const configs: ListenerConfig[] = [];
  const problems = new Map<string, string>();
  const taken = new Map<string, string>();
  for (const listener of [...listeners].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
    const { name } = listener.metadata;
    const { routingKey } = listener.spec;
    const unsupported = unsupportedListener(listener);
    if (unsupported) {
      problems.set(name, unsupported);
      continue;
    }
    const tls = listenerTls(listener, secrets);
    if (tls && "problem" in tls) {
      problems.set(name, tls.problem);
      continue;
    }
    const placement: ListenerPlacement = placements?.get(name) ?? { host: listener.spec.host, port: listener.spec.port };
    if ("problem" in placement) {
      problems.set(name, placement.problem);
      continue;
    }
    const { host, port } = placement;
    const where = `${host}:${port}`;
    const other = taken.get(where);
    if (other) {
      problems.set(name, `port ${port} is already mapped for host "${host}" (listener: "${other}")`);
      continue;
    }
    taken.set(where, name);
    const strategy = strategies?.get(name);
    configs.push({ name, host, port, routingKey, ...(strategy ? { strategy } : {}), ...(tls ? { tls: tls.credentials } : {}) });
  }
  return { configs, problems };
}

/**
 * A MultiKeyListener is served as a listener of the router named `MultiKeyListener/<name>`
 * (no resource name holds a "/", so it never meets a Listener's), planned and published with
 * the Listeners, since they share hosts and ports.
 */
export const MULTI_KEY_PREFIX = "MultiKeyListener/";

/** The Listener resource, or the MultiKeyListener, that a router listener serves. */
export function listenerResourceOf(routerName: string): ["Listener" | "MultiKeyListener", string] {
  return routerName.startsWith(MULTI_KEY_PREFIX) ? ["MultiKeyListener", routerName.slice(MULTI_KEY_PREFIX.length)] : ["Listener", routerName];
}

/** How each new connection of a MultiKeyListener picks its routing key. */
export function keyStrategyOf(listener: MultiKeyListener): KeyStrategy {
  const { priority, weighted } = listener.spec.strategy;
  return priority ? { kind: "priority", keys: [...priority.routingKeys] } : { kind: "weighted", weights: { ...(weighted?.routingKeys ?? {}) } };
}

/** MultiKeyListeners as listeners to plan and publish beside the Listeners, and their strategies. */
export function multiKeyAsListeners(multiKey: MultiKeyListener[]): { listeners: Listener[]; strategies: Map<string, KeyStrategy> } {
  const listeners: Listener[] = [];
  const strategies = new Map<string, KeyStrategy>();
  for (const mkl of multiKey) {
    const name = `${MULTI_KEY_PREFIX}${mkl.metadata.name}`;
    const { host, port, tlsCredentials, requireClientCert } = mkl.spec;
    const spec = { host, port, routingKey: "", ...(tlsCredentials ? { tlsCredentials } : {}), ...(requireClientCert ? { requireClientCert } : {}) };
    listeners.push({ apiVersion: mkl.apiVersion, kind: "Listener", metadata: { name }, spec } as Listener);
    strategies.set(name, keyStrategyOf(mkl));
  }
  return { listeners, strategies };
}

export function multiKeyListenerStatus(
  previous: Condition[] | undefined,
  problem: string | undefined,
  router: RouterListener | undefined,
  strategy: KeyStrategy,
  now: string,
): MultiKeyListenerStatus {
  let conditions = previous ?? [];
  const configured = problem ? failed(problem) : router?.state === "error" ? failed(router.message) : ready();
  conditions = setCondition(conditions, ConditionType.Configured, configured, now);
  const reachable = router?.reachableKeys ?? [];
  const hasDestination = reachable.length > 0;
  conditions = setCondition(conditions, ConditionType.Operational, hasDestination ? ready() : pending("No matching connectors"), now);
  const status: MultiKeyListenerStatus = { ...withAggregate({ conditions }, requiredConditions("MultiKeyListener"), now), hasDestination };
  status.strategy =
    strategy.kind === "priority"
      ? { priority: { routingKeysReachable: reachable } }
      : { weighted: { routingKeysReachable: Object.fromEntries(reachable.map((key) => [key, strategy.weights[key] as number])) } };
  return status;
}

/** The backends a connector's selector chooses now, or why there are none. */
export type SelectorTargets = (connector: Connector) => string[] | { problem: string };

/** Separates a connector's name from a backend address in the router's name for it. */
export const BACKEND_SEPARATOR = "@";

/**
 * Connectors to router configuration. A connector with a selector (where the platform can
 * choose backends) becomes one router connector per backend, named `<name>@<address>`; the
 * router balances between them as between any connectors of one routing key. A connector with
 * `tlsCredentials` takes them from its Secret in `secrets`.
 */
export function planConnectors(connectors: Connector[], secrets: Secrets, selectorTargets?: SelectorTargets): ServicePlan<ConnectorConfig> {
  const configs: ConnectorConfig[] = [];
  const problems = new Map<string, string>();
  for (const connector of connectors) {
    const { name } = connector.metadata;
    const { host, port, type, selector } = connector.spec;
    const checked = connectorTls(connector, secrets);
    const routing = { routingKey: connector.spec.routingKey, ...(checked && "credentials" in checked ? { tls: checked.credentials } : {}) };
    if (type && type !== "tcp") problems.set(name, `connector type "${type}" is not supported (only tcp)`);
    else if (checked && "problem" in checked) problems.set(name, checked.problem);
    else if (host) configs.push({ name, host, port, ...routing });
    else if (selector && !selectorTargets) problems.set(name, `selectors are not supported on this platform; set spec.host`);
    else if (selector && selectorTargets) {
      const targets = selectorTargets(connector);
      if (!Array.isArray(targets)) problems.set(name, targets.problem);
      else for (const address of targets) configs.push({ name: `${name}${BACKEND_SEPARATOR}${address}`, host: address, port, ...routing });
    } else problems.set(name, selectorTargets ? "Connector must define a non-empty spec.host or spec.selector" : "Connector must define a non-empty spec.host");
  }
  return { configs, problems };
}

/** The Connector a router connector was made for. */
export function connectorResourceName(routerName: string): string {
  const at = routerName.indexOf(BACKEND_SEPARATOR);
  return at < 0 ? routerName : routerName.slice(0, at);
}

/** The router's connector for this resource (for a selector, any one of its backends). */
export function routerConnectorOf<C extends { name: string }>(connectors: C[], name: string): C | undefined {
  return connectors.find((c) => c.name === name || c.name.startsWith(`${name}${BACKEND_SEPARATOR}`));
}

export function listenerStatus(previous: Condition[] | undefined, problem: string | undefined, router: RouterListener | undefined, now: string): ListenerStatus {
  let conditions = previous ?? [];
  const configured = problem ? failed(problem) : router?.state === "error" ? failed(router.message) : ready();
  conditions = setCondition(conditions, ConditionType.Configured, configured, now);
  const matched = router?.hasMatchingConnector ?? false;
  conditions = setCondition(conditions, ConditionType.Matched, matched ? ready() : pending("No matching connectors"), now);
  return { ...withAggregate({ conditions }, requiredConditions("Listener"), now), hasMatchingConnector: matched };
}

export function connectorStatus(previous: Condition[] | undefined, problem: string | undefined, router: RouterConnector | undefined, now: string): ConnectorStatus {
  let conditions = previous ?? [];
  conditions = setCondition(conditions, ConditionType.Configured, problem ? failed(problem) : ready(), now);
  const matched = router?.hasMatchingListener ?? false;
  conditions = setCondition(conditions, ConditionType.Matched, matched ? ready() : pending("No matching listeners"), now);
  return { ...withAggregate({ conditions }, requiredConditions("Connector"), now), hasMatchingListener: matched };
}
