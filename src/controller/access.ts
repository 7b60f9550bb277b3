/**
 * Where a site can be reached for links and token redemption: advertised hosts, ports, bind
 * address. Taken from a RouterAccess resource when the user wrote one, else from the Site's
 * settings, else defaults (all non-loopback addresses of this host and its hostname).
 */
import os from "node:os";
import { isIP } from "node:net";
import {
  DEFAULT_GRANT_SERVER_PORT,
  DEFAULT_LINK_PORT,
  ROUTER_GROUP,
  SITE_CA,
  SiteSetting,
  type Endpoint,
  type RouterAccess,
  type Site,
} from "../api/index.js";
import { uniqueHosts } from "../certs/index.js";

export { SiteSetting } from "../api/index.js";

export interface AccessPlan {
  /** Hosts remote sites may use, most preferred first. */
  hosts: string[];
  /** Whether no host was configured, so `hosts` are this machine's addresses. */
  hostsDetected: boolean;
  /** Ports remote sites dial: the bound ones, unless the platform maps them (a NodePort). */
  linkPort: number;
  grantServerPort: number;
  /** What the site process listens on; host undefined = all interfaces. */
  bind: { linkPort: number; grantServerPort: number; host?: string };
  /** Name of the RouterAccess the plan came from (explicit or implicit). */
  routerAccess: string;
  /** Problems with the configuration, one sentence each. */
  problems: string[];
}

export function planAccess(site: Site, routerAccesses: RouterAccess[]): AccessPlan {
  const settings = site.spec.settings ?? {};
  const problems: string[] = [];
  const port = (key: string, fallback: number): number => {
    const raw = settings[key];
    if (raw === undefined || raw === "") return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 1 || value > 65535) {
      problems.push(`setting "${key}" must be a port number between 1 and 65535 (got "${raw}")`);
      return fallback;
    }
    return value;
  };
  let linkPort = port(SiteSetting.linkPort, DEFAULT_LINK_PORT);
  const grantServerPort = port(SiteSetting.grantServerPort, DEFAULT_GRANT_SERVER_PORT);
  let hosts = splitHosts(settings[SiteSetting.advertisedHosts]);
  let bindHost = settings[SiteSetting.bindHost] || undefined;
  let routerAccess = "skupper-router";

  const explicit = routerAccesses.find((ra) => ra.spec.roles.some((r) => r.name === "inter-router"));
  if (explicit) {
    routerAccess = explicit.metadata.name;
    const role = explicit.spec.roles.find((r) => r.name === "inter-router");
    if (role?.port) linkPort = role.port;
    if (explicit.spec.subjectAlternativeNames?.length) hosts = explicit.spec.subjectAlternativeNames;
    if (explicit.spec.bindHost) bindHost = explicit.spec.bindHost;
    const issuer = explicit.spec.issuer;
    const siteIssuer = site.spec.defaultIssuer || SITE_CA;
    if (issuer && issuer !== SITE_CA && issuer !== siteIssuer) {
      problems.push(
        `RouterAccess "${routerAccess}" names issuer "${issuer}", but one CA signs all of this site's link certificates, "${siteIssuer}": set the Site's spec.defaultIssuer to "${issuer}" instead`,
      );
    }
  }
  if (linkPort === grantServerPort) {
    problems.push(`the link port and the grant server port are both ${linkPort}; they must differ`);
  }
  hosts = uniqueHosts(hosts.filter((h) => !isWildcard(h)));
  const hostsDetected = hosts.length === 0;
  if (hostsDetected) hosts = detectHosts();
  const bind = { linkPort, grantServerPort, ...(bindHost ? { host: bindHost } : {}) };
  return { hosts, hostsDetected, linkPort, grantServerPort, bind, routerAccess, problems };
}

/** Non-loopback IPv4 addresses, then the hostname, then IPv6 (not link-local) addresses. */
export function detectHosts(): string[] {
  const v4: string[] = [];
  const v6: string[] = [];
  for (const addresses of Object.values(os.networkInterfaces())) {
    for (const address of addresses ?? []) {
      if (address.internal) continue;
      if (address.family === "IPv4") v4.push(address.address);
      else if (!address.address.toLowerCase().startsWith("fe80:")) v6.push(address.address);
    }
  }
  const hostname = os.hostname();
  const hosts = [...v4, ...(hostname && hostname !== "localhost" ? [hostname] : []), ...v6];
  return hosts.length > 0 ? uniqueHosts(hosts) : ["127.0.0.1"];
}

/** Names in the server certificate: advertised hosts plus the loopback names. */
export function certificateHosts(plan: AccessPlan): string[] {
  return uniqueHosts([...plan.hosts, "localhost", "127.0.0.1", "::1"]);
}

/** Endpoints published in Site and RouterAccess status: one per advertised host. */
export function linkEndpoints(plan: AccessPlan): Endpoint[] {
  return plan.hosts.map((host) => ({ name: "inter-router", host, port: String(plan.linkPort), group: ROUTER_GROUP }));
}

export function formatHostPort(host: string, port: number | string): string {
  return `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
}

export function splitHosts(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((h) => h.trim())
    .filter(Boolean);
}

function isWildcard(host: string): boolean {
  return host === "0.0.0.0" || host === "::" || host === "[::]";
}
