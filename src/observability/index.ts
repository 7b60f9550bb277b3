/** Observability: the events the data plane and grant server publish, and the metrics built on them. */
export * from "./events.js";
export { SiteMetrics, startSiteMetrics, type ObservableDataPlane } from "./metrics.js";
export { startEventLog } from "./log.js";
