/**
 * The platform seam: what the controller and the CLI need from a platform, and nothing more.
 * A platform (local files and processes, Kubernetes, a container engine) implements these
 * interfaces; nothing above them knows paths, files or API servers. See docs/platforms.md.
 */
import type { Kind, Link, Listener, NetworkStatus, Resource, ResourceByKind, Secret, Site } from "../api/index.js";
import type { Credentials } from "../certs/index.js";
import type { GeneratedLinkOptions } from "../grants/index.js";

// ---- resources ----

export type WatchEventType = "added" | "modified" | "deleted";

export interface WatchEvent {
  type: WatchEventType;
  kind: Kind;
  name: string;
}

/** Stops a watch. */
export type Unwatch = () => void;

/** The status part of a resource of kind K. */
export type StatusOf<K extends Kind> = ResourceByKind[K] extends { status?: infer S } ? S : never;

/**
 * The resources of one namespace, with the semantics of a Kubernetes API server:
 *
 * - Every resource returned carries `metadata.resourceVersion` (opaque; it changes whenever
 *   the desired state or metadata changes, and may change with a status write) and `metadata.generation` (1 on create, advanced by the
 *   store, never by a client, each time the desired state, everything but metadata and
 *   status, changes). `metadata.uid` and `metadata.creationTimestamp` are assigned by the
 *   store, at the latest by the first status write.
 * - Desired state and status are written apart: `create`/`update` ignore `status`;
 *   `updateStatus` changes only status.
 * - `update` with `metadata.resourceVersion` set fails with ConflictError unless it is the
 *   stored one (optimistic concurrency); without it, the update is unconditional.
 * - A store may hold deleted resources: one whose status was written then stays visible, with
 *   `metadata.deletionTimestamp` set, until the controller calls `finalize`, so a client can
 *   wait until the controller has acted on a delete (the local and memory stores do). A store
 *   that does not (Kubernetes: a finalizer would block deleting a namespace) deletes at once,
 *   and `finalize` of a resource not held does nothing. Whether `finalize` is reported by
 *   `watch` is the store's choice.
 * - `watch` reports an `added` event for every resource that exists when the watch starts,
 *   then one event per change of desired state; status writes need not be reported.
 *   Consumers must treat events as hints and read the current state (reconcile).
 */
export interface ResourceStore {
  readonly namespace: string;
  list<K extends Kind>(kind: K): Promise<Array<ResourceByKind[K]>>;
  get<K extends Kind>(kind: K, name: string): Promise<ResourceByKind[K] | undefined>;
  /** Throws AlreadyExistsError if a resource of that kind and name exists. */
  create<R extends Resource>(resource: R): Promise<R>;
  /** Throws NotFoundError if there is none, ConflictError on a stale resourceVersion. */
  update<R extends Resource>(resource: R): Promise<R>;
  /** Replaces the status; returns the resource as stored, or undefined if it no longer exists. */
  updateStatus<K extends Kind>(kind: K, name: string, status: StatusOf<K>): Promise<ResourceByKind[K] | undefined>;
  /** Returns false if there was none. */
  delete(kind: Kind, name: string): Promise<boolean>;
  /** The controller is done with a deleted resource: it disappears for good. */
  finalize(kind: Kind, name: string): Promise<void>;
  watch(onEvent: (event: WatchEvent) => void): Unwatch;
}

// ---- credentials ----

/**
 * Named TLS credentials (a CA, or a certificate with its key and the CA that issued it), kept
 * where the platform keeps secrets: files of mode 0600, or Kubernetes Secrets. The rules for
 * when to create or renew them are not the store's (see `ensureCA`/`ensureLeaf` in certs/).
 */
export interface CredentialStore {
  load(name: string): Promise<Credentials | undefined>;
  save(name: string, credentials: Credentials): Promise<void>;
  remove(name: string): Promise<void>;
}

// ---- site state ----

export interface SiteIdentity {
  siteId: string;
}

/** Credentials a redemption yielded, kept until they are written as resources. */
export interface PendingCredentials {
  secret: Secret;
  links: Link[];
}

/**
 * What the site keeps besides resources and credentials: its identity, the view of the
 * network it publishes for clients, and the credentials of redemptions not yet written.
 */
export interface SiteState {
  /** The site's identity, created on first use and the same on every later start. */
  identity(): Promise<SiteIdentity>;
  /** Publishes the view clients read; the platform may add what only it knows (input problems). */
  publishNetworkStatus(status: NetworkStatus): Promise<void>;
  pendingRedemptions(): Promise<Map<string, PendingCredentials>>;
  /** Durable when it resolves. */
  savePendingRedemption(token: string, credentials: PendingCredentials): Promise<void>;
  removePendingRedemption(token: string): Promise<void>;
  /**
   * Ties the site's keys and state to its Site, where the platform can (Kubernetes owner
   * references): deleting the Site then removes them. Absent where they outlive it.
   */
  belongTo?(site: Site): Promise<void>;
  /**
   * The credential the observer port (console, metrics) requires when it is bound to a
   * non-loopback address: random, made on first use, kept as a secret (mode 0600) and the same
   * on every later start. Absent where the platform keeps none: there only loopback is served.
   */
  observerCredential?(): Promise<string>;
}

// ---- requests a client makes of the site process ----

/** What a client may choose of a generated link (`skupper link generate`); defaults in grants/. */
export type LinkBundleRequest = GeneratedLinkOptions;

/**
 * Work that needs the site's keys, done by the site process when a client asks: a client never
 * reads or changes the site's credentials itself.
 */
export interface SiteRequestHandler {
  /** A Link and Secret (a client certificate from the site CA) another site can apply. */
  generateLink(request: LinkBundleRequest): Promise<{ link: Link; secret: Secret }>;
  /**
   * Replaces the site CA and the certificates it issued, and deletes every AccessGrant: every
   * incoming link and every outstanding token stops working. Outgoing links are kept.
   */
  revokeAccess(): Promise<void>;
  /**
   * Where the site's observer port (web console, metrics) is, and its credential when it needs
   * one (`skupper network console`). Absent where the platform's clients cannot ask the site.
   */
  observerAccess?(): Promise<ObserverAccess>;
}

/** The observer port as `skupper network console` shows it. */
export interface ObserverAccess {
  state: "off" | "listening" | "error";
  /** A sentence: where it listens, or why it is off or failed. */
  message: string;
  url?: string;
  /** What to run first for `url` to answer here, when the port is not reachable as it is (a pod's). */
  reach?: string;
  credentialRequired: boolean;
  credential?: string;
}

// ---- how the site is reached, and reaches services, on its platform ----

/** Where remote sites reach the site's link and grant servers, as the platform exposes them. */
export type LinkAccessExposure =
  | { hosts: string[]; linkPort: number; grantServerPort: number }
  /** Not reachable yet (a load balancer without an address): why, and when to look again. */
  | { pending: string; retryAfterMs: number };

/** The ports the site process listens on for link access. */
export interface LinkAccessPorts {
  linkPort: number;
  grantServerPort: number;
}

/** A listener as the platform publishes it: the port the site process binds, and any problem. */
export interface PublishedListener {
  /** Address and port the site process listens on for this listener. */
  host: string;
  port: number;
}

/** Pods (or other backends) chosen by a connector's selector, followed as they change. */
export interface SelectorWatch {
  /** Addresses of the backends now: ready ones, or every running one with `includeNotReady`. */
  addresses(includeNotReady: boolean): string[];
  /** Why no address can be known (the selector is invalid, the list was refused), if so. */
  readonly problem: string | undefined;
  close(): void;
}

/**
 * What a platform changes in how a site is reached and how it reaches services. Without it
 * (the local platform) a site binds its link and grant servers and its listeners on the host and
 * advertises the host's addresses. On Kubernetes, remote sites reach the site through a
 * Service, a listener is a Service in front of the site's pods, and a connector may choose pods.
 */
export interface SiteNetwork {
  /** Exposes link access (a Service of the type `site.spec.linkAccess` asks for); says where it is reached. */
  exposeLinkAccess(site: Site, ports: LinkAccessPorts): Promise<LinkAccessExposure>;
  /** Removes what exposeLinkAccess made (link access turned off, no site). */
  withdrawLinkAccess(): Promise<void>;
  /**
   * Makes every listener reachable (one Service each) and removes what belongs to listeners no
   * longer given; returns, per listener name, where to listen, or a problem sentence.
   */
  publishListeners(site: Site, listeners: Listener[]): Promise<Map<string, PublishedListener | { problem: string }>>;
  /** Follows the backends a selector chooses; `onChange` is called when they may have changed. */
  watchSelector(selector: string, onChange: () => void): SelectorWatch;
  /** Ends every watch. */
  close(): Promise<void>;
}

// ---- running the site ----

export interface SiteRunnerStatus {
  running: boolean;
  /** What runs the site: a process id, a container or pod name. */
  id?: string;
}

/** Starts and stops what serves a site: a local process, a container, a pod. */
export interface SiteRunner {
  status(): Promise<SiteRunnerStatus>;
  /** Starts it unless it runs; resolves once it is up. `started` is false if it already ran. */
  start(): Promise<{ id: string; started: boolean }>;
  /** Stops it if it runs; returns what was stopped. */
  stop(): Promise<{ id?: string }>;
  /** Where to look when something goes wrong: files, log, for `system status` and errors. */
  describe(): { location: string; log: string };
}

// ---- the two faces of a platform ----

export type PlatformName = "linux" | "kubernetes" | "podman" | "docker";

/** The platform as a client (the CLI) sees it. */
export interface Platform {
  readonly name: PlatformName;
  readonly namespace: string;
  readonly resources: ResourceStore;
  readonly runner: SiteRunner;
  /** Requests served by the running site process; fail with SiteNotRunningError when it is not. */
  readonly requests: SiteRequestHandler;
  /** The view the site process published, or undefined if there is none (yet). */
  networkStatus(): Promise<NetworkStatus | undefined>;
  /** Creates whatever the namespace needs before resources can be stored (directories). */
  prepare(): Promise<void>;
  /**
   * Removes the site's state and credentials (its identity, CAs, status); with `all`, every
   * resource of the namespace too. The runner must be stopped first.
   */
  removeSiteState(options: { all: boolean }): Promise<void>;
}

/** The platform as the site process sees it. */
export interface SiteHost {
  readonly name: PlatformName;
  readonly namespace: string;
  readonly resources: ResourceStore;
  readonly credentials: CredentialStore;
  readonly state: SiteState;
  /** How the platform exposes the site and chooses backends; absent on the local platform. */
  readonly network?: SiteNetwork;
  /** Serves client requests (e.g. on a local socket) until the returned function is called. */
  serveRequests(handler: SiteRequestHandler): Promise<() => Promise<void>>;
}
