/** A site on any platform: the controller on the platform's stores, serving client requests. */
import { observerConfig, ObserverServer } from "../console/index.js";
import { SiteController } from "../controller/index.js";
import { startEventLog, startSiteMetrics, type SiteMetrics } from "../observability/index.js";
import type { SiteHost, SiteRequestHandler } from "../platform/index.js";

export interface RunningSite {
  stop(): Promise<void>;
}

export interface RunSiteOptions {
  version: string;
}

export async function runSite(host: SiteHost, options: RunSiteOptions): Promise<RunningSite> {
  const stopEventLog = startEventLog();
  let controller: SiteController | undefined;
  // Metrics are measured only while the observer port serves them: nothing subscribes otherwise.
  let metrics: SiteMetrics | undefined;
  const startMetrics = (): SiteMetrics => {
    const site = controller as SiteController;
    return startSiteMetrics(site.dataPlane ?? { identity: { siteId: site.siteId } });
  };
  const observer = new ObserverServer({
    view: () => (controller as SiteController).networkStatus(),
    credential: async () => host.state.observerCredential?.(),
    metrics: () => (metrics ??= startMetrics()).metrics(),
  });
  // The Site's settings reach the observer port with every publication of the view (each Site
  // reconcile makes one): it starts, stops or rebinds live; an unchanged setting changes nothing.
  const onPublished = () => {
    const config = observerConfig(controller?.activeSite()?.spec.settings);
    if (config.enabled) metrics ??= startMetrics();
    else if (metrics) {
      metrics.stop();
      metrics = undefined;
    }
    void observer.configure(config);
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
      metrics?.stop();
      await site.stop();
      stopEventLog();
    },
  };
}
