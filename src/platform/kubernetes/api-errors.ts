/**
 * API server failures as sentences a user can act on: a missing namespace, a missing permission
 * (naming the verb and resource to grant), credentials refused, an unreachable server. Shared by
 * the resource store and the Secrets and ConfigMaps the site keeps for itself.
 */
import { ApiException, type KubeConfig } from "@kubernetes/client-node";
import { errorMessage, InvalidInputError, NotFoundError, SkupperError } from "../../common/errors.js";

/** A 404 for the object itself (not for its namespace or its type): it does not exist. */
export const MISSING = Symbol("missing");

export interface ApiCall {
  config: KubeConfig;
  namespace: string;
  verb: string;
  /** The resource as RBAC names it: `secrets`, `listeners.skupper.io`. */
  resource: string;
  /** What was asked for, for the sentence: `Listener "web"`, `ConfigMaps`. */
  what: string;
  alreadyExists(): SkupperError;
  conflict(): SkupperError;
  /** The error when the API server does not know the type at all (a missing CRD), if it can happen. */
  typeMissing?(): SkupperError;
}

interface ApiStatus {
  kind?: string;
  reason?: string;
  message?: string;
  details?: { name?: string; kind?: string };
}

export function namespaceMissing(namespace: string): NotFoundError {
  return new NotFoundError(`Namespace "${namespace}" does not exist in this cluster; create it with "kubectl create namespace ${namespace}"`);
}

/** The error to throw for `err` (a failed API call), or MISSING when the object does not exist. */
export function translateApiError(err: unknown, call: ApiCall): SkupperError | typeof MISSING {
  const { verb, resource, what, namespace } = call;
  if (!(err instanceof ApiException)) {
    if (err instanceof SkupperError) return err;
    const server = call.config.getCurrentCluster()?.server ?? "(no server)";
    return new SkupperError("ERR_KUBERNETES_UNREACHABLE", `Cannot reach the Kubernetes API server at ${server} to ${verb} ${what}: ${errorMessage(err)}`, 1, { cause: err });
  }
  const code = Number(err.code);
  const status = parseStatus(err.body);
  const message = status?.message ?? (typeof err.body === "string" ? err.body.trim() : "");
  switch (code) {
    case 404:
      if (status?.details?.kind === "namespaces") return namespaceMissing(namespace);
      if (call.typeMissing && !(status?.reason === "NotFound" && status.details?.name !== undefined)) return call.typeMissing();
      return MISSING;
    case 409:
      return status?.reason === "AlreadyExists" ? call.alreadyExists() : call.conflict();
    case 401:
      return new SkupperError("ERR_KUBERNETES_UNAUTHORIZED", `The Kubernetes API server did not accept the credentials of the kubeconfig (context "${call.config.getCurrentContext()}"): ${message || "Unauthorized"}`);
    case 403:
      return new SkupperError(
        "ERR_KUBERNETES_FORBIDDEN",
        `Permission denied: ${whoAsks(call.config)} may not ${verb} ${resource} in namespace "${namespace}". Ask for a Role that allows "${verb}" on "${resource}" there. (${message || "Forbidden"})`,
      );
    case 400:
    case 422:
      return new InvalidInputError(`The Kubernetes API server refused ${what}: ${message || `HTTP ${code}`}`);
    default:
      return new SkupperError("ERR_KUBERNETES", `The Kubernetes API server answered ${code} to a ${verb} of ${what}${message ? `: ${message}` : ""}`);
  }
}

/** Who made the call, as a sentence's subject: in a pod its ServiceAccount, else the kubeconfig's user. */
function whoAsks(config: KubeConfig): string {
  return config.getCurrentUser()?.name === "inClusterUser" ? "this pod's ServiceAccount" : "the kubeconfig's user";
}

function parseStatus(body: unknown): ApiStatus | undefined {
  let value = body;
  if (typeof value === "string") {
    try {
      value = JSON.parse(value);
    } catch {
      return undefined;
    }
  }
  return value && typeof value === "object" && (value as ApiStatus).kind === "Status" ? (value as ApiStatus) : undefined;
}
