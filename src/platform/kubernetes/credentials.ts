/**
 * The Kubernetes platform's CredentialStore: each named credential is a Secret of type
 * `kubernetes.io/tls` in the site's namespace, named after the credential (`skupper-site-ca`,
 * `skupper-site-server`, …, as the original names its Secrets), with the keys `tls.crt`,
 * `tls.key` and `ca.crt`, labelled `app.kubernetes.io/managed-by: skupper`.
 *
 * Security: the site's private keys are in these Secrets, so whoever may read Secrets in the
 * namespace may read them. RBAC is the protection, as for any Kubernetes workload: grant `get`
 * on `secrets` in a site's namespace only to the site and its administrators.
 */
import type { KubeConfig, V1Secret } from "@kubernetes/client-node";
import { resourceNameProblem, validateNamespace } from "../../api/index.js";
import type { Credentials } from "../../certs/index.js";
import { AlreadyExistsError, ConflictError, InvalidInputError, SkupperError } from "../../common/errors.js";
import type { CredentialStore } from "../types.js";
import { b64, CoreObjects, fromB64, MANAGED_BY, MANAGED_BY_LABEL, MAX_CONFLICT_RETRIES, SKUPPER_LABELS } from "./core-objects.js";
import { contextNamespace, GENERATION_ANNOTATION } from "./resource-store.js";

export const TLS_SECRET_TYPE = "kubernetes.io/tls";
/** Marks the Secrets of this store among the namespace's Secrets. */
export const CREDENTIALS_LABEL = "skupper.io/credentials";

export interface KubernetesCredentialStoreOptions {
  /** Default: the namespace of the kubeconfig's current context. */
  namespace?: string;
}

export class KubernetesCredentialStore implements CredentialStore {
  readonly namespace: string;
  private readonly core: CoreObjects;

  constructor(config: KubeConfig, options: KubernetesCredentialStoreOptions = {}) {
    this.namespace = validateNamespace(options.namespace ?? contextNamespace(config));
    this.core = new CoreObjects(config, this.namespace);
  }

  /** undefined when there is no Secret of that name or it lacks one of the three keys. */
  async load(name: string): Promise<Credentials | undefined> {
    const secret = await this.core.readSecret(checkName(name));
    const data = secret?.data ?? {};
    const ca = fromB64(data["ca.crt"]);
    const cert = fromB64(data["tls.crt"]);
    const key = fromB64(data["tls.key"]);
    if (!ca || !cert || !key) return undefined;
    return { ca, cert, key };
  }

  /** Creates the Secret or replaces its data; durable when it resolves (the API server accepted it). */
  async save(name: string, credentials: Credentials): Promise<void> {
    checkName(name);
    const data = { "ca.crt": b64(credentials.ca), "tls.crt": b64(credentials.cert), "tls.key": b64(credentials.key) };
    for (let attempt = 0; ; attempt++) {
      const current = await this.core.readSecret(name);
      try {
        if (!current) {
          await this.core.createSecret({
            apiVersion: "v1",
            kind: "Secret",
            metadata: { name, labels: { ...SKUPPER_LABELS, [CREDENTIALS_LABEL]: "true" }, annotations: { [GENERATION_ANNOTATION]: "1" } },
            type: TLS_SECRET_TYPE,
            data,
          });
          return;
        }
        if (current.type !== TLS_SECRET_TYPE) {
          // A Secret's type cannot be changed; one of ours of another type is replaced, anyone else's is not touched.
          if (current.metadata?.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY) {
            throw new SkupperError("ERR_KUBERNETES", `Secret "${name}" in namespace "${this.namespace}" is not Skupper's (type ${current.type ?? "Opaque"}); delete or rename it so the site can keep its credentials there`);
          }
          await this.core.deleteSecret(name);
          continue;
        }
        const changed = !sameData(current.data, data);
        const generation = Number(current.metadata?.annotations?.[GENERATION_ANNOTATION]);
        const body: V1Secret = {
          ...current,
          metadata: {
            ...current.metadata,
            name,
            labels: { ...(current.metadata?.labels ?? {}), ...SKUPPER_LABELS, [CREDENTIALS_LABEL]: "true" },
            annotations: {
              ...(current.metadata?.annotations ?? {}),
              // Seen through the resource store, the Secret's generation advances when its data does.
              [GENERATION_ANNOTATION]: String((Number.isInteger(generation) && generation > 0 ? generation : 1) + (changed ? 1 : 0)),
            },
          },
          data,
        };
        delete body.stringData;
        if (await this.core.replaceSecret(body)) return;
      } catch (err) {
        // Someone else created or changed it meanwhile: read it again.
        if (!(err instanceof ConflictError || err instanceof AlreadyExistsError) || attempt >= MAX_CONFLICT_RETRIES) throw err;
      }
      if (attempt >= MAX_CONFLICT_RETRIES) throw new ConflictError(`Secret "${name}" kept changing in namespace "${this.namespace}" while the site saved credentials in it`);
    }
  }

  /** Deletes the Secret; no error if there is none. */
  async remove(name: string): Promise<void> {
    await this.core.deleteSecret(checkName(name));
  }
}

function checkName(name: string): string {
  const problem = resourceNameProblem(name);
  if (problem) throw new InvalidInputError(`credentials name ${JSON.stringify(String(name).slice(0, 80))} is not valid: ${problem}`);
  return name;
}

function sameData(a: Record<string, string> | undefined, b: Record<string, string>): boolean {
  const keys = Object.keys(b);
  return Object.keys(a ?? {}).length === keys.length && keys.every((k) => a?.[k] === b[k]);
}
