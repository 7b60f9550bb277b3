/**
 * The Kubernetes platform: resources on an API server (custom resources of skupper.io/v2alpha1
 * and core Secrets). Only the ResourceStore exists so far; see resource-store.ts.
 */
export {
  contextNamespace,
  GENERATION_ANNOTATION,
  KubernetesResourceStore,
  kubernetesConfig,
  pluralOf,
  SKUPPER_FINALIZER,
  SKUPPER_GROUP,
  SKUPPER_VERSION,
  type KubernetesConfigOptions,
  type KubernetesResourceStoreOptions,
} from "./resource-store.js";
export type { KubeConfig } from "@kubernetes/client-node";
