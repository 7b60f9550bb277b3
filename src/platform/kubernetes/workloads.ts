/**
 * The objects of a site's namespace that are not Skupper's resources: the Deployment and pods
 * that run the site (made by the cluster controller), the controller's own Deployment, the
 * namespace itself, and the workloads a Connector may select (`--workload deployment/NAME`).
 * Read with the user's credentials; failures become sentences, as for the resource store.
 */
import { AppsV1Api, CoreV1Api, type KubeConfig, type V1Deployment, type V1Pod } from "@kubernetes/client-node";
import { AlreadyExistsError, ConflictError, InvalidInputError, NotFoundError, type SkupperError } from "../../common/errors.js";
import { MISSING, namespaceMissing, translateApiError } from "./api-errors.js";
import { CONTROLLER_NAME, CONTROLLER_NAMESPACE, ROUTER_DEPLOYMENT, ROUTER_POD_LABELS } from "./names.js";

/** `ROUTER_POD_LABELS` as a label selector. */
export const ROUTER_POD_SELECTOR = Object.entries(ROUTER_POD_LABELS)
  .map(([key, value]) => `${key}=${value}`)
  .join(",");

/** The kinds `--workload <kind>/<name>` accepts, as kubectl names them, singular and plural. */
const WORKLOAD_KINDS: Readonly<Record<string, "Deployment" | "StatefulSet" | "DaemonSet" | "Service">> = {
  deployment: "Deployment",
  deployments: "Deployment",
  deploy: "Deployment",
  statefulset: "StatefulSet",
  statefulsets: "StatefulSet",
  sts: "StatefulSet",
  daemonset: "DaemonSet",
  daemonsets: "DaemonSet",
  ds: "DaemonSet",
  service: "Service",
  services: "Service",
  svc: "Service",
};

/** What a pod of the site is doing, in a word a user can search for. */
export interface PodState {
  name: string;
  ready: boolean;
  /** `Running`, `ContainerCreating`, `ErrImageNeverPull`, `CrashLoopBackOff`, `Terminating`, … */
  reason: string;
  /** The container's or the scheduler's explanation, if it gave one. */
  message?: string;
  created: number;
}

/** Waiting reasons that will not go away by themselves: shown as soon as they appear. */
export const POD_PROBLEMS: ReadonlySet<string> = new Set([
  "ErrImageNeverPull",
  "ErrImagePull",
  "ImagePullBackOff",
  "InvalidImageName",
  "CrashLoopBackOff",
  "CreateContainerConfigError",
  "CreateContainerError",
  "RunContainerError",
  "Unschedulable",
  "Error",
  "OOMKilled",
]);

export function podState(pod: V1Pod): PodState {
  const name = pod.metadata?.name ?? "";
  const created = pod.metadata?.creationTimestamp ? new Date(pod.metadata.creationTimestamp).getTime() : 0;
  if (pod.metadata?.deletionTimestamp) return { name, ready: false, reason: "Terminating", created };
  const phase = pod.status?.phase ?? "Pending";
  const ready = phase === "Running" && (pod.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");
  if (ready) return { name, ready, reason: "Running", created };
  for (const container of pod.status?.containerStatuses ?? []) {
    const waiting = container.state?.waiting;
    if (waiting?.reason) return { name, ready, reason: waiting.reason, ...(waiting.message ? { message: waiting.message } : {}), created };
    const terminated = container.state?.terminated ?? container.lastState?.terminated;
    if (terminated?.reason && !container.ready) return { name, ready, reason: terminated.reason, ...(terminated.message ? { message: terminated.message } : {}), created };
  }
  const unscheduled = (pod.status?.conditions ?? []).find((c) => c.type === "PodScheduled" && c.status === "False");
  if (unscheduled) return { name, ready, reason: unscheduled.reason ?? "Unschedulable", ...(unscheduled.message ? { message: unscheduled.message } : {}), created };
  return { name, ready, reason: phase === "Running" ? "Running, not ready" : phase, created };
}

/** What can be told about the cluster controller from this user's seat. */
export type ControllerState =
  | { state: "absent" }
  | { state: "unknown"; why: string }
  | { state: "present"; ready: number; wanted: number };

type Call<T> = () => Promise<T>;

export class SiteWorkloads {
  private readonly core: CoreV1Api;
  private readonly apps: AppsV1Api;

  constructor(
    readonly config: KubeConfig,
    readonly namespace: string,
  ) {
    this.core = config.makeApiClient(CoreV1Api);
    this.apps = config.makeApiClient(AppsV1Api);
  }

  /** The Deployment running the site, if the controller made one. */
  routerDeployment(): Promise<V1Deployment | undefined> {
    return this.optional("get", "deployments.apps", `Deployment "${ROUTER_DEPLOYMENT}"`, () =>
      this.apps.readNamespacedDeployment({ name: ROUTER_DEPLOYMENT, namespace: this.namespace }),
    );
  }

  /** The site's pods, newest first. */
  async routerPods(): Promise<PodState[]> {
    const list = await this.required("list", "pods", "the site's pods", () => this.core.listNamespacedPod({ namespace: this.namespace, labelSelector: ROUTER_POD_SELECTOR }));
    return list.items.map(podState).sort((a, b) => b.created - a.created || (a.name < b.name ? 1 : -1));
  }

  /** Deletes the site's pods (their Deployment makes new ones); returns their names. */
  async deleteRouterPods(): Promise<string[]> {
    const pods = await this.routerPods();
    for (const pod of pods) {
      await this.optional("delete", "pods", `pod "${pod.name}"`, () => this.core.deleteNamespacedPod({ name: pod.name, namespace: this.namespace }));
    }
    return pods.map((p) => p.name);
  }

  /** False when the namespace does not exist; undefined when this user may not tell. */
  async namespaceExists(): Promise<boolean | undefined> {
    try {
      await this.core.readNamespace({ name: this.namespace });
      return true;
    } catch (err) {
      const code = Number((err as { code?: unknown }).code);
      if (code === 404) return false;
      if (code === 403) return undefined;
      const problem = this.translate(err, "get", "namespaces", `namespace "${this.namespace}"`, this.namespace);
      throw problem === MISSING ? namespaceMissing(this.namespace) : problem;
    }
  }

  /** Whether the cluster controller is installed and running, as far as this user may see. */
  async controller(): Promise<ControllerState> {
    try {
      const deployment = await this.apps.readNamespacedDeployment({ name: CONTROLLER_NAME, namespace: CONTROLLER_NAMESPACE });
      return { state: "present", ready: deployment.status?.readyReplicas ?? 0, wanted: deployment.spec?.replicas ?? 1 };
    } catch (err) {
      const code = Number((err as { code?: unknown }).code);
      if (code === 404) return { state: "absent" };
      const problem = this.translate(err, "get", "deployments.apps", `Deployment "${CONTROLLER_NAME}"`, CONTROLLER_NAMESPACE);
      return { state: "unknown", why: problem === MISSING ? "not found" : problem.message };
    }
  }

  /**
   * The label selector of a workload, `<kind>/<name>` as kubectl names it: a Deployment's,
   * StatefulSet's or DaemonSet's `spec.selector.matchLabels`, a Service's `spec.selector`.
   */
  async workloadSelector(workload: string): Promise<string> {
    const slash = workload.indexOf("/");
    const kind = WORKLOAD_KINDS[workload.slice(0, slash).toLowerCase()];
    const name = workload.slice(slash + 1);
    if (slash < 0 || !kind || !name) {
      throw new InvalidInputError(`workload "${workload}" is not valid: use deployment/<name>, statefulset/<name>, daemonset/<name> or service/<name>`);
    }
    const what = `${kind} "${name}"`;
    const labels = await this.selectorLabels(kind, name, what);
    if (labels === undefined) throw new NotFoundError(`${what} does not exist in namespace "${this.namespace}"`);
    if (Object.keys(labels).length === 0) {
      throw new InvalidInputError(
        `${what} in namespace "${this.namespace}" has no labels to select its pods by (${kind === "Service" ? "spec.selector" : "spec.selector.matchLabels"}); give the connector a --selector instead`,
      );
    }
    return Object.entries(labels)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([key, value]) => `${key}=${value}`)
      .join(",");
  }

  /** The labels a workload selects its pods by ({} when none); undefined when there is no such workload. */
  private async selectorLabels(kind: "Deployment" | "StatefulSet" | "DaemonSet" | "Service", name: string, what: string): Promise<Record<string, string> | undefined> {
    const namespace = this.namespace;
    const get = <T>(resource: string, request: Call<T>) => this.optional("get", resource, what, request);
    switch (kind) {
      case "Deployment": {
        const found = await get("deployments.apps", () => this.apps.readNamespacedDeployment({ name, namespace }));
        return found && (found.spec?.selector.matchLabels ?? {});
      }
      case "StatefulSet": {
        const found = await get("statefulsets.apps", () => this.apps.readNamespacedStatefulSet({ name, namespace }));
        return found && (found.spec?.selector.matchLabels ?? {});
      }
      case "DaemonSet": {
        const found = await get("daemonsets.apps", () => this.apps.readNamespacedDaemonSet({ name, namespace }));
        return found && (found.spec?.selector.matchLabels ?? {});
      }
      case "Service": {
        const found = await get("services", () => this.core.readNamespacedService({ name, namespace }));
        return found && (found.spec?.selector ?? {});
      }
    }
  }

  private async optional<T>(verb: string, resource: string, what: string, request: Call<T>): Promise<T | undefined> {
    try {
      return await request();
    } catch (err) {
      const problem = this.translate(err, verb, resource, what, this.namespace);
      if (problem === MISSING) return undefined;
      throw problem;
    }
  }

  private async required<T>(verb: string, resource: string, what: string, request: Call<T>): Promise<T> {
    const result = await this.optional(verb, resource, what, request);
    if (result === undefined) throw namespaceMissing(this.namespace);
    return result;
  }

  private translate(err: unknown, verb: string, resource: string, what: string, namespace: string): SkupperError | typeof MISSING {
    return translateApiError(err, {
      config: this.config,
      namespace,
      verb,
      resource,
      what,
      alreadyExists: () => new AlreadyExistsError(`${what} already exists in namespace "${namespace}"`),
      conflict: () => new ConflictError(`${what} was changed meanwhile in namespace "${namespace}"`),
    });
  }
}
