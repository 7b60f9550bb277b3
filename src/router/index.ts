export { Router } from "./router.js";
export type { DataPlane, DataPlaneFactory } from "./data-plane.js";
export type {
  RouterIdentity,
  RouterOptions,
  RouterStatus,
  OutgoingLinkStatus,
  IncomingLinkStatus,
  ListenerStatus,
  ConnectorStatus,
  LinkServerStatus,
  NetworkSite,
  ObservedState,
  SiteTraffic,
  ServiceTraffic,
  LinkError,
} from "./router.js";
export type { TrafficSummary, TrafficService } from "./traffic.js";
export type { OutgoingLinkConfig, LinkServerConfig, LinkServerLimits, LinkEndpoint, TlsCredentials, LinkState } from "./links.js";
export { DEFAULT_LINK_SERVER_LIMITS } from "./links.js";
export type { ListenerConfig, ConnectorConfig } from "./services.js";
export type { KeyStrategy } from "./strategy.js";
export type { ListenerTls, ConnectorTls } from "./service-tls.js";
export type { LinkStateAdvert } from "./routing.js";
export { LinkStateDatabase } from "./routing.js";
