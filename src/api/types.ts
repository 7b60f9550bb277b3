import type { z } from "zod";
import type {
  AccessGrantSchema,
  AccessTokenSchema,
  AttachedConnectorBindingSchema,
  AttachedConnectorSchema,
  CertificateSchema,
  ConnectorSchema,
  Endpoint,
  LinkSchema,
  ListenerSchema,
  MultiKeyListenerSchema,
  RouterAccessSchema,
  SecretSchema,
  SecuredAccessSchema,
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

export interface MultiKeyListenerStatus extends CommonStatus {
  hasDestination?: boolean;
  /** The routing keys reachable now, in the strategy's terms. */
  strategy?: {
    priority?: { routingKeysReachable?: string[] };
    weighted?: { routingKeysReachable?: Record<string, number> };
  };
}

export interface SecuredAccessStatus extends CommonStatus {
  endpoints?: Endpoint[];
  ca?: string;
}

export interface CertificateStatus extends CommonStatus {
  expiration?: string;
}

export interface SelectedPod {
  name: string;
  ip: string;
}

export interface AttachedConnectorStatus extends CommonStatus {
  selectedPods?: SelectedPod[];
}

export interface AttachedConnectorBindingStatus extends CommonStatus {
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
export type MultiKeyListener = WithStatus<typeof MultiKeyListenerSchema, MultiKeyListenerStatus>;
export type SecuredAccess = WithStatus<typeof SecuredAccessSchema, SecuredAccessStatus>;
export type Certificate = WithStatus<typeof CertificateSchema, CertificateStatus>;
export type AttachedConnector = WithStatus<typeof AttachedConnectorSchema, AttachedConnectorStatus>;
export type AttachedConnectorBinding = WithStatus<typeof AttachedConnectorBindingSchema, AttachedConnectorBindingStatus>;
export type Secret = Omit<z.output<typeof SecretSchema>, never>;

export type Resource =
  | Site
  | Link
  | AccessGrant
  | AccessToken
  | RouterAccess
  | Listener
  | Connector
  | MultiKeyListener
  | SecuredAccess
  | Certificate
  | AttachedConnector
  | AttachedConnectorBinding
  | Secret;

export interface ResourceByKind {
  Site: Site;
  Link: Link;
  AccessGrant: AccessGrant;
  AccessToken: AccessToken;
  RouterAccess: RouterAccess;
  Listener: Listener;
  Connector: Connector;
  MultiKeyListener: MultiKeyListener;
  SecuredAccess: SecuredAccess;
  Certificate: Certificate;
  AttachedConnector: AttachedConnector;
  AttachedConnectorBinding: AttachedConnectorBinding;
  Secret: Secret;
}
