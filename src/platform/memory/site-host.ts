import { DEFAULT_NAMESPACE } from "../../api/names.js";
import type { PlatformName, SiteHost, SiteNetwork, SiteRequestHandler } from "../types.js";
import { MemoryCredentialStore } from "./credential-store.js";
import { MemoryResourceStore } from "./resource-store.js";
import { MemorySiteState } from "./site-state.js";

export interface MemorySiteHostOptions {
  namespace?: string;
  /** Default: a random id. */
  siteId?: string;
  /** The platform it stands in for (default "linux"). */
  name?: PlatformName;
  /** How the platform exposes the site (as on Kubernetes); default none (as on the local platform). */
  network?: SiteNetwork;
}

export interface MemorySiteHost extends SiteHost {
  readonly resources: MemoryResourceStore;
  readonly credentials: MemoryCredentialStore;
  readonly state: MemorySiteState;
  /** The handler `serveRequests` was given, until the function it returned is called. */
  requestHandler(): SiteRequestHandler | undefined;
}

/** A SiteHost whose parts live in memory; serving requests only records the handler. */
export function memorySiteHost(options: MemorySiteHostOptions = {}): MemorySiteHost {
  const resources = new MemoryResourceStore(options.namespace ?? DEFAULT_NAMESPACE);
  let handler: SiteRequestHandler | undefined;
  return {
    name: options.name ?? "linux",
    namespace: resources.namespace,
    resources,
    credentials: new MemoryCredentialStore(),
    state: new MemorySiteState(options.siteId),
    ...(options.network ? { network: options.network } : {}),
    requestHandler: () => handler,
    async serveRequests(served) {
      handler = served;
      return async () => {
        if (handler === served) handler = undefined;
      };
    },
  };
}
