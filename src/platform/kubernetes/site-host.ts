/**
 * The Kubernetes platform as the site process sees it: the namespace's custom resources and
 * Secrets, its keys in Secrets, its state in ConfigMaps, and its Services and pods. In the
 * site's pod the configuration is the pod's ServiceAccount; out of the cluster (development,
 * tests) a kubeconfig.
 */
import { readFileSync } from "node:fs";
import type { SiteHost, SiteRequestHandler } from "../types.js";
import { KubernetesCredentialStore } from "./credentials.js";
import { contextNamespace, KubernetesResourceStore, kubernetesConfig, type KubernetesConfigOptions } from "./resource-store.js";
import { KubernetesSiteNetwork } from "./site-network.js";
import { KubernetesSiteState } from "./state.js";

/** Where a pod finds its own namespace. */
const POD_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

export interface KubernetesSiteHostOptions extends KubernetesConfigOptions {
  /** Default: $SKUPPER_NAMESPACE, the pod's namespace, or the kubeconfig context's. */
  namespace?: string;
  /** The node's address for NodePort link access; default $SKUPPER_NODE_IP. */
  nodeAddress?: string;
}

export interface KubernetesSiteHost extends SiteHost {
  readonly name: "kubernetes";
  readonly resources: KubernetesResourceStore;
  readonly network: KubernetesSiteNetwork;
}

export function openKubernetesSiteHost(options: KubernetesSiteHostOptions = {}): KubernetesSiteHost {
  const config = kubernetesConfig(options);
  const namespace = options.namespace ?? (process.env.SKUPPER_NAMESPACE || podNamespace() || contextNamespace(config));
  const resources = new KubernetesResourceStore(config, { namespace });
  const nodeAddress = options.nodeAddress ?? process.env.SKUPPER_NODE_IP;
  return {
    name: "kubernetes",
    namespace: resources.namespace,
    resources,
    credentials: new KubernetesCredentialStore(config, { namespace: resources.namespace }),
    state: new KubernetesSiteState(config, { namespace: resources.namespace }),
    network: new KubernetesSiteNetwork(config, resources.namespace, nodeAddress ? { nodeAddress } : {}),
    // Clients act through the API server with their own permissions (see platform.ts): the site
    // process serves no requests of its own, and opens no port for them.
    serveRequests: async (_handler: SiteRequestHandler) => async () => undefined,
  };
}

function podNamespace(): string | undefined {
  try {
    return readFileSync(POD_NAMESPACE_FILE, "utf8").trim() || undefined;
  } catch {
    return undefined;
  }
}
