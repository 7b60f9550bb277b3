/** Checks of names a user gives before anything is looked up or stored under them. */
import { InvalidInputError } from "../common/errors.js";
import { isKind } from "./documents.js";
import { NAMESPACE_PATTERN, resourceNameProblem, type Kind } from "./schemas.js";

export const DEFAULT_NAMESPACE = "default";

/** `-n <ns>` as it must be typed in a command a message suggests, or "" for the default namespace. */
export function namespaceFlag(namespace: string): string {
  return namespace === DEFAULT_NAMESPACE ? "" : ` -n ${namespace}`;
}

/** The short names of the original's CRDs: what `kubectl get` and `skupper get` accept. */
export const SHORT_NAMES: Readonly<Record<Kind, readonly string[]>> = {
  Site: ["st"],
  Link: ["ln"],
  AccessGrant: ["grant", "gr"],
  AccessToken: ["token", "to"],
  RouterAccess: [],
  Listener: ["lnr"],
  Connector: ["cnr"],
  MultiKeyListener: [],
  SecuredAccess: [],
  Certificate: [],
  AttachedConnector: ["acnr"],
  AttachedConnectorBinding: ["acnrb"],
  Secret: [],
};

/** The lower-case plural Kubernetes uses for a kind: `links`, `routeraccesses`. */
export function pluralName(kind: Kind): string {
  const lower = kind.toLowerCase();
  return lower.endsWith("s") ? `${lower}es` : `${lower}s`;
}

/** `<Kind>/<name>`: the key of a resource within a namespace. */
export function resourceKey(kind: string, name: string): string {
  return `${kind}/${name}`;
}

/**
 * Throws (exit code 2) unless `kind` is a known kind and `name` a valid resource name: the check
 * every name goes through before it is used to find or store a resource (on the local platform,
 * before it becomes part of a path, so no name can reach outside its directory).
 */
export function checkResourceName(kind: string, name: string): void {
  checkKind(kind);
  const problem = resourceNameProblem(name);
  if (problem) {
    const shown = name.length > 80 ? `${name.slice(0, 80)}…` : name;
    throw new InvalidInputError(`${kind} name ${JSON.stringify(shown)} is not valid: ${problem}`);
  }
}

export function checkKind(kind: string): void {
  if (!isKind(kind)) throw new InvalidInputError(`resource kind ${JSON.stringify(kind)} is not supported`);
}

export function validateNamespace(namespace: string): string {
  if (!NAMESPACE_PATTERN.test(namespace) || namespace.length > 63) {
    throw new InvalidInputError(
      `namespace "${namespace}" is not valid: use lower case letters, digits and '-', starting and ending with a letter or digit (at most 63 characters)`,
    );
  }
  return namespace;
}
