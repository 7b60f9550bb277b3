/**
 * Core v1 Secrets and ConfigMaps the site keeps for itself (credentials, identity, the network
 * view, pending redemptions), with the same error sentences as the resource store: a missing
 * namespace, a missing permission (naming the verb and resource to grant), an API server that
 * cannot be reached. These objects are not resources a user applies; the resource store still
 * lists the Secrets among a namespace's Secrets, as it lists every Secret there.
 */
import { ApiException, CoreV1Api, type KubeConfig, type V1ConfigMap, type V1Secret } from "@kubernetes/client-node";
import { AlreadyExistsError, ConflictError, errorMessage, InvalidInputError, NotFoundError, SkupperError } from "../../common/errors.js";

/** Every object this platform writes for itself carries this label (and `app.kubernetes.io/part-of: skupper`). */
export const MANAGED_BY_LABEL = "app.kubernetes.io/managed-by";
export const MANAGED_BY = "skupper";
export const SKUPPER_LABELS: Readonly<Record<string, string>> = { [MANAGED_BY_LABEL]: MANAGED_BY, "app.kubernetes.io/part-of": "skupper" };

/** A 404 for the object itself (not for its namespace). */
export const MISSING = Symbol("missing");
/** How often a read-modify-write is tried again after a conflict. */
export const MAX_CONFLICT_RETRIES = 10;

type CoreResource = "secrets" | "configmaps";
type Verb = "get" | "list" | "create" | "update" | "delete";

/** Typed access to the Secrets and ConfigMaps of one namespace, errors as sentences. */
export class CoreObjects {
  readonly api: CoreV1Api;

  constructor(
    readonly config: KubeConfig,
    readonly namespace: string,
  ) {
    this.api = config.makeApiClient(CoreV1Api);
  }

  readSecret(name: string): Promise<V1Secret | undefined> {
    return this.optional("get", "secrets", name, () => this.api.readNamespacedSecret({ name, namespace: this.namespace }));
  }

  async createSecret(body: V1Secret): Promise<V1Secret> {
    return this.required("create", "secrets", body.metadata?.name, () => this.api.createNamespacedSecret({ namespace: this.namespace, body }));
  }

  /** undefined if it no longer exists. */
  replaceSecret(body: V1Secret): Promise<V1Secret | undefined> {
    const name = body.metadata?.name ?? "";
    return this.optional("update", "secrets", name, () => this.api.replaceNamespacedSecret({ name, namespace: this.namespace, body }));
  }

  /** false if there was none. */
  async deleteSecret(name: string): Promise<boolean> {
    return (await this.optional("delete", "secrets", name, () => this.api.deleteNamespacedSecret({ name, namespace: this.namespace }).then(() => true))) === true;
  }

  async listSecrets(labelSelector: string): Promise<V1Secret[]> {
    const list = await this.required("list", "secrets", undefined, () => this.api.listNamespacedSecret({ namespace: this.namespace, labelSelector }));
    return list.items;
  }

  readConfigMap(name: string): Promise<V1ConfigMap | undefined> {
    return this.optional("get", "configmaps", name, () => this.api.readNamespacedConfigMap({ name, namespace: this.namespace }));
  }

  createConfigMap(body: V1ConfigMap): Promise<V1ConfigMap> {
    return this.required("create", "configmaps", body.metadata?.name, () => this.api.createNamespacedConfigMap({ namespace: this.namespace, body }));
  }

  replaceConfigMap(body: V1ConfigMap): Promise<V1ConfigMap | undefined> {
    const name = body.metadata?.name ?? "";
    return this.optional("update", "configmaps", name, () => this.api.replaceNamespacedConfigMap({ name, namespace: this.namespace, body }));
  }

  async deleteConfigMap(name: string): Promise<boolean> {
    return (await this.optional("delete", "configmaps", name, () => this.api.deleteNamespacedConfigMap({ name, namespace: this.namespace }).then(() => true))) === true;
  }

  /** A call whose 404 for the object means "there is none". */
  private async optional<T>(verb: Verb, resource: CoreResource, name: string, request: () => Promise<T>): Promise<T | undefined> {
    const result = await this.call(verb, resource, name, request);
    return result === MISSING ? undefined : result;
  }

  /** A call for which a 404 can only mean the namespace is missing. */
  private async required<T>(verb: Verb, resource: CoreResource, name: string | undefined, request: () => Promise<T>): Promise<T> {
    const result = await this.call(verb, resource, name, request);
    if (result === MISSING) throw namespaceMissing(this.namespace);
    return result;
  }

  private async call<T>(verb: Verb, resource: CoreResource, name: string | undefined, request: () => Promise<T>): Promise<T | typeof MISSING> {
    try {
      return await request();
    } catch (err) {
      const problem = this.translate(err, verb, resource, name);
      if (problem === MISSING) return MISSING;
      throw problem;
    }
  }

  private translate(err: unknown, verb: Verb, resource: CoreResource, name: string | undefined): SkupperError | typeof MISSING {
    const kind = resource === "secrets" ? "Secret" : "ConfigMap";
    const what = name === undefined ? `${kind}s` : `${kind} "${name}"`;
    if (!(err instanceof ApiException)) {
      if (err instanceof SkupperError) return err;
      const server = this.config.getCurrentCluster()?.server ?? "(no server)";
      return new SkupperError("ERR_KUBERNETES_UNREACHABLE", `Cannot reach the Kubernetes API server at ${server} to ${verb} ${what}: ${errorMessage(err)}`, 1, { cause: err });
    }
    const code = Number(err.code);
    const status = parseStatus(err.body);
    const message = status?.message ?? (typeof err.body === "string" ? err.body.trim() : "");
    switch (code) {
      case 404:
        if (status?.details?.kind === "namespaces") return namespaceMissing(this.namespace);
        return MISSING;
      case 409:
        if (status?.reason === "AlreadyExists") return new AlreadyExistsError(`${what} already exists in namespace "${this.namespace}"`);
        return new ConflictError(`${what} was changed meanwhile in namespace "${this.namespace}"`);
      case 401:
        return new SkupperError("ERR_KUBERNETES_UNAUTHORIZED", `The Kubernetes API server did not accept the credentials of the kubeconfig (context "${this.config.getCurrentContext()}"): ${message || "Unauthorized"}`);
      case 403:
        return new SkupperError(
          "ERR_KUBERNETES_FORBIDDEN",
          `Permission denied: the kubeconfig's user may not ${verb} ${resource} in namespace "${this.namespace}". Ask for a Role that allows "${verb}" on "${resource}" there. (${message || "Forbidden"})`,
        );
      case 400:
      case 422:
        return new InvalidInputError(`The Kubernetes API server refused ${what}: ${message || `HTTP ${code}`}`);
      default:
        return new SkupperError("ERR_KUBERNETES", `The Kubernetes API server answered ${code} to a ${verb} of ${what}${message ? `: ${message}` : ""}`);
    }
  }
}

export function namespaceMissing(namespace: string): NotFoundError {
  return new NotFoundError(`Namespace "${namespace}" does not exist in this cluster; create it with "kubectl create namespace ${namespace}"`);
}

function parseStatus(body: unknown): { reason?: string; message?: string; details?: { kind?: string } } | undefined {
  let value = body;
  if (typeof value === "string") {
    try {
      value = JSON.parse(value);
    } catch {
      return undefined;
    }
  }
  if (value && typeof value === "object" && (value as { kind?: unknown }).kind === "Status") return value as { reason?: string; message?: string; details?: { kind?: string } };
  return undefined;
}

export function b64(text: string): string {
  return Buffer.from(text, "utf8").toString("base64");
}

/** A data value of a Secret, decoded; undefined when absent. */
export function fromB64(value: string | undefined): string | undefined {
  return value === undefined ? undefined : Buffer.from(value, "base64").toString("utf8");
}
