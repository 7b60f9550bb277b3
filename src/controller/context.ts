/** What the reconcilers share: the platform's stores, the resource cache, and the active site. */
import type { Kind, Site } from "../api/index.js";
import type { Credentials } from "../certs/index.js";
import type { GrantLedger } from "../grants/index.js";
import type { CredentialStore, ResourceStore, SiteNetwork, SiteState } from "../platform/index.js";
import type { DataPlane, DataPlaneFactory } from "../router/index.js";
import type { AccessPlan } from "./access.js";
import type { ResourceCache } from "./cache.js";
import type { StatusWriter } from "./status-writer.js";
import type { ReconcileResult } from "./work-queue.js";

/** The grant server as the controller drives it. */
export interface GrantServerPort {
  configure(config: { port: number; host?: string; cert: string; key: string }): Promise<void>;
  close(): Promise<void>;
  readonly listening: boolean;
}

export type GrantServerFactory = (ledger: GrantLedger) => GrantServerPort;

/** The site this controller runs (the first Site of the namespace), and how it is reached. */
export interface ActiveSite {
  site?: Site;
  siteId: string;
  router?: DataPlane;
  plan?: AccessPlan;
  siteCa?: Credentials;
  grantCa?: Credentials;
  /** Why the Site's settings cannot be applied (bad ports, edge with link access). */
  configuredProblem?: string;
  /** Why link access is not usable (a port in use). */
  resolvedProblem?: string;
  /** Whether link access is on and configured (so grants get a URL). */
  linkAccess: boolean;
}

/** Keys of the queue that are not resources: the router's change events and the network view. */
export const ROUTER_CHANGED = "$router";
export const NETWORK_STATUS = "$network";

export interface ControllerContext {
  readonly namespace: string;
  readonly version: string;
  readonly store: ResourceStore;
  readonly credentials: CredentialStore;
  readonly state: SiteState;
  /** How the platform exposes the site (Services on Kubernetes); absent on the local platform. */
  readonly network: SiteNetwork | undefined;
  readonly cache: ResourceCache;
  readonly status: StatusWriter;
  readonly active: ActiveSite;
  readonly createDataPlane: DataPlaneFactory;
  enqueue(kind: Kind | typeof ROUTER_CHANGED | typeof NETWORK_STATUS, name?: string): void;
  /** Every resource of these kinds, e.g. when the active site changes. */
  enqueueAll(...kinds: Kind[]): void;
}

export interface Reconciler {
  readonly kind: Kind;
  /** Brings the named resource (present, being deleted, or gone) in line with its spec. */
  reconcile(name: string): Promise<ReconcileResult>;
}

/** A reconcile failure, saying which part of the work failed. */
export class ReconcileError extends Error {
  constructor(
    readonly activity: string,
    cause: unknown,
  ) {
    super(`${activity} failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/** Runs `work`, turning a failure into a ReconcileError that names `activity`. */
export async function step<T>(activity: string, work: () => Promise<T> | T): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof ReconcileError) throw err;
    throw new ReconcileError(activity, err);
  }
}

/** What resources that need a site say while there is none. */
export const NO_ACTIVE_SITE = "No active site";

/**
 * If the resource is gone or being deleted, the controller is done with it: it is finalized
 * (it disappears from the store) and forgotten, and true is returned.
 */
export async function finishIfDeleted(ctx: ControllerContext, kind: Kind, name: string): Promise<boolean> {
  const resource = ctx.cache.get(kind, name);
  if (resource && !resource.metadata.deletionTimestamp) return false;
  if (resource) await ctx.store.finalize(kind, name);
  ctx.cache.set(kind, name, undefined);
  ctx.status.forget(kind, name);
  return true;
}
