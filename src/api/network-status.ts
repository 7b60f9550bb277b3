/**
 * The site's view of the network: what a site process publishes for the CLI (`link status`,
 * `network status`, `system status`, `token redeem`). A contract between the site process and
 * the CLI of possibly another version, so it is versioned: a reader accepts the major version
 * it knows (and a view without `schema`, which is what sites before the versioned view wrote)
 * and ignores fields it does not know.
 */

export const NETWORK_STATUS_SCHEMA = "skupper.io/network-status/v1";

export interface NetworkLinkServer {
  state: "disabled" | "listening" | "error";
  message: string;
}

export interface NetworkOutgoingLink {
  name: string;
  state: "connecting" | "up" | "error" | (string & {});
  message: string;
  cost: number;
  remoteSiteId?: string;
  remoteSiteName?: string;
  rttMs?: number;
  since: number;
}

export interface NetworkIncomingLink {
  name: string;
  remoteSiteId: string;
  remoteSiteName: string;
  cost: number;
  rttMs?: number;
  since: number;
  remoteAddress?: string;
}

export interface NetworkListener {
  name: string;
  routingKey: string;
  host: string;
  port: number;
  state: string;
  message: string;
  hasMatchingConnector: boolean;
  connections: number;
}

export interface NetworkConnector {
  name: string;
  routingKey: string;
  host: string;
  port: number;
  hasMatchingListener: boolean;
  connections: number;
}

/** One site as the link-state database knows it. */
export interface NetworkSite {
  id: string;
  name: string;
  namespace?: string;
  version?: string;
  /** Neighbour site id → link cost. */
  links: Record<string, number>;
  /** Neighbour site id → measured round-trip time in ms. */
  rtt?: Record<string, number>;
  /** Routing key → number of connectors at that site. */
  connectors: Record<string, number>;
  /** Routing key → number of listeners at that site. */
  listeners: Record<string, number>;
  reachable: boolean;
  /** Path cost from this site; 0 for this site. */
  cost?: number;
}

/** The router's part of the view. */
export interface NetworkRouterView {
  siteId: string;
  siteName: string;
  linkServer: NetworkLinkServer;
  outgoing: NetworkOutgoingLink[];
  incoming: NetworkIncomingLink[];
  listeners: NetworkListener[];
  connectors: NetworkConnector[];
  network: NetworkSite[];
}

export interface NetworkStatus {
  schema: typeof NETWORK_STATUS_SCHEMA;
  siteId: string;
  siteName: string;
  namespace: string;
  /** Software version of the site process. */
  version: string;
  linkAccess?: {
    hosts: string[];
    linkPort: number;
    grantServerPort: number;
    linkServer: string;
    grantServer: string;
  };
  /**
   * The certificate (public, PEM) of the CA that this site's tokens pin, so a client can tell a
   * token this site issued without reading the site's files.
   */
  grantServerCa?: string;
  router?: NetworkRouterView;
  /** Resources the site could not use (files that do not parse, on the local platform). */
  inputProblems: string[];
}

/**
 * The view in `value` if it is one this version understands, else undefined: not an object,
 * another major version, or missing the fields every reader relies on.
 */
export function readNetworkStatus(value: unknown): NetworkStatus | undefined {
  if (!value || typeof value !== "object" || Array.isArray(value)) return undefined;
  const view = value as Partial<NetworkStatus> & { schema?: unknown };
  if (view.schema !== undefined && view.schema !== NETWORK_STATUS_SCHEMA) return undefined;
  if (typeof view.siteId !== "string" || typeof view.siteName !== "string") return undefined;
  const router = view.router as Partial<NetworkRouterView> | undefined;
  if (router !== undefined && !(Array.isArray(router.outgoing) && Array.isArray(router.incoming) && Array.isArray(router.network))) return undefined;
  return {
    ...(view as NetworkStatus),
    schema: NETWORK_STATUS_SCHEMA,
    namespace: typeof view.namespace === "string" ? view.namespace : "",
    version: typeof view.version === "string" ? view.version : "",
    inputProblems: Array.isArray(view.inputProblems) ? view.inputProblems.filter((p): p is string => typeof p === "string") : [],
  };
}
