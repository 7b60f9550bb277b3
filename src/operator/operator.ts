/**
 * The cluster controller's loop: informers on Sites and on the objects it makes (labelled
 * `app.kubernetes.io/managed-by: skupper`) put the namespace of every change in a work queue;
 * reconciling a namespace makes what its Site needs (objects.ts) and puts back what was deleted
 * or changed. A namespace whose objects cannot be made (a missing permission, an API server
 * that does not answer) is logged and tried again with backoff.
 *
 * Which Site of a namespace runs: the one that already owns the objects, so that adding a Site
 * never moves a running router to another; otherwise the first by name. The others get nothing.
 * When the owner is deleted, the garbage collector deletes its objects; the controller waits for
 * that and then makes them anew for the Site that remains, if any.
 *
 * The controller never writes a Site: its status belongs to the site process. Whether the site's
 * pod is available is logged when it changes.
 */
import type { KubeConfig, V1Deployment, V1RoleBinding, V1ServiceAccount } from "@kubernetes/client-node";
import { WorkQueue, type ReconcileResult } from "../controller/index.js";
import { AlreadyExistsError, ConflictError, errorMessage, InvalidInputError, SkupperError } from "../common/errors.js";
import { logger } from "../common/log.js";
import { ROUTER_DEPLOYMENT, SITE_ROLE_BINDING, SITE_SERVICE_ACCOUNT } from "../platform/kubernetes/names.js";
import { ClusterApi, namespaceTerminating, type OwnedType } from "./cluster-api.js";
import { Informer } from "./informer.js";
import {
  controllingSite,
  deploymentDrifted,
  deploymentUpdate,
  isSkuppers,
  metadataCovers,
  roleBindingDrift,
  selectorChanged,
  siteObjects,
  withKeptMetadata,
  type SiteObject,
} from "./objects.js";

const log = logger("operator");

type Owned = V1ServiceAccount | V1RoleBinding | V1Deployment;

const OWNED_TYPES: readonly OwnedType[] = ["ServiceAccount", "RoleBinding", "Deployment"];
/** How long to wait between looks while the garbage collector removes a deleted Site's objects. */
const GC_WAIT_MIN_MS = 500;
const GC_WAIT_MAX_MS = 10_000;
/** How soon to look again after a write lost a race (a conflict). */
const CONFLICT_RETRY_MS = 100;
/** After this long waiting for the garbage collector, say so louder. */
const GC_WAIT_WARN_MS = 60_000;

export interface OperatorOptions {
  config: KubeConfig;
  /** The image of the site pods (the controller's own). */
  image: string;
  /** Watch only these namespaces; all when undefined. */
  namespaces?: readonly string[];
  /** Asks the API server to end each watch after this many seconds (it is then resumed); for tests. */
  watchTimeoutSeconds?: number;
  /** Backoff of a namespace whose objects cannot be made. */
  backoff?: { initialMs: number; maxMs: number };
}

/** What was last said about a namespace, so that the log tells changes and not every look. */
interface NamespaceNotes {
  /** The Site that runs. */
  choice?: string;
  /** What was said about the choice (the Site that runs and those that do not). */
  choiceSaid?: string;
  availability?: string;
  /** Since when, and how many times, the controller has waited for the garbage collector. */
  gcWaitSince?: number;
  gcWarnedAt?: number;
  gcWaits?: number;
  refused?: string;
}

export class Operator {
  private readonly api: ClusterApi;
  private readonly queue: WorkQueue;
  private readonly informers: Informer[] = [];
  private readonly notes = new Map<string, NamespaceNotes>();
  private started = false;

  constructor(private readonly options: OperatorOptions) {
    this.api = new ClusterApi(options.config, options.watchTimeoutSeconds === undefined ? {} : { watchTimeoutSeconds: options.watchTimeoutSeconds });
    this.queue = new WorkQueue({
      process: (namespace) => this.reconcile(namespace),
      failed: (namespace, error, retryInMs) => {
        const site = this.notes.get(namespace)?.choice;
        log.error(
          `cannot make the objects of ${site ? `Site "${site}"` : "the Site"} in namespace "${namespace}" (trying again in ${(retryInMs / 1000).toFixed(1)} s): ${error.message}`,
        );
      },
      ...(options.backoff ? { backoff: options.backoff } : {}),
    });
  }

  /** Starts the informers; every namespace with a Site (or with objects of ours) is reconciled once they have listed. */
  start(): void {
    if (this.started) return;
    this.started = true;
    const scopes: Array<string | undefined> = this.options.namespaces ? [...this.options.namespaces] : [undefined];
    for (const namespace of scopes) {
      const onChange = (ns: string) => this.queue.add(ns);
      this.informers.push(new Informer(this.api.siteSource(namespace), { onChange }));
      for (const type of OWNED_TYPES) this.informers.push(new Informer(this.api.ownedSource(type, namespace), { onChange }));
    }
    for (const informer of this.informers) informer.start();
  }

  /** Resolves when no namespace waits or is being reconciled (delayed retries do not count). */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  async stop(): Promise<void> {
    for (const informer of this.informers) informer.stop();
    this.queue.stop();
    await this.queue.idle();
  }

  /** Brings one namespace in line with its Sites. */
  async reconcile(namespace: string): Promise<ReconcileResult> {
    try {
      return await this.reconcileNamespace(namespace);
    } catch (err) {
      if (err instanceof ConflictError || err instanceof AlreadyExistsError) {
        // Someone (the Deployment controller writing status, another writer) got there first: look again.
        log.debug(`namespace "${namespace}": ${errorMessage(err)}; looking again`);
        return { retryAfterMs: CONFLICT_RETRY_MS };
      }
      if (namespaceTerminating(err)) {
        log.debug(`namespace "${namespace}" is being deleted; nothing to make there`);
        return;
      }
      if (err instanceof InvalidInputError) {
        // Trying again changes nothing: the Site (or the controller's settings) must change first.
        const message = errorMessage(err);
        const notes = this.notesOf(namespace);
        if (notes.refused !== message) log.error(`cannot run the site of namespace "${namespace}": ${message}`);
        notes.refused = message;
        return;
      }
      throw err;
    }
  }

  private async reconcileNamespace(namespace: string): Promise<ReconcileResult> {
    const sites = await this.api.listSites(namespace);
    const [serviceAccount, roleBinding, deployment] = await Promise.all([
      this.api.getServiceAccount(namespace, SITE_SERVICE_ACCOUNT),
      this.api.getRoleBinding(namespace, SITE_ROLE_BINDING),
      this.api.getDeployment(namespace, ROUTER_DEPLOYMENT),
    ]);
    const found: Array<[OwnedType, Owned | undefined]> = [
      ["Deployment", deployment],
      ["ServiceAccount", serviceAccount],
      ["RoleBinding", roleBinding],
    ];
    const existing = found.filter(([, object]) => isSkuppers(object)) as Array<[OwnedType, Owned]>;
    const present = new Set(sites.map((site) => site.metadata.uid));

    // Objects of a deleted Site: the garbage collector removes them; make nothing until it has.
    const orphaned = existing.filter(([, object]) => {
      const owner = controllingSite(object);
      return owner !== undefined && !present.has(owner.uid);
    });
    if (orphaned.length > 0) return this.awaitCollection(namespace, orphaned);
    const notes = this.notesOf(namespace);
    delete notes.gcWaitSince;
    delete notes.gcWarnedAt;
    delete notes.gcWaits;

    const site = chooseSite(
      sites,
      existing.map(([, object]) => object),
    );
    this.noteChoice(namespace, sites, site);
    if (!site) {
      this.notes.delete(namespace);
      return;
    }
    const desired = siteObjects(site, { image: this.options.image });
    delete notes.refused;

    if (desired.serviceAccount) await this.ensureServiceAccount(namespace, serviceAccount, desired.serviceAccount);
    else if (serviceAccount && isSkuppers(serviceAccount) && controllingSite(serviceAccount)) await this.remove(namespace, "ServiceAccount", site);
    if (desired.roleBinding) await this.ensureRoleBinding(namespace, roleBinding, desired.roleBinding);
    else if (roleBinding && isSkuppers(roleBinding) && controllingSite(roleBinding)) await this.remove(namespace, "RoleBinding", site);

    const current = await this.ensureDeployment(namespace, deployment, desired.deployment);
    if (!current) return { retryAfterMs: GC_WAIT_MIN_MS * 4 };
    this.noteAvailability(namespace, site, current);
  }

  private async ensureServiceAccount(namespace: string, current: V1ServiceAccount | undefined, desired: V1ServiceAccount): Promise<void> {
    if (!current) {
      await this.api.createServiceAccount(namespace, desired);
      log.info(`made ServiceAccount "${SITE_SERVICE_ACCOUNT}" in namespace "${namespace}"`);
      return;
    }
    refuseForeign("ServiceAccount", namespace, current);
    if (metadataCovers(current, desired)) return;
    await this.api.replaceServiceAccount(namespace, withKeptMetadata(current, desired));
    log.info(`repaired the labels or owner of ServiceAccount "${SITE_SERVICE_ACCOUNT}" in namespace "${namespace}"`);
  }

  private async ensureRoleBinding(namespace: string, current: V1RoleBinding | undefined, desired: V1RoleBinding): Promise<void> {
    if (current) refuseForeign("RoleBinding", namespace, current);
    const drift = current ? roleBindingDrift(current, desired) : "recreate";
    if (drift === "none") return;
    if (current && drift === "update") {
      await this.api.replaceRoleBinding(namespace, withKeptMetadata(current, desired));
      log.info(`repaired RoleBinding "${SITE_ROLE_BINDING}" in namespace "${namespace}"`);
      return;
    }
    // A RoleBinding's roleRef cannot change: it is made anew.
    if (current) await this.api.deleteRoleBinding(namespace, SITE_ROLE_BINDING);
    await this.api.createRoleBinding(namespace, desired);
    log.info(`${current ? "made anew" : "made"} RoleBinding "${SITE_ROLE_BINDING}" in namespace "${namespace}" (ClusterRole "${desired.roleRef.name}" for ServiceAccount "${SITE_SERVICE_ACCOUNT}")`);
  }

  /** The Deployment as it is now; undefined while an old one is still being deleted. */
  private async ensureDeployment(namespace: string, current: V1Deployment | undefined, desired: V1Deployment): Promise<V1Deployment | undefined> {
    if (!current) {
      const made = await this.api.createDeployment(namespace, desired);
      log.info(`made Deployment "${ROUTER_DEPLOYMENT}" in namespace "${namespace}" (image ${this.options.image})`);
      return made;
    }
    refuseForeign("Deployment", namespace, current);
    if (current.metadata?.deletionTimestamp) {
      log.debug(`Deployment "${ROUTER_DEPLOYMENT}" in namespace "${namespace}" is being deleted; waiting before making it anew`);
      return undefined;
    }
    if (selectorChanged(current, desired)) {
      // A selector cannot change: delete (its pods first, so that two routers never run at once), then make anew.
      log.info(`Deployment "${ROUTER_DEPLOYMENT}" in namespace "${namespace}" selects other pods; deleting it to make it anew`);
      await this.api.deleteDeployment(namespace, ROUTER_DEPLOYMENT);
      return undefined;
    }
    if (!deploymentDrifted(current, desired)) return current;
    const repaired = await this.api.replaceDeployment(namespace, deploymentUpdate(current, desired));
    log.info(`put Deployment "${ROUTER_DEPLOYMENT}" in namespace "${namespace}" back as it should be (it had been changed)`);
    return repaired;
  }

  private async remove(namespace: string, type: "ServiceAccount" | "RoleBinding", site: SiteObject): Promise<void> {
    const removed = type === "ServiceAccount" ? await this.api.deleteServiceAccount(namespace, SITE_SERVICE_ACCOUNT) : await this.api.deleteRoleBinding(namespace, SITE_ROLE_BINDING);
    if (removed) log.info(`deleted ${type} "${SITE_SERVICE_ACCOUNT}" in namespace "${namespace}": Site "${site.metadata.name}" names its own ServiceAccount "${site.spec?.serviceAccount}"`);
  }

  private awaitCollection(namespace: string, orphaned: Array<[OwnedType, Owned]>): ReconcileResult {
    const notes = this.notesOf(namespace);
    const now = Date.now();
    const owner = controllingSite(orphaned[0]![1])?.name ?? "?";
    const what = orphaned.map(([type, object]) => `${type} "${object.metadata?.name}"`).join(", ");
    if (notes.gcWaitSince === undefined) {
      notes.gcWaitSince = now;
      notes.gcWarnedAt = now;
      log.info(`Site "${owner}" in namespace "${namespace}" was deleted; waiting for the garbage collector to remove ${what}`);
    } else if (now - (notes.gcWarnedAt ?? now) >= GC_WAIT_WARN_MS) {
      notes.gcWarnedAt = now;
      log.warn(
        `the garbage collector has not removed ${what} of the deleted Site "${owner}" in namespace "${namespace}" for ${Math.round((now - notes.gcWaitSince) / 1000)} s; is kube-controller-manager running? Delete them by hand to go on.`,
      );
    }
    const waits = (notes.gcWaits ?? 0) + 1;
    notes.gcWaits = waits;
    return { retryAfterMs: Math.min(GC_WAIT_MAX_MS, GC_WAIT_MIN_MS * 2 ** Math.min(waits - 1, 10)) };
  }

  private noteChoice(namespace: string, sites: SiteObject[], site: SiteObject | undefined): void {
    const notes = this.notesOf(namespace);
    const choice = site?.metadata.name;
    const others = sites.filter((s) => s !== site).map((s) => `"${s.metadata.name}"`);
    const said = `${choice ?? ""}|${others.join(",")}`;
    notes.choice = choice;
    if (notes.choiceSaid === said) return;
    notes.choiceSaid = said;
    if (site && others.length > 0) {
      log.warn(`namespace "${namespace}" has several Sites: "${choice}" runs, ${others.join(", ")} ${others.length === 1 ? "gets" : "get"} nothing (one site per namespace)`);
    } else if (site) {
      log.info(`Site "${choice}" in namespace "${namespace}"`);
    }
  }

  private noteAvailability(namespace: string, site: SiteObject, deployment: V1Deployment): void {
    const notes = this.notesOf(namespace);
    const state = availability(deployment);
    if (notes.availability === state.text) return;
    notes.availability = state.text;
    const message = `the site pod of Site "${site.metadata.name}" in namespace "${namespace}" ${state.text}`;
    if (state.stuck) log.warn(message);
    else log.info(message);
  }

  private notesOf(namespace: string): NamespaceNotes {
    let notes = this.notes.get(namespace);
    if (!notes) {
      notes = {};
      this.notes.set(namespace, notes);
    }
    return notes;
  }
}

/**
 * The Site that runs in a namespace: the one that owns the objects already (the Deployment's
 * owner first), else the first by name. Sites being deleted count: their site process must run
 * until it has let go of them.
 */
export function chooseSite(sites: readonly SiteObject[], existing: ReadonlyArray<Owned | undefined>): SiteObject | undefined {
  for (const object of existing) {
    const owner = controllingSite(object);
    const site = owner && sites.find((s) => s.metadata.uid === owner.uid);
    if (site) return site;
  }
  return sites[0];
}

/** Whether the site's pod is available, in words, and whether Kubernetes has given up trying. */
export function availability(deployment: V1Deployment): { text: string; stuck: boolean } {
  const status = deployment.status;
  const generation = deployment.metadata?.generation ?? 0;
  const conditions = status?.conditions ?? [];
  const failure = conditions.find((c) => c.type === "ReplicaFailure" && c.status === "True");
  const progressing = conditions.find((c) => c.type === "Progressing");
  if ((status?.observedGeneration ?? 0) >= generation && (status?.availableReplicas ?? 0) >= 1 && (status?.updatedReplicas ?? 0) >= 1) {
    return { text: "is available", stuck: false };
  }
  if (failure) return { text: `is not available: ${failure.message ?? failure.reason}`, stuck: true };
  if (progressing?.status === "False") return { text: `is not available: ${progressing.message ?? progressing.reason}`, stuck: true };
  return { text: "is not available yet", stuck: false };
}

function refuseForeign(type: OwnedType, namespace: string, object: Owned): void {
  if (isSkuppers(object)) return;
  // Retried with backoff: deleting the object is no event the controller watches.
  throw new SkupperError(
    "ERR_NOT_SKUPPERS",
    `${type} "${object.metadata?.name}" in namespace "${namespace}" exists and was not made by Skupper (it has neither the label app.kubernetes.io/managed-by=skupper nor a Site as its owner); delete or rename it so that the site can run`,
  );
}
