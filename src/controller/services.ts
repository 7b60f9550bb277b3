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
} from "../api/index.js";
import type { ConnectorConfig, ListenerConfig, ConnectorStatus as RouterConnector, ListenerStatus as RouterListener } from "../router/index.js";

export interface ServicePlan<C> {
  configs: C[];
  problems: Map<string, string>;
}

export function planListeners(listeners: Listener[]): ServicePlan<ListenerConfig> {
  const configs: ListenerConfig[] = [];
  const problems = new Map<string, string>();
  const taken = new Map<string, string>();
  for (const listener of [...listeners].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
    const { name } = listener.metadata;
    const { host, port, routingKey, type, tlsCredentials } = listener.spec;
    if (type && type !== "tcp") {
      problems.set(name, `listener type "${type}" is not supported (only tcp)`);
      continue;
    }
    if (tlsCredentials) {
      problems.set(name, `TLS between clients and the listener (tlsCredentials) is not supported yet`);
      continue;
    }
    const where = `${host}:${port}`;
    const other = taken.get(where);
    if (other) {
      problems.set(name, `port ${port} is already mapped for host "${host}" (listener: "${other}")`);
      continue;
    }
    taken.set(where, name);
    configs.push({ name, host, port, routingKey });
  }
  return { configs, problems };
}

export function planConnectors(connectors: Connector[]): ServicePlan<ConnectorConfig> {
  const configs: ConnectorConfig[] = [];
  const problems = new Map<string, string>();
  for (const connector of connectors) {
    const { name } = connector.metadata;
    const { host, port, routingKey, type, selector, tlsCredentials } = connector.spec;
    if (type && type !== "tcp") problems.set(name, `connector type "${type}" is not supported (only tcp)`);
    else if (selector && !host) problems.set(name, `selectors are not supported on this platform; set spec.host`);
    else if (!host) problems.set(name, "Connector must define a non-empty spec.host");
    else if (tlsCredentials) problems.set(name, "TLS between the connector and its backend (tlsCredentials) is not supported yet");
    else configs.push({ name, host, port, routingKey });
  }
  return { configs, problems };
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
