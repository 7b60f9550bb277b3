/**
 * Core v1 Secrets and ConfigMaps the site keeps for itself (credentials, identity, the network
 * view, pending redemptions), with the same error sentences as the resource store: a missing
 * namespace, a missing permission (naming the verb and resource to grant), an API server that
 * cannot be reached. These objects are not resources a user applies; the resource store still
 * lists the Secrets among a namespace's Secrets, as it lists every Secret there.
 */
import { CoreV1Api, type KubeConfig, type V1ConfigMap, type V1Secret, type V1Service } from "@kubernetes/client-node";
import { AlreadyExistsError, ConflictError, SkupperError } from "../../common/errors.js";
import { MISSING, namespaceMissing, translateApiError } from "./api-errors.js";


/** Every object this platform writes for itself carries this label (and `app.kubernetes.io/part-of: skupper`). */
export const MANAGED_BY_LABEL = "app.kubernetes.io/managed-by";
export const MANAGED_BY = "skupper";
export const SKUPPER_LABELS: Readonly<Record<string, string>> = { [MANAGED_BY_LABEL]: MANAGED_BY, "app.kubernetes.io/part-of": "skupper" };

/** How often a read-modify-write is tried again after a conflict. */
export const MAX_CONFLICT_RETRIES = 10;

type CoreResource = "secrets" | "configmaps" | "services";
const KIND_OF: Record<CoreResource, string> = { secrets: "Secret", configmaps: "ConfigMap", services: "Service" };
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

  readService(name: string): Promise<V1Service | undefined> {
    return this.optional("get", "services", name, () => this.api.readNamespacedService({ name, namespace: this.namespace }));
  }

  createService(body: V1Service): Promise<V1Service> {
    return this.required("create", "services", body.metadata?.name, () => this.api.createNamespacedService({ namespace: this.namespace, body }));
  }

  replaceService(body: V1Service): Promise<V1Service | undefined> {
    const name = body.metadata?.name ?? "";
    return this.optional("update", "services", name, () => this.api.replaceNamespacedService({ name, namespace: this.namespace, body }));
  }

  async deleteService(name: string): Promise<boolean> {
    return (await this.optional("delete", "services", name, () => this.api.deleteNamespacedService({ name, namespace: this.namespace }).then(() => true))) === true;
  }

  async listServices(labelSelector: string): Promise<V1Service[]> {
    const list = await this.required("list", "services", undefined, () => this.api.listNamespacedService({ namespace: this.namespace, labelSelector }));
    return list.items;
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
    const kind = KIND_OF[resource];
    const what = name === undefined ? `${kind}s` : `${kind} "${name}"`;
    return translateApiError(err, {
      config: this.config,
      namespace: this.namespace,
      verb,
      resource,
      what,
      alreadyExists: () => new AlreadyExistsError(`${what} already exists in namespace "${this.namespace}"`),
      conflict: () => new ConflictError(`${what} was changed meanwhile in namespace "${this.namespace}"`),
    });
  }
}



export function b64(text: string): string {
  return Buffer.from(text, "utf8").toString("base64");
}

/** A data value of a Secret, decoded; undefined when absent. */
export function fromB64(value: string | undefined): string | undefined {
  return value === undefined ? undefined : Buffer.from(value, "base64").toString("utf8");
}
