/** A site on any platform: the controller on the platform's stores, serving client requests. */
import { SiteController } from "../controller/index.js";
import type { SiteHost } from "../platform/index.js";

export interface RunningSite {
  stop(): Promise<void>;
}

export async function runSite(host: SiteHost, options: { version: string }): Promise<RunningSite> {
  const controller = new SiteController(host, { version: options.version });
  await controller.start();
  const stopServing = await host.serveRequests(controller);
  return {
    async stop() {
      await stopServing();
      await controller.stop();
    },
  };
}
