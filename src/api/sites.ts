/**
 * One site per namespace: which Site runs when a namespace has several. The controller, the CLI
 * and the Kubernetes cluster controller agree on it, so adding a Site never moves a running one.
 */
import { conditionOf, ConditionType } from "./status.js";
import type { Site } from "./types.js";

/** Whether the Site's status says its site ran: only the active Site's `Running` is ever True. */
export function siteRan(site: Site): boolean {
  return conditionOf(site.status?.conditions, ConditionType.Running)?.status === "True";
}

/**
 * The Site that runs among `sites`: the one named `running` (the active one, as far as the caller
 * knows), else one whose status says it ran (so a restart keeps the same one), else the first by
 * name.
 */
export function activeSiteOf<S extends Site>(sites: readonly S[], running?: string): S | undefined {
  const byName = [...sites].sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0));
  return (running !== undefined ? byName.find((s) => s.metadata.name === running) : undefined) ?? byName.find(siteRan) ?? byName[0];
}

/** The status message of a Site that does not run because `active` does. */
export function inactiveSiteMessage(active: string): string {
  // The original's words, then what they mean.
  return `An active site already exists in the namespace (${active}); only one site per namespace runs, so this Site has no effect while Site "${active}" exists`;
}
