/**
 * The Kubernetes platform: resources on an API server (custom resources of skupper.io/v2alpha1
 * and core Secrets), the site's credentials in Secrets and its state in ConfigMaps and Secrets
 * (credentials.ts, state.ts), its Services and pods (site-network.ts). The site process's face
 * is site-host.ts; the CLI's is `openKubernetesPlatform` (platform.ts): the site's pod as its
 * runner (site-runner.ts) and the requests that need the site's keys (site-requests.ts).
 */
export {
  contextNamespace,
  GENERATION_ANNOTATION,
  KubernetesResourceStore,
  kubernetesConfig,
  SKUPPER_FINALIZER,
  SKUPPER_GROUP,
  SKUPPER_VERSION,
  type KubernetesConfigOptions,
  type KubernetesResourceStoreOptions,
} from "./resource-store.js";
export type { KubeConfig } from "@kubernetes/client-node";
export { MANAGED_BY, MANAGED_BY_LABEL, SKUPPER_LABELS } from "./core-objects.js";
export { CREDENTIALS_LABEL, KubernetesCredentialStore, TLS_SECRET_TYPE, type KubernetesCredentialStoreOptions } from "./credentials.js";
export {
  ACCESS_TOKEN_ANNOTATION,
  KubernetesSiteState,
  NETWORK_STATUS_CONFIGMAP,
  NETWORK_STATUS_KEY,
  PENDING_REDEMPTION_LABEL,
  REDEMPTION_KEY,
  redemptionSecretName,
  SITE_ID_KEY,
  SITE_STATE_CONFIGMAP,
  type KubernetesSiteStateOptions,
} from "./state.js";
export { openKubernetesSiteHost, type KubernetesSiteHost, type KubernetesSiteHostOptions } from "./site-host.js";
export { KubernetesSiteNetwork, LISTENER_LABEL, LISTENER_PORT_RANGE, placeListeners, type KubernetesSiteNetworkOptions } from "./site-network.js";
export * from "./names.js";
export { CliResourceStore, crdsMissing, openKubernetesPlatform, type KubernetesPlatform, type KubernetesPlatformOptions } from "./platform.js";
export {
  activeSite,
  DEFAULT_SITE_TIMEOUT_MS,
  KubernetesSiteRunner,
  notRunningMessage,
  type KubernetesSiteRunnerOptions,
} from "./site-runner.js";
export { KubernetesSiteRequests, type KubernetesSiteRequestsParts, type SitePod } from "./site-requests.js";
export { podState, POD_PROBLEMS, ROUTER_POD_SELECTOR, SiteWorkloads, type ControllerState, type PodState } from "./workloads.js";
