/**
 * The API calls of the cluster controller, with failures as sentences (a missing permission names
 * the verb and resource, missing CRDs say how to install them): Sites to read, and per namespace
 * the ServiceAccount, RoleBinding and Deployment to read and write; list and watch sources for
 * the informers, in all namespaces or in one.
 */
import {
  ApiException,
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  RbacAuthorizationV1Api,
  Watch,
  type KubeConfig,
  type V1Deployment,
  type V1RoleBinding,
  type V1ServiceAccount,
} from "@kubernetes/client-node";
import { pluralName } from "../api/index.js";
import { AlreadyExistsError, ConflictError, SkupperError } from "../common/errors.js";
import { MISSING, translateApiError } from "../platform/kubernetes/api-errors.js";
import { MANAGED_BY, MANAGED_BY_LABEL } from "../platform/kubernetes/core-objects.js";
import { SKUPPER_GROUP, SKUPPER_VERSION } from "../platform/kubernetes/resource-store.js";
import type { ListWatchSource, Listing } from "./informer.js";
import type { SiteObject } from "./objects.js";

const SITES = pluralName("Site");
/** The objects the controller makes carry this label; the informers watch only those. */
export const MANAGED_SELECTOR = `${MANAGED_BY_LABEL}=${MANAGED_BY}`;

/** The types the controller reads and writes in a site's namespace. */
export type OwnedType = "ServiceAccount" | "RoleBinding" | "Deployment";

const RESOURCE: Record<OwnedType | "Site", string> = {
  Site: `${SITES}.${SKUPPER_GROUP}`,
  ServiceAccount: "serviceaccounts",
  RoleBinding: "rolebindings.rbac.authorization.k8s.io",
  Deployment: "deployments.apps",
};

export interface ClusterApiOptions {
  /** Asks the API server to end each watch after this many seconds (it is then resumed). */
  watchTimeoutSeconds?: number;
}

export class ClusterApi {
  private readonly custom: CustomObjectsApi;
  private readonly core: CoreV1Api;
  private readonly apps: AppsV1Api;
  private readonly rbac: RbacAuthorizationV1Api;

  constructor(
    readonly config: KubeConfig,
    private readonly options: ClusterApiOptions = {},
  ) {
    this.custom = config.makeApiClient(CustomObjectsApi);
    this.core = config.makeApiClient(CoreV1Api);
    this.apps = config.makeApiClient(AppsV1Api);
    this.rbac = config.makeApiClient(RbacAuthorizationV1Api);
  }

  // ---- Sites ----

  /** The Sites of a namespace, by name. */
  async listSites(namespace: string): Promise<SiteObject[]> {
    const list = (await this.call("list", "Site", namespace, undefined, () =>
      this.custom.listNamespacedCustomObject({ group: SKUPPER_GROUP, version: SKUPPER_VERSION, namespace, plural: SITES }),
    )) as { items?: SiteObject[] };
    return [...(list.items ?? [])].sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0));
  }

  // ---- the objects a site needs ----

  getServiceAccount(namespace: string, name: string): Promise<V1ServiceAccount | undefined> {
    return this.optional("get", "ServiceAccount", namespace, name, () => this.core.readNamespacedServiceAccount({ name, namespace }));
  }

  createServiceAccount(namespace: string, body: V1ServiceAccount): Promise<V1ServiceAccount> {
    return this.call("create", "ServiceAccount", namespace, body.metadata?.name, () => this.core.createNamespacedServiceAccount({ namespace, body }));
  }

  replaceServiceAccount(namespace: string, body: V1ServiceAccount): Promise<V1ServiceAccount> {
    const name = body.metadata?.name ?? "";
    return this.call("update", "ServiceAccount", namespace, name, () => this.core.replaceNamespacedServiceAccount({ name, namespace, body }));
  }

  deleteServiceAccount(namespace: string, name: string): Promise<boolean> {
    return this.deleted("ServiceAccount", namespace, name, () => this.core.deleteNamespacedServiceAccount({ name, namespace }));
  }

  getRoleBinding(namespace: string, name: string): Promise<V1RoleBinding | undefined> {
    return this.optional("get", "RoleBinding", namespace, name, () => this.rbac.readNamespacedRoleBinding({ name, namespace }));
  }

  createRoleBinding(namespace: string, body: V1RoleBinding): Promise<V1RoleBinding> {
    return this.call("create", "RoleBinding", namespace, body.metadata?.name, () => this.rbac.createNamespacedRoleBinding({ namespace, body }));
  }

  replaceRoleBinding(namespace: string, body: V1RoleBinding): Promise<V1RoleBinding> {
    const name = body.metadata?.name ?? "";
    return this.call("update", "RoleBinding", namespace, name, () => this.rbac.replaceNamespacedRoleBinding({ name, namespace, body }));
  }

  deleteRoleBinding(namespace: string, name: string): Promise<boolean> {
    return this.deleted("RoleBinding", namespace, name, () => this.rbac.deleteNamespacedRoleBinding({ name, namespace }));
  }

  getDeployment(namespace: string, name: string): Promise<V1Deployment | undefined> {
    return this.optional("get", "Deployment", namespace, name, () => this.apps.readNamespacedDeployment({ name, namespace }));
  }

  createDeployment(namespace: string, body: V1Deployment): Promise<V1Deployment> {
    return this.call("create", "Deployment", namespace, body.metadata?.name, () => this.apps.createNamespacedDeployment({ namespace, body }));
  }

  replaceDeployment(namespace: string, body: V1Deployment): Promise<V1Deployment> {
    const name = body.metadata?.name ?? "";
    return this.call("update", "Deployment", namespace, name, () => this.apps.replaceNamespacedDeployment({ name, namespace, body }));
  }

  /** Deletes in the foreground: the Deployment stays (being deleted) until its pods are gone. */
  deleteDeployment(namespace: string, name: string): Promise<boolean> {
    return this.deleted("Deployment", namespace, name, () => this.apps.deleteNamespacedDeployment({ name, namespace, propagationPolicy: "Foreground" }));
  }

  // ---- list and watch, for the informers ----

  /** Sites in one namespace, or in all when `namespace` is undefined. */
  siteSource(namespace: string | undefined): ListWatchSource {
    const path = { group: SKUPPER_GROUP, version: SKUPPER_VERSION, plural: SITES };
    return this.source("Site", namespace, undefined, () =>
      namespace === undefined ? this.custom.listClusterCustomObject(path) : this.custom.listNamespacedCustomObject({ ...path, namespace }),
    );
  }

  /** The objects of a type that carry Skupper's label, in one namespace or in all. */
  ownedSource(type: OwnedType, namespace: string | undefined): ListWatchSource {
    const labelSelector = MANAGED_SELECTOR;
    const list = (): Promise<unknown> => {
      switch (type) {
        case "ServiceAccount":
          return namespace === undefined ? this.core.listServiceAccountForAllNamespaces({ labelSelector }) : this.core.listNamespacedServiceAccount({ namespace, labelSelector });
        case "RoleBinding":
          return namespace === undefined ? this.rbac.listRoleBindingForAllNamespaces({ labelSelector }) : this.rbac.listNamespacedRoleBinding({ namespace, labelSelector });
        case "Deployment":
          return namespace === undefined ? this.apps.listDeploymentForAllNamespaces({ labelSelector }) : this.apps.listNamespacedDeployment({ namespace, labelSelector });
      }
    };
    return this.source(type, namespace, labelSelector, list);
  }

  private source(type: OwnedType | "Site", namespace: string | undefined, labelSelector: string | undefined, list: () => Promise<unknown>): ListWatchSource {
    const where = namespace === undefined ? "in all namespaces" : `in namespace "${namespace}"`;
    const what = `${type}s${labelSelector ? ` labelled ${labelSelector}` : ""} ${where}`;
    const path = watchPath(type, namespace);
    const query: Record<string, string | number | boolean> = { allowWatchBookmarks: true };
    if (labelSelector) query.labelSelector = labelSelector;
    if (this.options.watchTimeoutSeconds !== undefined) query.timeoutSeconds = this.options.watchTimeoutSeconds;
    return {
      what,
      list: async (): Promise<Listing> => {
        const result = (await this.call("list", type, namespace, undefined, list)) as Listing & { metadata?: { resourceVersion?: string }; items?: Listing["items"] };
        return { items: result.items ?? [], resourceVersion: result.metadata?.resourceVersion ?? "" };
      },
      watch: (resourceVersion, onEvent, onDone) => new Watch(this.config).watch(path, { ...query, resourceVersion }, onEvent, onDone),
    };
  }

  // ---- calls and their failures ----

  private async optional<T>(verb: string, type: OwnedType, namespace: string, name: string, request: () => Promise<T>): Promise<T | undefined> {
    try {
      return await request();
    } catch (err) {
      const problem = this.translate(err, verb, type, namespace, name);
      if (problem === MISSING) return undefined;
      throw problem;
    }
  }

  private async deleted(type: OwnedType, namespace: string, name: string, request: () => Promise<unknown>): Promise<boolean> {
    return (await this.optional("delete", type, namespace, name, () => request().then(() => true))) === true;
  }

  private async call<T>(verb: string, type: OwnedType | "Site", namespace: string | undefined, name: string | undefined, request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (err) {
      const problem = this.translate(err, verb, type, namespace, name);
      // It went away between the read and this write: a race like a conflict, to be looked at again.
      if (problem === MISSING) throw new ConflictError(`${type} "${name}" in namespace "${namespace}" went away before it could be ${verb === "update" ? "updated" : `${verb}d`}`);
      throw problem;
    }
  }

  private translate(err: unknown, verb: string, type: OwnedType | "Site", namespace: string | undefined, name: string | undefined): SkupperError | typeof MISSING {
    const resource = RESOURCE[type];
    if (namespace === undefined && err instanceof ApiException && Number(err.code) === 403) {
      return new SkupperError(
        "ERR_KUBERNETES_FORBIDDEN",
        `Permission denied: the controller may not ${verb} ${resource} in all namespaces. Grant it the ClusterRole "skupper-controller" of deploy/kubernetes/skupper.yaml, or set SKUPPER_WATCH_NAMESPACES to the namespaces it may watch.`,
      );
    }
    const what = name === undefined ? `${type}s` : `${type} "${name}"`;
    const where = namespace ?? "(all namespaces)";
    return translateApiError(err, {
      config: this.config,
      namespace: where,
      verb,
      resource,
      what,
      alreadyExists: () => new AlreadyExistsError(`${what} already exists in namespace "${where}"`),
      conflict: () => new ConflictError(`${what} was changed meanwhile in namespace "${where}"`),
      ...(type === "Site"
        ? {
            typeMissing: () =>
              new SkupperError(
                "ERR_CRDS_MISSING",
                `The Skupper CRDs are not installed in this cluster (the API server does not know ${resource}). Install them with "kubectl apply -f deploy/kubernetes/skupper.yaml"`,
              ),
          }
        : {}),
    });
  }
}

function watchPath(type: OwnedType | "Site", namespace: string | undefined): string {
  const scope = namespace === undefined ? "" : `/namespaces/${namespace}`;
  switch (type) {
    case "Site":
      return `/apis/${SKUPPER_GROUP}/${SKUPPER_VERSION}${scope}/${SITES}`;
    case "ServiceAccount":
      return `/api/v1${scope}/serviceaccounts`;
    case "RoleBinding":
      return `/apis/rbac.authorization.k8s.io/v1${scope}/rolebindings`;
    case "Deployment":
      return `/apis/apps/v1${scope}/deployments`;
  }
}

/** Whether a failed write was refused because its namespace is being deleted (nothing to do then). */
export function namespaceTerminating(err: unknown): boolean {
  const cause = err instanceof SkupperError && err.cause !== undefined ? err.cause : err;
  const text = err instanceof Error ? err.message : "";
  return /because it is being terminated/.test(text) || (cause instanceof ApiException && /being terminated/.test(String(JSON.stringify(cause.body))));
}
