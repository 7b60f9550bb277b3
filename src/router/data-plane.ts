/**
 * The router as the controller sees it: configured with plain objects, read through status(),
 * and reporting changes through the `onChange` it was made with. The controller is written
 * against this interface, so its reconcilers can be tested with a fake.
 */
import type { LinkServerConfig, OutgoingLinkConfig } from "./links.js";
import type { LinkServerStatus, ObservedState, RouterIdentity, RouterOptions, RouterStatus } from "./router.js";
import type { ConnectorConfig, ListenerConfig } from "./services.js";

export interface DataPlane {
  readonly identity: RouterIdentity;
  /** Enables (or reconfigures) incoming links; `undefined` disables them and closes incoming links. */
  setLinkServer(config: LinkServerConfig | undefined): Promise<LinkServerStatus>;
  /** The whole set of outgoing links: links not in it are closed, the others started or updated. */
  setOutgoingLinks(configs: OutgoingLinkConfig[]): void;
  setListeners(configs: ListenerConfig[]): void;
  setConnectors(configs: ConnectorConfig[]): void;
  status(): RouterStatus;
  /** The links and streams open now, as event messages (for metrics that start late). */
  observe?(): ObservedState;
  close(): Promise<void>;
}

/** Makes the data plane of a site; `options.onChange` is called (debounced) when status() may have changed. */
export type DataPlaneFactory = (identity: RouterIdentity, options: RouterOptions) => DataPlane;
