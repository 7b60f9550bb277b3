/** A site on any platform: the controller on the platform's stores, serving client requests. */
import { observerConfig, ObserverServer, type MetricsSource } from "../console/index.js";
import { SiteController } from "../controller/index.js";
import type { SiteHost, SiteRequestHandler } from "../platform/index.js";

export interface RunningSite {
  stop(): Promise<void>;
}

export interface RunSiteOptions {
  version: string;
  /**
   * Prometheus metrics for `/metrics` on the observer port. This is where the metrics collector
   * (src/observability) plugs in; without it `/metrics` answers 404 "metrics not enabled".
   */
  metrics?: MetricsSource;
}

export async function runSite(host: SiteHost, options: RunSiteOptions): Promise<RunningSite> {
  let controller: SiteController | undefined;
  const observer = new ObserverServer({
    view: () => (controller as SiteController).networkStatus(),
    credential: async () => host.state.observerCredential?.(),
    ...(options.metrics ? { metrics: options.metrics } : {}),
  });
  // The Site's settings reach the observer port with every publication of the view (each Site
  // reconcile makes one): it starts, stops or rebinds live; an unchanged setting changes nothing.
  const onPublished = () => {
    void observer.configure(observerConfig(controller?.activeSite()?.spec.settings));
    observer.changed();
  };
  controller = new SiteController(host, { version: options.version, onPublished });
  await controller.start();
  const site = controller;
  const handler: SiteRequestHandler = {
    generateLink: (request) => site.generateLink(request),
    revokeAccess: () => site.revokeAccess(),
    observerAccess: async () => {
      const state = observer.state();
      if (state.credentialRequired && state.state === "listening") {
        const credential = await host.state.observerCredential?.();
        if (credential) return { ...state, credential };
      }
      return state;
    },
  };
  const stopServing = await host.serveRequests(handler);
  return {
    async stop() {
      await stopServing();
      await observer.close();
      await site.stop();
    },
  };
}
