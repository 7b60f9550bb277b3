/** Site status: Configured, Running and (with link access) Resolved; endpoints and the network view. */
import {
  ConditionType,
  DEFAULT_ISSUER,
  failed,
  pending,
  ready,
  requiredConditions,
  setCondition,
  withAggregate,
  type Condition,
  type SiteRecord,
  type SiteStatus,
} from "../api/index.js";
import type { RouterStatus } from "../router/index.js";
import { linkEndpoints, type AccessPlan } from "./access.js";

export interface SiteFacts {
  configuredProblem?: string;
  running: boolean;
  linkAccess: boolean;
  plan?: AccessPlan;
  /** Why link access is not (yet) usable: link or grant server not listening. */
  resolvedProblem?: string;
  router?: RouterStatus;
  namespace: string;
  version: string;
  /** The Secret whose CA signs the site's link certificates (default DEFAULT_ISSUER). */
  issuer?: string;
}

export function siteStatus(previous: Condition[] | undefined, facts: SiteFacts, now: string): SiteStatus {
  let conditions = previous ?? [];
  conditions = setCondition(conditions, ConditionType.Configured, facts.configuredProblem ? failed(facts.configuredProblem) : ready(), now);
  conditions = setCondition(conditions, ConditionType.Running, facts.running ? ready() : pending("No router is running"), now);
  if (facts.linkAccess) {
    // Settings that cannot be applied leave both servers closed: link access is not resolved either.
    const resolved = facts.resolvedProblem ? failed(facts.resolvedProblem) : facts.configuredProblem ? pending(facts.configuredProblem) : ready();
    conditions = setCondition(conditions, ConditionType.Resolved, resolved, now);
  } else {
    conditions = conditions.filter((c) => c.type !== ConditionType.Resolved);
  }
  const status: SiteStatus = withAggregate({ conditions }, requiredConditions("Site", { linkAccess: facts.linkAccess }), now);
  status.defaultIssuer = facts.issuer ?? DEFAULT_ISSUER;
  if (facts.linkAccess && facts.plan && !facts.resolvedProblem && !facts.configuredProblem) status.endpoints = linkEndpoints(facts.plan);
  if (facts.router) {
    const network = networkRecords(facts.router, facts.namespace);
    status.sitesInNetwork = network.length;
    status.network = network;
  }
  return status;
}

/** One record per reachable site: its links and the services it offers or consumes. */
export function networkRecords(router: RouterStatus, namespace: string): SiteRecord[] {
  const names = new Map(router.network.map((s) => [s.id, s.name]));
  return router.network
    .filter((s) => s.reachable)
    .map((s) => {
      const keys = new Set([...Object.keys(s.connectors), ...Object.keys(s.listeners)]);
      const record: SiteRecord = {
        id: s.id,
        name: s.name,
        platform: "linux",
        ...(s.namespace ? { namespace: s.namespace } : s.id === router.siteId ? { namespace } : {}),
        ...(s.version ? { version: s.version } : {}),
        links: Object.keys(s.links).map((peer) => ({
          name: `${s.name}-${names.get(peer) ?? peer}`,
          remoteSiteId: peer,
          remoteSiteName: names.get(peer) ?? peer,
          operational: true,
        })),
        services: [...keys].sort().map((routingKey) => ({
          routingKey,
          ...((s.listeners[routingKey] ?? 0) > 0 ? { listeners: [routingKey] } : {}),
          ...((s.connectors[routingKey] ?? 0) > 0 ? { connectors: [routingKey] } : {}),
        })),
      };
      return record;
    });
}
