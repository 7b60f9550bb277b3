/**
 * The Kubernetes SiteRunner. On Kubernetes nobody starts or stops a site by hand: the cluster
 * controller runs the site of a namespace (the Deployment `skupper-router`, its pods labelled
 * ROUTER_POD_LABELS) for as long as the namespace has a Site. So:
 *
 * - `status()`: a pod of the site is running and ready (its id is the pod's name);
 * - `start()`: waits, bounded, until it is (it says why it is not every 10 s: no Deployment
 *   yet, `ContainerCreating`, `ErrImageNeverPull`, `CrashLoopBackOff`, …) and fails with what
 *   to check or install when it does not come; `started` is always false (the CLI started
 *   nothing);
 * - `stop()`: waits until the site's Deployment and pods are gone, which happens once its Site
 *   is deleted; with a Site still there it refuses, saying so;
 * - `restart()`: replaces the site's pods and waits for a new one to be ready (revoke-access).
 */
import { namespaceFlag, type Site } from "../../api/index.js";
import { SiteNotRunningError, SkupperError, TimeoutError } from "../../common/errors.js";
import type { ResourceStore, SiteRunner, SiteRunnerStatus } from "../types.js";
import { CONTROLLER_NAME, CONTROLLER_NAMESPACE, INSTALL_COMMAND, ROUTER_DEPLOYMENT } from "./names.js";
import { POD_PROBLEMS, ROUTER_POD_SELECTOR, SiteWorkloads, type PodState } from "./workloads.js";

export const DEFAULT_SITE_TIMEOUT_MS = 120_000;
const PROGRESS_EVERY_MS = 10_000;
const POLL_MS = 500;
/**
 * Without a Deployment for the site this long, and with the controller known to be absent,
 * start() stops waiting: nothing will make one.
 */
const NO_CONTROLLER_GRACE_MS = 15_000;

export interface KubernetesSiteRunnerOptions {
  /** The kubeconfig context, for describe(). */
  contextName: string;
  /** How long start(), stop() and restart() wait (default 120 s). */
  timeoutMs?: number;
  /** Progress lines while waiting (the CLI writes them to stderr). */
  progress?: (line: string) => void;
  /** Default 10 s. */
  progressEveryMs?: number;
  /** Default 0.5 s. */
  pollMs?: number;
}

export class KubernetesSiteRunner implements SiteRunner {
  readonly namespace: string;
  readonly timeoutMs: number;

  constructor(
    readonly workloads: SiteWorkloads,
    private readonly resources: ResourceStore,
    private readonly options: KubernetesSiteRunnerOptions,
  ) {
    this.namespace = workloads.namespace;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_SITE_TIMEOUT_MS;
  }

  async status(): Promise<SiteRunnerStatus> {
    const pod = (await this.workloads.routerPods()).find((p) => p.ready);
    return pod ? { running: true, id: pod.name } : { running: false };
  }

  async start(): Promise<{ id: string; started: boolean }> {
    const site = await activeSite(this.resources);
    if (!site) {
      throw new SkupperError(
        "ERR_NO_SITE",
        `Namespace "${this.namespace}" has no site to run. Create one with "skupper${namespaceFlag(this.namespace)} site create <name>"; the Skupper controller then runs it.`,
      );
    }
    return { id: await this.waitForReadyPod(new Set()), started: false };
  }

  async stop(): Promise<{ id?: string }> {
    const site = await activeSite(this.resources);
    if (site) {
      throw new SkupperError(
        "ERR_SITE_MANAGED",
        `On Kubernetes the site pod runs as long as its Site exists: delete Site "${site.metadata.name}" ("skupper${namespaceFlag(this.namespace)} site delete") to stop it.`,
      );
    }
    const deadline = Date.now() + this.timeoutMs;
    const progress = this.progressTimer();
    let last: string | undefined;
    for (;;) {
      const [deployment, pods] = await Promise.all([this.workloads.routerDeployment(), this.workloads.routerPods()]);
      last = pods[0]?.name ?? last;
      if (!deployment && pods.length === 0) return last === undefined ? {} : { id: last };
      const what = deployment ? `Deployment "${ROUTER_DEPLOYMENT}"` : `pod "${pods[0]?.name}"`;
      if (progress()) this.say(`Waiting for the site in namespace "${this.namespace}" to stop (${what} is still there)…`);
      if (Date.now() >= deadline) {
        throw new TimeoutError(
          `The site of namespace "${this.namespace}" is still running ${this.seconds()} s after its Site was deleted (${what} is still there). ` +
            `The Skupper controller removes it; check "kubectl -n ${CONTROLLER_NAMESPACE} logs deployment/${CONTROLLER_NAME}".`,
        );
      }
      await delay(this.options.pollMs ?? POLL_MS);
    }
  }

  /** Replaces the site's pods and waits until a new one is ready; returns its name. */
  async restart(): Promise<string> {
    const old = await this.workloads.deleteRouterPods();
    if (old.length === 0) throw this.notRunning();
    return this.waitForReadyPod(new Set(old));
  }

  describe(): { location: string; log: string } {
    return {
      location: `namespace ${this.namespace} (context ${this.options.contextName})`,
      log: `kubectl -n ${this.namespace} logs deployment/${ROUTER_DEPLOYMENT}`,
    };
  }

  /** The error for anything that needs the site's pod while none is ready. */
  notRunning(): SiteNotRunningError {
    return new SiteNotRunningError(notRunningMessage(this.namespace));
  }

  /** Waits for a ready pod of the site that is not one of `old`; returns its name. */
  private async waitForReadyPod(old: Set<string>): Promise<string> {
    const started = Date.now();
    const deadline = started + this.timeoutMs;
    const progress = this.progressTimer();
    let shownProblem: string | undefined;
    for (;;) {
      const pods = (await this.workloads.routerPods()).filter((p) => !old.has(p.name));
      const ready = pods.find((p) => p.ready);
      if (ready) return ready.name;
      const deployment = pods.length > 0 ? true : (await this.workloads.routerDeployment()) !== undefined;
      const pod = pods[0];
      if (!deployment) {
        if (Date.now() - started >= NO_CONTROLLER_GRACE_MS && (await this.workloads.controller()).state === "absent") throw await this.noDeployment();
        if (progress()) this.say(`Waiting for the site pod in namespace "${this.namespace}" (no Deployment "${ROUTER_DEPLOYMENT}" yet)…`);
      } else {
        const reason = pod ? describePod(pod) : "no pod yet";
        const problem = pod && POD_PROBLEMS.has(pod.reason) ? pod.reason : undefined;
        if (progress() || (problem !== undefined && problem !== shownProblem)) {
          this.say(`Waiting for the site pod in namespace "${this.namespace}" (${reason})…`);
          shownProblem = problem;
        }
      }
      if (Date.now() >= deadline) throw deployment ? this.podNotReady(pod) : await this.noDeployment();
      await delay(this.options.pollMs ?? POLL_MS);
    }
  }

  /** Why no Deployment runs the site: the controller, as far as this user can tell. */
  private async noDeployment(): Promise<SkupperError> {
    const ns = this.namespace;
    const check = `kubectl -n ${CONTROLLER_NAMESPACE} get deployment ${CONTROLLER_NAME}`;
    const controller = await this.workloads.controller();
    switch (controller.state) {
      case "absent":
        return new SkupperError(
          "ERR_NO_CONTROLLER",
          `Nothing runs the site of namespace "${ns}": the Skupper controller is not installed in this cluster (there is no Deployment "${CONTROLLER_NAME}" in namespace "${CONTROLLER_NAMESPACE}"). ` +
            `Install it with "${INSTALL_COMMAND}"; it then starts the site.`,
        );
      case "present":
        if (controller.ready === 0) {
          return new SkupperError(
            "ERR_NO_CONTROLLER",
            `Nothing runs the site of namespace "${ns}": the Skupper controller is not running (Deployment "${CONTROLLER_NAME}" in namespace "${CONTROLLER_NAMESPACE}" has ${controller.ready} of ${controller.wanted} pods ready). ` +
              `Check it with "${check}" and "kubectl -n ${CONTROLLER_NAMESPACE} logs deployment/${CONTROLLER_NAME}".`,
          );
        }
        return new SkupperError(
          "ERR_SITE_START",
          `The Skupper controller did not create the Deployment "${ROUTER_DEPLOYMENT}" of the site in namespace "${ns}" within ${this.seconds()} s; see "kubectl -n ${CONTROLLER_NAMESPACE} logs deployment/${CONTROLLER_NAME}".`,
        );
      case "unknown":
        return new SkupperError(
          "ERR_NO_CONTROLLER",
          `No Deployment "${ROUTER_DEPLOYMENT}" appeared in namespace "${ns}" within ${this.seconds()} s: the Skupper controller seems not to be installed or not running. ` +
            `Check with "${check}"; install it with "${INSTALL_COMMAND}".`,
        );
    }
  }

  private podNotReady(pod: PodState | undefined): SkupperError {
    const ns = this.namespace;
    const state = pod ? describePod(pod) : "no pod";
    return new SkupperError(
      "ERR_SITE_START",
      `The site pod of namespace "${ns}" is not ready after ${this.seconds()} s (${state}). ` +
        `See "kubectl -n ${ns} describe pods -l ${ROUTER_POD_SELECTOR}" and "kubectl -n ${ns} logs deployment/${ROUTER_DEPLOYMENT}".`,
    );
  }

  /** A function that says, when called, whether a progress line is due. */
  private progressTimer(): () => boolean {
    const every = this.options.progressEveryMs ?? PROGRESS_EVERY_MS;
    let last = Date.now();
    return () => {
      if (Date.now() - last < every) return false;
      last = Date.now();
      return true;
    };
  }

  private say(line: string): void {
    this.options.progress?.(line);
  }

  private seconds(): number {
    return Math.round(this.timeoutMs / 1000);
  }
}

/** What to tell a user who needs the site's pod while none is ready. */
export function notRunningMessage(namespace: string): string {
  return (
    `The site pod of namespace "${namespace}" is not running. The Skupper controller runs it while the namespace has a Site; ` +
    `check "kubectl -n ${namespace} get pods -l ${ROUTER_POD_SELECTOR}" and "kubectl -n ${CONTROLLER_NAMESPACE} get deployment ${CONTROLLER_NAME}".`
  );
}

/** The Site the site process serves: the first by name of those not being deleted. */
export async function activeSite(resources: ResourceStore): Promise<Site | undefined> {
  return (await resources.list("Site")).filter((s) => !s.metadata.deletionTimestamp).sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1))[0];
}

function describePod(pod: PodState): string {
  return pod.message ? `${pod.reason}: ${pod.message}` : pod.reason;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
