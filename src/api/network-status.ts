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

/** The last failure of a link, and when it happened (epoch ms). */
export interface NetworkLinkError {
  message: string;
  at: number;
}

/**
 * Counters a link adds (all optional: sites before them do not write them). Bytes are the link's
 * own, framing included, since the site process started (outgoing: over all its connections).
 */
export interface NetworkLinkTraffic {
  bytesIn?: number;
  bytesOut?: number;
  /** Times the link came up again after it had been up. */
  reconnects?: number;
}

/**
 * Counters of a listener or connector since the site process started. Bytes are the application's,
 * counted on the network side: a listener's `bytesOut` and a connector's `bytesIn` are what
 * clients sent to the service (docs/metrics.md).
 */
export interface NetworkServiceTraffic {
  bytesIn?: number;
  bytesOut?: number;
  opened?: number;
  /** Refused before the far end accepted (no connector, backend down, …). */
  refused?: number;
  /** Aborted after being accepted. */
  reset?: number;
}

/** One account of a site's traffic summary: its connections for one routing key with one peer site. */
export interface NetworkTrafficService {
  routingKey: string;
  /** `listener`: the site's clients use the service; `connector`: the site serves it. */
  role: "listener" | "connector";
  /** Site id at the other end (connector's site for a listener, listener's site for a connector). */
  peer: string;
  opened: number;
  active: number;
  bytesIn: number;
  bytesOut: number;
}

/** A site's traffic summary, as it flooded the network (docs/link-protocol.md §12). */
export interface NetworkSiteTraffic {
  /** When that site made it (its clock, epoch ms). */
  at: number;
  services: NetworkTrafficService[];
  /** Accounts left out to keep the summary small. */
  dropped: { entries: number; opened: number; bytes: number };
}

export interface NetworkOutgoingLink extends NetworkLinkTraffic {
  name: string;
  state: "connecting" | "up" | "error" | (string & {});
  message: string;
  cost: number;
  remoteSiteId?: string;
  remoteSiteName?: string;
  rttMs?: number;
  since: number;
  lastError?: NetworkLinkError;
}

export interface NetworkIncomingLink extends NetworkLinkTraffic {
  name: string;
  remoteSiteId: string;
  remoteSiteName: string;
  cost: number;
  rttMs?: number;
  since: number;
  remoteAddress?: string;
}

export interface NetworkListener extends NetworkServiceTraffic {
  name: string;
  routingKey: string;
  host: string;
  port: number;
  state: string;
  message: string;
  hasMatchingConnector: boolean;
  connections: number;
}

export interface NetworkConnector extends NetworkServiceTraffic {
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
  /** Neighbour site id → measured round-trip time in ms (from the site's traffic summary). */
  rtt?: Record<string, number>;
  /** Routing key → number of connectors at that site. */
  connectors: Record<string, number>;
  /** Routing key → number of listeners at that site. */
  listeners: Record<string, number>;
  reachable: boolean;
  /** Path cost from this site; 0 for this site. */
  cost?: number;
  /** The site's last traffic summary that reached this site. */
  traffic?: NetworkSiteTraffic;
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
