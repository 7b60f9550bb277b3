/**
 * PLACEHOLDER, to be replaced: the site itself (controller, router, grant server) on any
 * platform's SiteHost. Only the signature is real here.
 */
import type { SiteHost } from "../platform/types.js";

export async function runSite(_host: SiteHost, _options: { version: string }): Promise<{ stop(): Promise<void> }> {
  throw new Error("not implemented");
}
