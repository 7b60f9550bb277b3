/** A site on any platform: the controller on the platform's stores, serving client requests. */
import { SiteController } from "../controller/index.js";
import { startEventLog, startSiteMetrics, type SiteMetrics } from "../observability/index.js";
import type { SiteHost } from "../platform/index.js";

export interface RunningSite {
  stop(): Promise<void>;
  /**
   * Starts the site's Prometheus metrics (docs/metrics.md) for whoever serves them (the observer
   * port); call `stop()` on them when they are no longer served. Nothing is measured until then.
   */
  startMetrics(): SiteMetrics;
}

export async function runSite(host: SiteHost, options: { version: string }): Promise<RunningSite> {
  const stopEventLog = startEventLog();
  const controller = new SiteController(host, { version: options.version });
  await controller.start();
  const stopServing = await host.serveRequests(controller);
  return {
    startMetrics: () => startSiteMetrics(controller.dataPlane ?? { identity: { siteId: controller.siteId } }),
    async stop() {
      await stopServing();
      await controller.stop();
      stopEventLog();
    },
  };
}
