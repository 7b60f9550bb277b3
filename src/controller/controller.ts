/**
 * The site controller: one reconciler per kind, driven by a work queue fed by the store's watch
 * and the router's change events. It is written against the platform seam (resources,
 * credentials, site state) and the router's DataPlane interface, so it runs unchanged on every
 * platform and in unit tests with an in-memory store and a fake router.
 */
import {
  ConditionType,
  failed,
  linkAccessEnabled,
  namespaceFlag,
  resourceKey,
  setCondition,
  type Kind,
  type Link,
  type NetworkStatus,
  type Secret,
  type Site,
} from "../api/index.js";
import { SkupperError } from "../common/errors.js";
import { logger } from "../common/log.js";
import { GrantServer, issueGeneratedLink, linkAccessNotEnabled, revokeWithUserIssuer, siteIssuer } from "../grants/index.js";
import type { LinkBundleRequest, PendingCredentials, SiteHost, SiteRequestHandler, Unwatch, WatchEvent } from "../platform/index.js";
import { Router, type DataPlane, type DataPlaneFactory } from "../router/index.js";
import { ResourceCache } from "./cache.js";
import { NETWORK_STATUS, ROUTER_CHANGED, ReconcileError, type ActiveSite, type ControllerContext, type GrantServerFactory, type GrantServerPort, type Reconciler } from "./context.js";
import { AccessGrantReconciler } from "./reconcilers/access-grants.js";
import { AccessTokenReconciler } from "./reconcilers/access-tokens.js";
import { connectorReconciler, linkReconciler, listenerReconciler, MultiKeyListenerReconciler, SecretReconciler, type BindingReconciler } from "./reconcilers/bindings.js";
import { CertificateReconciler } from "./reconcilers/certificates.js";
import { INERT_KINDS, InertReconciler } from "./reconcilers/inert.js";
import { GRANT_SERVER, networkStatus, RouterAccessReconciler, SITE_CA, SITE_SERVER, SiteReconciler } from "./reconcilers/site.js";
import { SelectorBackends } from "./selector-backends.js";
import { connectorResourceName, listenerResourceOf } from "./services.js";
import { StatusWriter } from "./status-writer.js";
import { WorkQueue, type ReconcileResult, type WorkQueueOptions } from "./work-queue.js";

const log = logger("controller");

export interface ControllerOptions {
  version: string;
  /** The router to run (default: the real one). */
  createDataPlane?: DataPlaneFactory;
  /** The grant server to run (default: the real one). */
  createGrantServer?: GrantServerFactory;
  /** Backoff of failed reconciles (default 0.5 s doubling to 30 s). */
  backoff?: WorkQueueOptions["backoff"];
  /** Called after each publication of the network view (the Site or the router changed). */
  onPublished?: () => void;
}

/** The part of a site host the controller uses. */
export type ControllerHost = Pick<SiteHost, "namespace" | "resources" | "credentials" | "state" | "network">;

export class SiteController implements SiteRequestHandler {
  private readonly ctx: ControllerContext;
  private readonly queue: WorkQueue;
  private readonly reconcilers = new Map<Kind, Reconciler>();
  private readonly site: SiteReconciler;
  private readonly tokens: AccessTokenReconciler;
  private readonly grants: AccessGrantReconciler;
  private readonly bindings: Array<BindingReconciler<"Link" | "Listener" | "Connector">>;
  private readonly multiKey: MultiKeyListenerReconciler;
  private readonly grantServer: GrantServerPort;
  private readonly backends: SelectorBackends | undefined;
  private readonly pending = new Map<string, PendingCredentials>();
  private readonly active: ActiveSite = { siteId: "", linkAccess: false };
  /** Router status last seen, per resource it concerns, to reconcile only what changed. */
  private routerSeen = new Map<string, string>();
  private unwatch: Unwatch | undefined;
  private events: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly onPublished: (() => void) | undefined;

  constructor(
    private readonly host: ControllerHost,
    options: ControllerOptions,
  ) {
    const cache = new ResourceCache(host.resources);
    this.onPublished = options.onPublished;
    this.queue = new WorkQueue({
      process: (key) => this.process(key),
      failed: (key, error, delay) => this.failed(key, error, delay),
      ...(options.backoff ? { backoff: options.backoff } : {}),
    });
    this.ctx = {
      namespace: host.namespace,
      version: options.version,
      store: host.resources,
      credentials: host.credentials,
      state: host.state,
      network: host.network,
      cache,
      status: new StatusWriter(host.resources, cache),
      active: this.active,
      createDataPlane: options.createDataPlane ?? ((identity, routerOptions) => new Router(identity, routerOptions)),
      enqueue: (kind, name) => this.queue.add(name === undefined ? kind : resourceKey(kind, name)),
      enqueueAll: (...kinds) => {
        for (const kind of kinds) for (const name of cache.names(kind)) this.queue.add(resourceKey(kind, name));
      },
    };
    this.grants = new AccessGrantReconciler(this.ctx);
    this.grantServer = (options.createGrantServer ?? ((ledger) => new GrantServer(ledger)))(this.grants.book);
    this.site = new SiteReconciler(this.ctx, this.grantServer, options.backoff);
    this.tokens = new AccessTokenReconciler(this.ctx, this.pending);
    if (host.network) {
      this.backends = new SelectorBackends(host.network, (selector) => {
        for (const connector of cache.list("Connector")) if (connector.spec.selector === selector) this.ctx.enqueue("Connector", connector.metadata.name);
      });
    }
    const listeners = listenerReconciler(this.ctx);
    this.bindings = [linkReconciler(this.ctx), listeners, connectorReconciler(this.ctx, this.backends)];
    this.multiKey = new MultiKeyListenerReconciler(this.ctx, listeners);
    const inert = INERT_KINDS.map((kind) => new InertReconciler(this.ctx, kind));
    const certificates = new CertificateReconciler(this.ctx);
    for (const reconciler of [this.site, new RouterAccessReconciler(this.ctx), this.grants, this.tokens, ...this.bindings, this.multiKey, certificates, new SecretReconciler(this.ctx), ...inert]) {
      this.reconcilers.set(reconciler.kind, reconciler);
    }
  }

  /** This site's id (known once started). */
  get siteId(): string {
    return this.active.siteId;
  }

  /** The router of the active site, while there is one (for observers: metrics, debug). */
  get dataPlane(): DataPlane | undefined {
    return this.active.router;
  }

  async start(): Promise<void> {
    this.active.siteId = (await this.host.state.identity()).siteId;
    for (const [token, credentials] of await this.host.state.pendingRedemptions()) this.pending.set(token, credentials);
    await this.ctx.cache.load();
    // The Site first, so the others find it active and their first status is their real one.
    this.ctx.enqueueAll("Site", "RouterAccess", "Secret", "Link", "Listener", "Connector", "MultiKeyListener", "Certificate", "AccessGrant", "AccessToken", ...INERT_KINDS);
    this.ctx.enqueue(NETWORK_STATUS);
    this.unwatch = this.host.resources.watch((event) => this.onEvent(event));
    await this.settled();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unwatch?.();
    this.queue.stop();
    this.tokens.stop();
    await this.events;
    await this.queue.idle();
    await this.site.stop();
    this.backends?.close();
    await this.host.network?.close();
    await this.ctx.status.idle();
  }

  /** Resolves when no event or reconcile is running or waiting (delayed retries excepted). */
  async settled(): Promise<void> {
    for (;;) {
      const events = this.events;
      await events;
      await this.queue.idle();
      await this.ctx.status.idle();
      if (events === this.events) return;
    }
  }

  /** The view of the network now (what is published, computed afresh). */
  networkStatus(): NetworkStatus {
    return networkStatus(this.ctx, this.grantServer);
  }

  /** The Site this controller runs, as last reconciled; undefined when none is active. */
  activeSite(): Site | undefined {
    return this.active.router ? this.active.site : undefined;
  }

  // ---- requests from clients ----

  async generateLink(request: LinkBundleRequest): Promise<{ link: Link; secret: Secret }> {
    const { site, plan, siteCa, siteId } = this.active;
    const nsFlag = namespaceFlag(this.host.namespace);
    if (!site) throw new SkupperError("ERR_NO_SITE", `There is no site in namespace "${this.host.namespace}". Create one with "skupper${nsFlag} site create <name>".`);
    if (!linkAccessEnabled(site)) throw linkAccessNotEnabled();
    if (!plan || !siteCa || !this.active.linkAccess) {
      throw new SkupperError("ERR_SITE_NOT_READY", `The site "${site.metadata.name}" has not set up link access yet; check "skupper${nsFlag} site status"`);
    }
    const host = request.host ?? plan.hosts[0];
    if (!host) throw new SkupperError("ERR_SITE_NOT_READY", "The site has no advertised host; set one with --host");
    return issueGeneratedLink(siteCa, request, { siteId, siteName: site.metadata.name, host, port: plan.linkPort });
  }

  async revokeAccess(): Promise<void> {
    const site = this.active.site;
    if (!site) throw new SkupperError("ERR_NO_SITE", `There is no site in namespace "${this.host.namespace}"`);
    if (siteIssuer(site) !== SITE_CA) throw revokeWithUserIssuer(site);
    log.info(`revoking access to site "${site.metadata.name}": replacing its CA and deleting every access grant`);
    for (const grant of this.ctx.cache.list("AccessGrant")) await this.host.resources.delete("AccessGrant", grant.metadata.name);
    for (const name of [SITE_CA, SITE_SERVER, GRANT_SERVER]) await this.host.credentials.remove(name);
    // Incoming links were made with the old CA: close them all; the site listens again with the new one.
    await this.active.router?.setLinkServer(undefined);
    this.site.reconfigure();
    this.ctx.enqueueAll("Site", "AccessGrant");
    await this.settled();
  }

  // ---- the queue ----

  private onEvent(event: WatchEvent): void {
    this.events = this.events.then(async () => {
      if (this.stopped) return;
      try {
        await this.ctx.cache.refresh(event.kind, event.name);
      } catch (err) {
        log.warn(`cannot read ${event.kind} "${event.name}": ${(err as Error).message}`);
      }
      this.ctx.enqueue(event.kind, event.name);
    });
  }

  private async process(key: string): Promise<ReconcileResult> {
    if (this.stopped) return;
    if (key === ROUTER_CHANGED) return this.routerChanged();
    if (key === NETWORK_STATUS) {
      const view = networkStatus(this.ctx, this.grantServer);
      await this.host.state.publishNetworkStatus(view);
      this.onPublished?.();
      return;
    }
    const slash = key.indexOf("/");
    const kind = key.slice(0, slash) as Kind;
    const reconciler = this.reconcilers.get(kind);
    if (!reconciler) return;
    return reconciler.reconcile(key.slice(slash + 1));
  }

  /** Shows a failed reconcile on the resource: its Configured condition, as an Error. */
  private async failed(key: string, error: Error, retryInMs: number): Promise<void> {
    const retry = `retrying in ${Math.max(1, Math.round(retryInMs / 1000))} s`;
    const message = `${error instanceof ReconcileError ? error.message : `reconciling ${key} failed: ${error.message}`}; ${retry}`;
    log.error(`${message}${error.stack && !(error instanceof ReconcileError) ? `\n${error.stack}` : ""}`);
    const slash = key.indexOf("/");
    if (slash < 0) return;
    const kind = key.slice(0, slash) as Kind;
    const name = key.slice(slash + 1);
    if (kind === "Secret") return;
    await this.ctx.status
      .write(kind, name, () => {
        const resource = this.ctx.cache.live(kind, name) as { status?: Record<string, unknown> & { conditions?: [] }; metadata: { generation?: number } } | undefined;
        if (!resource) return undefined;
        const now = new Date().toISOString();
        const conditions = setCondition(resource.status?.conditions ?? [], ConditionType.Configured, failed(message), now);
        return { ...resource.status, conditions, status: "Error", message, observedGeneration: resource.metadata.generation ?? 1 } as never;
      })
      .catch((err: Error) => log.warn(`cannot show the failure on ${key}: ${err.message}`));
  }

  /** The router's status changed: reconcile the resources whose part of it changed. */
  private async routerChanged(): Promise<void> {
    const router = this.active.router;
    if (!router) return;
    const status = router.status();
    const seen = new Map<string, string>();
    for (const link of status.outgoing) seen.set(resourceKey("Link", link.name), JSON.stringify(link));
    for (const listener of status.listeners) seen.set(resourceKey("Listener", listener.name), JSON.stringify(listener));
    for (const connector of status.connectors) {
      // A connector with a selector is one router connector per backend: one key for them all.
      const key = resourceKey("Connector", connectorResourceName(connector.name));
      seen.set(key, (seen.get(key) ?? "") + JSON.stringify(connector));
    }
    for (const key of new Set([...seen.keys(), ...this.routerSeen.keys()])) {
      if (seen.get(key) !== this.routerSeen.get(key)) {
        const [kind, name] = [key.slice(0, key.indexOf("/")) as "Link" | "Listener" | "Connector", key.slice(key.indexOf("/") + 1)];
        const [servedKind, servedName] = kind === "Listener" ? listenerResourceOf(name) : [kind, name];
        if (servedKind === "MultiKeyListener") await this.multiKey.writeStatus(servedName);
        else await this.bindings.find((b) => b.kind === kind)?.writeStatus(name);
      }
    }
    this.routerSeen = seen;
    await this.site.refreshStatus();
    await this.host.state.publishNetworkStatus(networkStatus(this.ctx, this.grantServer));
    this.onPublished?.();
  }
}
