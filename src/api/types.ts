import type { z } from "zod";
import type {
  AccessGrantSchema,
  AccessTokenSchema,
  ConnectorSchema,
  Endpoint,
  LinkSchema,
  ListenerSchema,
  RouterAccessSchema,
  SecretSchema,
  SiteSchema,
} from "./schemas.js";

export type StatusType = "Pending" | "Ready" | "Error";

export interface Condition {
  type: string;
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

export interface CommonStatus {
  /** The `metadata.generation` the controller acted on: status is current when they are equal. */
  observedGeneration?: number;
  status?: StatusType;
  message?: string;
  conditions?: Condition[];
}

export interface SiteRecordLink {
  name: string;
  remoteSiteId: string;
  remoteSiteName: string;
  operational: boolean;
}

export interface SiteRecord {
  id: string;
  name: string;
  namespace?: string;
  platform?: string;
  version?: string;
  links?: SiteRecordLink[];
  services?: Array<{ routingKey: string; listeners?: string[]; connectors?: string[] }>;
}

export interface SiteStatus extends CommonStatus {
  endpoints?: Endpoint[];
  sitesInNetwork?: number;
  network?: SiteRecord[];
  defaultIssuer?: string;
  controller?: { name: string; namespace: string; version: string };
}

export interface LinkStatus extends CommonStatus {
  remoteSiteId?: string;
  remoteSiteName?: string;
}

export interface AccessGrantStatus extends CommonStatus {
  url?: string;
  code?: string;
  ca?: string;
  redemptions?: number;
  expirationTime?: string;
}

export interface AccessTokenStatus extends CommonStatus {
  redeemed?: boolean;
}

export interface RouterAccessStatus extends CommonStatus {
  endpoints?: Endpoint[];
}

export interface ListenerStatus extends CommonStatus {
  hasMatchingConnector?: boolean;
}

export interface ConnectorStatus extends CommonStatus {
  hasMatchingListener?: boolean;
}

type WithStatus<S extends z.ZodType, T> = Omit<z.output<S>, "status"> & { status?: T };

export type Site = WithStatus<typeof SiteSchema, SiteStatus>;
export type Link = WithStatus<typeof LinkSchema, LinkStatus>;
export type AccessGrant = WithStatus<typeof AccessGrantSchema, AccessGrantStatus>;
export type AccessToken = WithStatus<typeof AccessTokenSchema, AccessTokenStatus>;
export type RouterAccess = WithStatus<typeof RouterAccessSchema, RouterAccessStatus>;
export type Listener = WithStatus<typeof ListenerSchema, ListenerStatus>;
export type Connector = WithStatus<typeof ConnectorSchema, ConnectorStatus>;
export type Secret = Omit<z.output<typeof SecretSchema>, never>;

export type Resource = Site | Link | AccessGrant | AccessToken | RouterAccess | Listener | Connector | Secret;

export interface ResourceByKind {
  Site: Site;
  Link: Link;
  AccessGrant: AccessGrant;
  AccessToken: AccessToken;
  RouterAccess: RouterAccess;
  Listener: Listener;
  Connector: Connector;
  Secret: Secret;
}
