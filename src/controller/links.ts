/** Links: from Link + Secret resources to the router's outgoing-link configuration, and back to status. */
import {
  ConditionType,
  failed,
  linkCost,
  linkSecretName,
  pending,
  ready,
  requiredConditions,
  secretValue,
  setCondition,
  withAggregate,
  type Condition,
  type Link,
  type LinkStatus,
  type Secret,
} from "../api/index.js";
import { isCertificate } from "../certs/index.js";
import type { OutgoingLinkConfig, OutgoingLinkStatus, TlsCredentials } from "../router/index.js";
import { Annotation } from "./tokens.js";

// Issued the same way for redemptions (reconcilers/access-grants.ts) and, on Kubernetes, by the CLI.
export { issueLinkBundle, type LinkBundleRequest } from "../grants/link-bundle.js";

export interface LinkPlan {
  configs: OutgoingLinkConfig[];
  /** Link name → why it cannot be configured. */
  problems: Map<string, string>;
}

export function planLinks(links: Link[], secrets: Map<string, Secret>): LinkPlan {
  const configs: OutgoingLinkConfig[] = [];
  const problems = new Map<string, string>();
  for (const link of links) {
    const name = link.metadata.name;
    const secretName = linkSecretName(link);
    const secret = secrets.get(secretName);
    if (!secret) {
      problems.set(name, `TLS credentials secret "${secretName}" not found`);
      continue;
    }
    const credentials = secretCredentials(secret);
    if (typeof credentials === "string") {
      problems.set(name, credentials);
      continue;
    }
    const endpoints = link.spec.endpoints
      .filter((e) => !e.name || e.name === "inter-router")
      .map((e) => ({ host: e.host, port: Number(e.port) }));
    if (endpoints.length === 0) {
      problems.set(name, `the link has no "inter-router" endpoint`);
      continue;
    }
    const remoteSiteId = link.metadata.annotations?.[Annotation.remoteSiteId];
    configs.push({ name, endpoints, cost: linkCost(link), credentials, ...(remoteSiteId ? { remoteSiteId } : {}) });
  }
  return { configs, problems };
}

/** TLS credentials from a Secret's `ca.crt`, `tls.crt`, `tls.key`, or a sentence saying what is wrong. */
export function secretCredentials(secret: Secret): TlsCredentials | string {
  const value = (key: string) => secretValue(secret, key);
  const ca = value("ca.crt");
  const cert = value("tls.crt");
  const key = value("tls.key");
  const missing = [["ca.crt", ca], ["tls.crt", cert], ["tls.key", key]].filter(([, v]) => !v).map(([k]) => k);
  if (missing.length > 0) return `TLS credentials secret "${secret.metadata.name}" has no ${missing.join(", ")}`;
  if (!isCertificate(ca as string) || !isCertificate(cert as string)) {
    return `TLS credentials secret "${secret.metadata.name}" does not hold valid PEM certificates`;
  }
  if (!(key as string).includes("PRIVATE KEY-----")) return `TLS credentials secret "${secret.metadata.name}" does not hold a PEM private key`;
  return { ca: ca as string, cert: cert as string, key: key as string };
}

export function linkStatus(
  previous: Condition[] | undefined,
  problem: string | undefined,
  router: OutgoingLinkStatus | undefined,
  now: string,
): LinkStatus {
  let conditions = previous ?? [];
  conditions = setCondition(conditions, ConditionType.Configured, problem ? failed(problem) : ready(), now);
  const operational = problem
    ? pending("Not operational")
    : !router
      ? pending("Not operational")
      : router.state === "up"
        ? ready()
        : router.state === "error"
          ? failed(router.message)
          : pending(router.message === "Connecting" ? "Not operational" : router.message);
  conditions = setCondition(conditions, ConditionType.Operational, operational, now);
  const status: LinkStatus = withAggregate({ conditions }, requiredConditions("Link"), now);
  if (router?.state === "up" && router.remoteSiteId) {
    status.remoteSiteId = router.remoteSiteId;
    status.remoteSiteName = router.remoteSiteName ?? "";
  }
  return status;
}
