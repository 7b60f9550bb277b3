/**
 * What the cluster controller makes in a namespace for its Site, as pure functions: the
 * ServiceAccount and RoleBinding the site process runs with, and the Deployment that runs it.
 * Also the rules for telling whether an object in the cluster still is what was made (drift)
 * and whose it is (owner references). No I/O here; operator.ts does the API calls.
 */
import { createHash } from "node:crypto";
import type { V1Deployment, V1ObjectMeta, V1OwnerReference, V1RoleBinding, V1ServiceAccount } from "@kubernetes/client-node";
import { API_VERSION, DEFAULT_GRANT_SERVER_PORT, DEFAULT_LINK_PORT, type Site } from "../api/index.js";
import { InvalidInputError } from "../common/errors.js";
import { MANAGED_BY, MANAGED_BY_LABEL, SKUPPER_LABELS } from "../platform/kubernetes/core-objects.js";
import {
  GRANT_PORT_NAME,
  LINK_PORT_NAME,
  ROUTER_DEPLOYMENT,
  ROUTER_POD_LABELS,
  SITE_CLUSTER_ROLE,
  SITE_NAME_LABEL,
  SITE_ROLE_BINDING,
  SITE_SERVICE_ACCOUNT,
} from "../platform/kubernetes/names.js";

/** The site process in the image (deploy/image/Containerfile puts the app in /app). */
export const SITE_COMMAND: readonly string[] = ["/usr/bin/node", "/app/dist/src/site/main.js", "--platform", "kubernetes"];
/** The cluster controller in the same image. */
export const CONTROLLER_COMMAND: readonly string[] = ["/usr/bin/node", "/app/dist/src/operator/main.js"];
/** The user (and group) the image runs as; not root. */
export const RUN_AS = 65532;
/** The environment variable through which the site process learns its namespace. */
export const NAMESPACE_ENV = "SKUPPER_NAMESPACE";
/** The node's address, which a site with NodePort link access advertises. */
export const NODE_IP_ENV = "SKUPPER_NODE_IP";

/**
 * The finalizer that makes every deletion of the site's Deployment a foreground one, also the
 * garbage collector's after its Site is deleted: the Deployment disappears only once its pods
 * have, so the controller (which waits for it) never starts a new router beside the old one.
 */
export const FOREGROUND_DELETION = "foregroundDeletion";

/** The most a label value may hold. */
const MAX_LABEL_VALUE = 63;
/** A ServiceAccount name is a DNS subdomain. */
const SERVICE_ACCOUNT_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** A Site as the API server holds it: name, namespace and uid are always there. */
export type SiteObject = Site & { metadata: { name: string; namespace: string; uid: string } };

/** The objects a Site needs; the ServiceAccount and RoleBinding only when the Site names none of its own. */
export interface SiteObjects {
  serviceAccount: V1ServiceAccount | undefined;
  roleBinding: V1RoleBinding | undefined;
  deployment: V1Deployment;
}

export interface SiteObjectsOptions {
  /** The image of the site pods: the controller's own. */
  image: string;
}

/**
 * The ServiceAccount the site process runs as: the Site's `spec.serviceAccount` when it names one
 * (the user then grants it what the ClusterRole `skupper-site` holds), else `skupper-router`.
 */
export function siteServiceAccount(site: Site): string {
  const chosen = site.spec?.serviceAccount?.trim();
  if (!chosen) return SITE_SERVICE_ACCOUNT;
  if (chosen.length > 253 || !SERVICE_ACCOUNT_NAME.test(chosen)) {
    throw new InvalidInputError(
      `Site "${site.metadata.name}" names the ServiceAccount "${chosen}", which is not a valid name: use lower case letters, digits, '-' and '.', starting and ending with a letter or digit`,
    );
  }
  return chosen;
}

/** The value of the `skupper.io/site` label for a Site name: the name, or its start and a hash when longer than 63. */
export function siteLabelValue(name: string): string {
  if (name.length <= MAX_LABEL_VALUE) return name;
  const hash = createHash("sha256").update(name).digest("hex").slice(0, 10);
  const start = name.slice(0, MAX_LABEL_VALUE - hash.length - 1).replace(/[^a-z0-9]+$/, "");
  return `${start}-${hash}`;
}

/** The owner reference that makes the Site the controller of an object: deleting the Site deletes it. */
export function siteOwnerReference(site: SiteObject): V1OwnerReference {
  return { apiVersion: API_VERSION, kind: "Site", name: site.metadata.name, uid: site.metadata.uid, controller: true, blockOwnerDeletion: true };
}

/** The Site (uid) that controls an object, if a Site does. */
export function controllingSite(object: { metadata?: { ownerReferences?: V1OwnerReference[] } } | undefined): V1OwnerReference | undefined {
  return object?.metadata?.ownerReferences?.find((ref) => ref.controller === true && ref.kind === "Site" && ref.apiVersion.startsWith("skupper.io/"));
}

/**
 * Whether Skupper made an object: it carries the label of what Skupper makes, or a Site controls
 * it (someone removed the label: that is drift, to be put back).
 */
export function isSkuppers(object: { metadata?: { labels?: Record<string, string>; ownerReferences?: V1OwnerReference[] } } | undefined): boolean {
  return object?.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY || controllingSite(object) !== undefined;
}

export function siteObjects(site: SiteObject, options: SiteObjectsOptions): SiteObjects {
  const serviceAccountName = siteServiceAccount(site);
  const own = serviceAccountName === SITE_SERVICE_ACCOUNT;
  return {
    serviceAccount: own ? serviceAccountFor(site) : undefined,
    roleBinding: own ? roleBindingFor(site) : undefined,
    deployment: deploymentFor(site, serviceAccountName, options.image),
  };
}

function metadata(site: SiteObject, name: string, labels: Record<string, string> = {}) {
  return {
    name,
    namespace: site.metadata.namespace,
    labels: { ...SKUPPER_LABELS, ...labels },
    ownerReferences: [siteOwnerReference(site)],
  };
}

export function serviceAccountFor(site: SiteObject): V1ServiceAccount {
  return { apiVersion: "v1", kind: "ServiceAccount", metadata: metadata(site, SITE_SERVICE_ACCOUNT) };
}

/** Grants the ClusterRole `skupper-site` to the site's ServiceAccount in the Site's namespace only. */
export function roleBindingFor(site: SiteObject): V1RoleBinding {
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "RoleBinding",
    metadata: metadata(site, SITE_ROLE_BINDING),
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: SITE_CLUSTER_ROLE },
    subjects: [{ kind: "ServiceAccount", name: SITE_SERVICE_ACCOUNT, namespace: site.metadata.namespace }],
  };
}

/** The selector of the site's Deployment: the router pod labels, the same for every Site (a selector cannot change). */
export function routerSelector(): Record<string, string> {
  return { ...ROUTER_POD_LABELS };
}

/** A container's securityContext for the image: not root, nothing to escalate to, a read-only root file system. */
export function restrictedSecurityContext() {
  return {
    runAsNonRoot: true,
    runAsUser: RUN_AS,
    runAsGroup: RUN_AS,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ["ALL"] },
    seccompProfile: { type: "RuntimeDefault" },
  };
}

export function deploymentFor(site: SiteObject, serviceAccountName: string, image: string): V1Deployment {
  const podLabels = { ...ROUTER_POD_LABELS, [SITE_NAME_LABEL]: siteLabelValue(site.metadata.name) };
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: {
      ...metadata(site, ROUTER_DEPLOYMENT, { "app.kubernetes.io/name": ROUTER_DEPLOYMENT, [SITE_NAME_LABEL]: podLabels[SITE_NAME_LABEL] }),
      finalizers: [FOREGROUND_DELETION],
    },
    spec: {
      replicas: 1,
      // Two routers with one identity must never run together: the old pod goes before the new one starts.
      strategy: { type: "Recreate" },
      selector: { matchLabels: routerSelector() },
      template: {
        metadata: { labels: podLabels },
        spec: {
          serviceAccountName,
          automountServiceAccountToken: true,
          terminationGracePeriodSeconds: 10,
          containers: [
            {
              name: "router",
              image,
              imagePullPolicy: "IfNotPresent",
              command: [...SITE_COMMAND],
              env: [
                { name: NAMESPACE_ENV, valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
                { name: NODE_IP_ENV, valueFrom: { fieldRef: { fieldPath: "status.hostIP" } } },
              ],
              ports: [
                { name: LINK_PORT_NAME, containerPort: DEFAULT_LINK_PORT, protocol: "TCP" },
                { name: GRANT_PORT_NAME, containerPort: DEFAULT_GRANT_SERVER_PORT, protocol: "TCP" },
              ],
              resources: { requests: { cpu: "50m", memory: "64Mi" }, limits: { memory: "256Mi" } },
              securityContext: restrictedSecurityContext(),
            },
          ],
        },
      },
    },
  };
}

// ---- comparing what is there with what should be ----

/**
 * Whether `actual` holds everything `desired` says: every field of an object (others may be
 * there: the API server fills in defaults), arrays element by element and of the same length,
 * scalars equal. What a user added besides is not drift; what they changed is.
 */
export function covers(actual: unknown, desired: unknown): boolean {
  if (Array.isArray(desired)) {
    return Array.isArray(actual) && actual.length === desired.length && desired.every((item, i) => covers(actual[i], item));
  }
  if (desired !== null && typeof desired === "object") {
    if (actual === null || typeof actual !== "object" || Array.isArray(actual)) return false;
    return Object.entries(desired as Record<string, unknown>).every(([key, value]) => value === undefined || covers((actual as Record<string, unknown>)[key], value));
  }
  return actual === desired;
}

type Meta = { metadata?: { labels?: Record<string, string>; ownerReferences?: V1OwnerReference[]; finalizers?: string[] } };

/** The labels, finalizers and the controlling owner reference are as desired (other labels, finalizers and owners may be there). */
export function metadataCovers(actual: Meta, desired: Meta): boolean {
  const want = controllingSite(desired);
  const have = controllingSite(actual);
  const sameOwner = want === undefined ? have === undefined : have !== undefined && have.uid === want.uid && have.name === want.name && have.blockOwnerDeletion === true;
  const others = (actual.metadata?.ownerReferences ?? []).filter((ref) => ref !== have);
  const finalizers = actual.metadata?.finalizers ?? [];
  return (
    sameOwner &&
    !others.some((ref) => ref.controller === true) &&
    covers(actual.metadata?.labels ?? {}, desired.metadata?.labels ?? {}) &&
    (desired.metadata?.finalizers ?? []).every((f) => finalizers.includes(f))
  );
}

/** The owner references to write: the desired controller, plus any non-controlling owners already there. */
export function mergedOwners(actual: Meta, desired: Meta): V1OwnerReference[] {
  const kept = (actual.metadata?.ownerReferences ?? []).filter((ref) => ref.controller !== true && !(ref.kind === "Site" && ref.uid === controllingSite(desired)?.uid));
  return [...(desired.metadata?.ownerReferences ?? []), ...kept];
}

/** Whether a Deployment must be rewritten: its metadata or the part of its spec we set differ. */
export function deploymentDrifted(actual: V1Deployment, desired: V1Deployment): boolean {
  return !metadataCovers(actual, desired) || !covers(plain(actual.spec), desired.spec);
}

/** Whether the Deployment's selector is another one: a selector cannot change, the Deployment must be made anew. */
export function selectorChanged(actual: V1Deployment, desired: V1Deployment): boolean {
  return !isDeepEqual(plain(actual.spec?.selector), plain(desired.spec?.selector));
}

/**
 * The Deployment to write over `actual`: the desired one, keeping what others put in its
 * metadata (annotations such as the revision, labels, non-controlling owners) and in its pod
 * template's annotations (a `kubectl rollout restart` is not undone).
 */
export function deploymentUpdate(actual: V1Deployment, desired: V1Deployment): V1Deployment {
  const template = desired.spec!.template;
  const annotations = { ...(actual.spec?.template?.metadata?.annotations ?? {}), ...(template.metadata?.annotations ?? {}) };
  return {
    ...desired,
    metadata: {
      ...desired.metadata,
      resourceVersion: actual.metadata?.resourceVersion,
      labels: { ...(actual.metadata?.labels ?? {}), ...(desired.metadata?.labels ?? {}) },
      ...(actual.metadata?.annotations ? { annotations: actual.metadata.annotations } : {}),
      ownerReferences: mergedOwners(actual, desired),
      finalizers: [...new Set([...(actual.metadata?.finalizers ?? []), ...(desired.metadata?.finalizers ?? [])])],
    },
    spec: {
      ...desired.spec!,
      template: { ...template, metadata: { ...template.metadata, ...(Object.keys(annotations).length > 0 ? { annotations } : {}) } },
    },
  };
}

/** Whether a RoleBinding must be rewritten (its subjects or metadata), or made anew (its roleRef cannot change). */
export function roleBindingDrift(actual: V1RoleBinding, desired: V1RoleBinding): "none" | "update" | "recreate" {
  if (!isDeepEqual(plain(actual.roleRef), plain(desired.roleRef))) return "recreate";
  if (!metadataCovers(actual, desired) || !isDeepEqual(plain(actual.subjects ?? []), plain(desired.subjects))) return "update";
  return "none";
}

/** The object to write over `actual` (a ServiceAccount or RoleBinding): desired, keeping what others put in its metadata. */
export function withKeptMetadata<T extends { metadata?: V1ObjectMeta }>(actual: T, desired: T): T {
  return {
    ...actual,
    ...desired,
    metadata: {
      ...(actual.metadata ?? {}),
      ...desired.metadata,
      labels: { ...(actual.metadata?.labels ?? {}), ...(desired.metadata?.labels ?? {}) },
      ownerReferences: mergedOwners(actual, desired),
    },
  };
}

/** A typed object from the client as plain JSON (no class instances, no undefined fields). */
export function plain<T>(value: T): unknown {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}

function isDeepEqual(a: unknown, b: unknown): boolean {
  return covers(a, b) && covers(b, a);
}
