/** The observer port: the web console and Prometheus metrics served by the site process. */
export { ObserverServer, COOKIE_NAME, MAX_BODY_BYTES, defaultAssetsDir } from "./server.js";
export type { MetricsSource, ObserverOptions, ObserverSource, ObserverState } from "./server.js";
export {
  DEFAULT_OBSERVER_HOST,
  isLoopback,
  ObserverSetting,
  observerConfig,
  observerHostProblem,
  observerPortProblem,
  observerUrl,
  type ObserverConfig,
} from "../api/index.js";
