/**
 * The Kubernetes platform as the CLI sees it (`skupper --platform kubernetes`): resources are
 * custom resources on the API server, the site runs in a pod the cluster controller makes for
 * the namespace's Site, and what needs the site's keys is done here with the user's
 * credentials (see site-requests.ts). `--kubeconfig`, `--context` and `-n` work as kubectl's:
 * the namespace defaults to the context's, else `default`.
 */
import { existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { CUSTOM_RESOURCE_KINDS, linkSecretName, type Kind, type NetworkStatus } from "../../api/index.js";
import { InvalidInputError, SkupperError } from "../../common/errors.js";
import type { Platform } from "../types.js";
import { MISSING } from "./api-errors.js";
import { CoreObjects, MANAGED_BY, MANAGED_BY_LABEL } from "./core-objects.js";
import { CREDENTIALS_LABEL, KubernetesCredentialStore } from "./credentials.js";
import { INSTALL_COMMAND } from "./names.js";
import { contextNamespace, KubernetesResourceStore, kubernetesConfig } from "./resource-store.js";
import { KubernetesSiteRunner, type KubernetesSiteRunnerOptions } from "./site-runner.js";
import { KubernetesSiteRequests } from "./site-requests.js";
import { KubernetesSiteState, readObserverCredential } from "./state.js";
import { SiteWorkloads } from "./workloads.js";

export interface KubernetesPlatformOptions {
  /** Default: the namespace of the kubeconfig's context, else `default`. */
  namespace?: string;
  /** Path of a kubeconfig file; default: $KUBECONFIG, ~/.kube/config, or the in-cluster config. */
  kubeconfig?: string;
  /** A context of that kubeconfig; default: its current context. */
  context?: string;
  /** How long waits for the site's pod last (default 120 s), and where they report progress. */
  runner?: Omit<KubernetesSiteRunnerOptions, "contextName">;
}

/** The Kubernetes platform as the CLI sees it. */
export interface KubernetesPlatform extends Platform {
  readonly name: "kubernetes";
  readonly resources: KubernetesResourceStore;
  readonly runner: KubernetesSiteRunner;
  readonly requests: KubernetesSiteRequests;
  readonly credentials: KubernetesCredentialStore;
  readonly state: KubernetesSiteState;
  readonly workloads: SiteWorkloads;
  /** The kubeconfig context in use. */
  readonly contextName: string;
  /** The namespace a command acts on without `-n`: the context's, else `default`. */
  readonly defaultNamespace: string;
}

/** Reads the kubeconfig (throws InvalidInputError, exit code 2, for a missing file or unknown context). */
export function openKubernetesPlatform(options: KubernetesPlatformOptions = {}): KubernetesPlatform {
  if (!options.kubeconfig && !hasDefaultConfig()) {
    // The client would fall back to http://localhost:8080 and fail with a puzzling message.
    const where = process.env.KUBECONFIG ? `KUBECONFIG names no file that exists ("${process.env.KUBECONFIG}")` : "there is no ~/.kube/config and KUBECONFIG is not set";
    throw new InvalidInputError(`No Kubernetes cluster is configured: ${where}. Set KUBECONFIG or pass --kubeconfig`);
  }
  const config = kubernetesConfig({
    ...(options.kubeconfig ? { kubeconfig: options.kubeconfig } : {}),
    ...(options.context ? { context: options.context } : {}),
  });
  const defaultNamespace = contextNamespace(config);
  const resources = new CliResourceStore(config, { namespace: options.namespace ?? defaultNamespace });
  const namespace = resources.namespace;
  const credentials = new KubernetesCredentialStore(config, { namespace });
  const state = new KubernetesSiteState(config, { namespace });
  const workloads = new SiteWorkloads(config, namespace);
  const core = new CoreObjects(config, namespace);
  const contextName = config.getCurrentContext();
  const runner = new KubernetesSiteRunner(workloads, resources, { ...options.runner, contextName });
  const networkStatus = (): Promise<NetworkStatus | undefined> => state.networkStatus();
  return {
    name: "kubernetes",
    namespace,
    resources,
    runner,
    requests: new KubernetesSiteRequests({ namespace, resources, credentials, networkStatus, observerCredential: () => readObserverCredential(core), pod: runner }),
    credentials,
    state,
    workloads,
    contextName,
    defaultNamespace,
    networkStatus,

    /** The Skupper CRDs are installed and the namespace exists. */
    async prepare(): Promise<void> {
      if ((await workloads.namespaceExists()) === false) {
        throw new SkupperError("ERR_NOT_FOUND", `Namespace "${namespace}" does not exist in this cluster; create it with "kubectl create namespace ${namespace}"`);
      }
      await resources.list("Site");
    },

    /**
     * Deletes the site's credentials (Secrets labelled `skupper.io/credentials`), its identity, the
     * view it published and pending redemptions; with `all`, every skupper.io resource of the
     * namespace too, and the Secrets its Links use. Call once the site's pod is gone: resources
     * whose status the site wrote are let go here (their finalizer removed), since no site is
     * left to do it.
     */
    async removeSiteState({ all }: { all: boolean }): Promise<void> {
      if (all) {
        const linkSecrets = new Set((await resources.list("Link")).map(linkSecretName));
        for (const kind of CUSTOM_RESOURCE_KINDS) {
          for (const resource of await resources.list(kind)) await deleteForGood(resources, kind, resource.metadata.name);
        }
        for (const name of linkSecrets) await resources.delete("Secret", name).catch(ignoreInvalidName);
      }
      for (const secret of await core.listSecrets(`${CREDENTIALS_LABEL}=true,${MANAGED_BY_LABEL}=${MANAGED_BY}`)) {
        if (secret.metadata?.name) await core.deleteSecret(secret.metadata.name);
      }
      await state.removeAll();
    },
  };
}

/** Whether the client finds a configuration without --kubeconfig: $KUBECONFIG, ~/.kube/config, or a pod's service account. */
function hasDefaultConfig(): boolean {
  const files = (process.env.KUBECONFIG ?? "").split(path.delimiter).filter(Boolean);
  if (files.length > 0) return files.some((file) => existsSync(file));
  return existsSync(path.join(os.homedir(), ".kube", "config")) || Boolean(process.env.KUBERNETES_SERVICE_HOST);
}

/** Deletes a resource and, if it waits for a site that is gone, lets it go. */
async function deleteForGood(resources: KubernetesResourceStore, kind: Kind, name: string): Promise<void> {
  await resources.delete(kind, name);
  await resources.finalize(kind, name);
}

/** A Link may name a Secret no store accepts (a hand-written one): nothing of that name to delete. */
function ignoreInvalidName(err: unknown): void {
  const code = (err as { code?: string }).code;
  if (code !== "ERR_INVALID_INPUT" && code !== "ERR_VALIDATION") throw err;
}

/**
 * The resource store as the CLI uses it: a missing CRD means Skupper is not installed, and the
 * message names the install bundle (CRDs and controller), not just the CRDs.
 */
export class CliResourceStore extends KubernetesResourceStore {
  override translate(...args: Parameters<KubernetesResourceStore["translate"]>): SkupperError | typeof MISSING {
    const problem = super.translate(...args);
    if (problem !== MISSING && problem.code === "ERR_CRDS_MISSING") return crdsMissing();
    return problem;
  }
}

export function crdsMissing(): SkupperError {
  return new SkupperError("ERR_CRDS_MISSING", `The Skupper custom resources are not installed in this cluster. Install Skupper with "${INSTALL_COMMAND}".`);
}

