/**
 * Site and RouterAccess: which Site is active (the first by name), its router, its CAs and
 * server certificates, the link server and the grant server; their status.
 */
import {
  activeSiteOf,
  ConditionType,
  failed,
  inactiveSiteMessage,
  linkAccessEnabled,
  NETWORK_STATUS_SCHEMA,
  pending,
  ready,
  requiredConditions,
  ROUTER_GROUP,
  setCondition,
  SiteSetting,
  withAggregate,
  type NetworkStatus,
  type RouterAccess,
  type RouterAccessStatus,
  type Site,
  type SiteStatus,
} from "../../api/index.js";
import { ensureCA, ensureLeaf, uniqueHosts, type CredentialSlot, type Credentials } from "../../certs/index.js";
import { siteIssuer, userIssuer } from "../../grants/index.js";
import { Backoff, type BackoffOptions } from "../../common/backoff.js";
import { logger } from "../../common/log.js";
import type { CredentialStore } from "../../platform/index.js";
import { certificateHosts, planAccess, type AccessPlan } from "../access.js";
import { finishIfDeleted, NO_ACTIVE_SITE, NETWORK_STATUS, ROUTER_CHANGED, step, type ControllerContext, type GrantServerPort, type Reconciler } from "../context.js";
import { siteStatus } from "../site.js";
import type { ReconcileResult } from "../work-queue.js";

const log = logger("controller");

// The credentials' names are the API's (clients read them too); kept exported here for the controller's users.
import { GRANT_CA, GRANT_SERVER, SITE_CA, SITE_SERVER } from "../../api/index.js";
export { GRANT_CA, GRANT_SERVER, SITE_CA, SITE_SERVER };

/** Every kind whose status depends on whether a site is active. */
const SITE_DEPENDENTS = ["Link", "Listener", "Connector", "MultiKeyListener", "AccessGrant", "AccessToken", "RouterAccess"] as const;

export function slot(credentials: CredentialStore, name: string): CredentialSlot {
  return { load: () => credentials.load(name), save: (value) => credentials.save(name, value) };
}

export class SiteReconciler implements Reconciler {
  readonly kind = "Site";
  /** Site spec and RouterAccess specs last applied; access is configured again when they change. */
  private applied: string | undefined;
  /** Retries of a link or grant server port that could not be bound (in use, say). */
  private readonly bindRetry: Backoff;
  /** Inactive Sites already logged, with the active one named then. */
  private readonly warnedInactive = new Map<string, string>();

  constructor(
    private readonly ctx: ControllerContext,
    private readonly grantServer: GrantServerPort,
    backoff: Partial<BackoffOptions> = {},
  ) {
    this.bindRetry = new Backoff({ initialMs: 1000, maxMs: 60_000, ...backoff });
  }

  async reconcile(name: string): Promise<ReconcileResult> {
    const { ctx } = this;
    const active = this.chooseActive();
    if (ctx.active.router && ctx.active.router.identity.siteName !== active?.metadata.name) {
      await step("stopping the site", () => this.deactivate());
    }
    if (await finishIfDeleted(ctx, "Site", name)) {
      this.warnedInactive.delete(name);
      if (active && active.metadata.name !== name) ctx.enqueue("Site", active.metadata.name);
      ctx.enqueue(NETWORK_STATUS);
      return;
    }
    const resource = ctx.cache.get("Site", name) as Site;
    if (!active || active.metadata.name !== name) {
      const activeName = active?.metadata.name ?? "";
      const message = inactiveSiteMessage(activeName);
      if (this.warnedInactive.get(name) !== activeName) {
        log.warn(`namespace "${ctx.namespace}" has several Sites: "${activeName}" runs, "${name}" gets nothing (one site per namespace)`);
        this.warnedInactive.set(name, activeName);
      }
      // Running False as well: only the active Site's is ever True, which is how a restart finds it again.
      await this.writeStatus(resource, (conditions, now) => {
        const configured = setCondition(conditions, ConditionType.Configured, failed(message), now);
        return withAggregate({ conditions: setCondition(configured, ConditionType.Running, pending(`Site "${activeName}" runs in this namespace`), now) }, requiredConditions("Site"), now);
      });
      return;
    }
    this.warnedInactive.delete(name);
    const started = await step("starting the site", () => this.activate(resource));
    await step("configuring link access", () => this.configureAccess(resource));
    if (ctx.state.belongTo) await step("tying the site's keys and state to it", () => ctx.state.belongTo!(resource));
    // A port that could not be bound is tried again, with backoff, until it can (its user may
    // free it); the servers already listening are left as they are.
    let retry: ReconcileResult = undefined;
    if (ctx.active.resolvedProblem) {
      this.applied = undefined;
      retry = { retryAfterMs: this.bindRetry.next() };
    } else {
      this.bindRetry.reset();
    }
    // A router just started has none of the Links, Listeners and Connectors yet, so its network
    // would show up empty in the status until they are applied (on every restart, a status
    // rewritten twice). activate() queued them and this Site again: that run writes the status.
    if (started) return retry;
    await this.writeActiveStatus(resource);
    ctx.enqueue(NETWORK_STATUS);
    return retry;
  }

  /** Called when the router reports a change: refreshes the active Site's status only. */
  async refreshStatus(): Promise<void> {
    const site = this.ctx.active.site;
    if (site && this.ctx.active.router) await this.writeActiveStatus(this.ctx.cache.live("Site", site.metadata.name) ?? site);
  }

  /** Forgets the applied access settings, so the next reconcile configures access again. */
  reconfigure(): void {
    this.applied = undefined;
  }

  async stop(): Promise<void> {
    await this.ctx.active.router?.close();
    await this.grantServer.close();
  }

  /** The Site already active, else the one whose status says it ran, else the first by name (see api/sites.ts). */
  private chooseActive(): Site | undefined {
    return activeSiteOf(this.ctx.cache.list("Site"), this.ctx.active.site?.metadata.name);
  }

  /** Makes `site` the active one; true if its router was started now. */
  private async activate(site: Site): Promise<boolean> {
    const { ctx } = this;
    ctx.active.site = site;
    if (ctx.active.router) return false;
    log.info(`site "${site.metadata.name}" (${ctx.active.siteId}) is active in namespace "${ctx.namespace}"`);
    if (site.spec.ha) log.warn(`site "${site.metadata.name}": HA is not supported on this platform; ignored`);
    ctx.active.router = ctx.createDataPlane(
      { siteId: ctx.active.siteId, siteName: site.metadata.name, namespace: ctx.namespace, version: ctx.version },
      { onChange: () => ctx.enqueue(ROUTER_CHANGED) },
    );
    this.applied = undefined;
    ctx.enqueueAll(...SITE_DEPENDENTS, "Site");
    return true;
  }

  private async deactivate(): Promise<void> {
    const { ctx } = this;
    const router = ctx.active.router;
    if (router) log.info(`site "${router.identity.siteName}" is no longer active`);
    ctx.active.router = undefined;
    ctx.active.site = undefined;
    ctx.active.plan = undefined;
    ctx.active.linkAccess = false;
    ctx.active.configuredProblem = undefined;
    ctx.active.resolvedProblem = undefined;
    this.applied = undefined;
    await router?.close();
    await this.grantServer.close();
    await ctx.network?.withdrawLinkAccess();
    ctx.enqueueAll(...SITE_DEPENDENTS, "Site");
  }

  /** The site's CAs and server certificates, the link server and the grant server. */
  private async configureAccess(site: Site): Promise<void> {
    const { ctx } = this;
    const accesses = ctx.cache.list("RouterAccess");
    const issuerName = siteIssuer(site);
    const issuerSecret = issuerName === SITE_CA ? undefined : ctx.cache.get("Secret", issuerName);
    const settings = JSON.stringify([site.spec, accesses.map((a) => a.spec), issuerSecret?.data, issuerSecret?.stringData]);
    if (settings === this.applied) return;
    this.applied = undefined;
    const router = ctx.active.router;
    if (!router) return;
    const issuer = issuerName === SITE_CA ? (await ensureCA(slot(ctx.credentials, SITE_CA), `${site.metadata.name} site CA`)).credentials : userIssuer(issuerName, issuerSecret);
    ctx.active.siteCa = typeof issuer === "string" ? undefined : issuer;
    const plan = planAccess(site, accesses);
    const problems = [...plan.problems];
    if (typeof issuer === "string") problems.push(issuer);
    let linkAccess = linkAccessEnabled(site);
    if (linkAccess && site.spec.edge) {
      problems.push("Edge sites cannot accept incoming links from remote sites");
      linkAccess = false;
    }
    ctx.active.plan = plan;
    ctx.active.configuredProblem = problems.length > 0 ? problems.join("; ") : undefined;
    ctx.active.resolvedProblem = undefined;
    ctx.active.linkAccess = false;
    if (linkAccess && problems.length === 0) {
      const exposed = await this.expose(site, plan);
      const hosts = certificateHosts(plan);
      const siteCa = ctx.active.siteCa as Credentials;
      const server = (await ensureLeaf(slot(ctx.credentials, SITE_SERVER), siteCa, { commonName: "skupper-router", hosts, usage: "server", siteId: ctx.active.siteId })).credentials;
      ctx.active.grantCa = (await ensureCA(slot(ctx.credentials, GRANT_CA), "skupper grant server CA")).credentials;
      const grantServerCert = (await ensureLeaf(slot(ctx.credentials, GRANT_SERVER), ctx.active.grantCa, { commonName: "skupper-grant-server", hosts, usage: "server" })).credentials;
      const linkServer = await router.setLinkServer({
        port: plan.bind.linkPort,
        ...(plan.bind.host ? { host: plan.bind.host } : {}),
        credentials: { ca: siteCa.cert, cert: server.cert, key: server.key },
      });
      const unresolved: string[] = [];
      if (linkServer.state === "error") unresolved.push(linkServer.message);
      try {
        await this.grantServer.configure({
          port: plan.bind.grantServerPort,
          ...(plan.bind.host ? { host: plan.bind.host } : {}),
          cert: grantServerCert.cert,
          key: grantServerCert.key,
        });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        unresolved.push(
          code === "EADDRINUSE"
            ? `the grant server port ${plan.bind.grantServerPort} is already in use; choose another one`
            : `cannot start the grant server on port ${plan.bind.grantServerPort}: ${(err as Error).message}`,
        );
      }
      if (exposed !== true) unresolved.push(exposed);
      ctx.active.resolvedProblem = unresolved.length > 0 ? unresolved.join("; ") : undefined;
      ctx.active.linkAccess = unresolved.length === 0;
    } else {
      await router.setLinkServer(undefined);
      await this.grantServer.close();
      await ctx.network?.withdrawLinkAccess();
      ctx.active.grantCa = await ctx.credentials.load(GRANT_CA);
    }
    this.applied = settings;
    // Grant URLs and RouterAccess endpoints follow the hosts and ports.
    ctx.enqueueAll("AccessGrant", "RouterAccess");
  }

  /**
   * On a platform that exposes link access itself (a Kubernetes Service), takes the hosts (unless
   * configured) and ports remote sites use from it; true, or why it is not reachable yet.
   */
  private async expose(site: Site, plan: AccessPlan): Promise<true | string> {
    const network = this.ctx.network;
    if (!network) return true;
    const exposure = await network.exposeLinkAccess(site, { linkPort: plan.bind.linkPort, grantServerPort: plan.bind.grantServerPort });
    if ("pending" in exposure) return exposure.pending;
    if (plan.hostsDetected && exposure.hosts.length === 0) {
      return `no address is known where remote sites reach this site; set the site setting "${SiteSetting.advertisedHosts}"`;
    }
    if (plan.hostsDetected) plan.hosts = exposure.hosts;
    else plan.hosts = uniqueHosts([...plan.hosts, ...exposure.hosts]);
    plan.linkPort = exposure.linkPort;
    plan.grantServerPort = exposure.grantServerPort;
    return true;
  }

  private async writeActiveStatus(site: Site): Promise<void> {
    const { active } = this.ctx;
    await this.writeStatus(site, (conditions, now) => {
      const status = siteStatus(
        conditions,
        {
          ...(active.configuredProblem ? { configuredProblem: active.configuredProblem } : {}),
          running: active.router !== undefined,
          linkAccess: linkAccessEnabled(site) && !site.spec.edge,
          ...(active.plan ? { plan: active.plan } : {}),
          ...(active.resolvedProblem ? { resolvedProblem: active.resolvedProblem } : {}),
          ...(active.router ? { router: active.router.status() } : {}),
          namespace: this.ctx.namespace,
          version: this.ctx.version,
          issuer: siteIssuer(site),
        },
        now,
      );
      return status;
    });
  }

  private async writeStatus(site: Site, build: (conditions: SiteStatus["conditions"], now: string) => SiteStatus): Promise<void> {
    const name = site.metadata.name;
    await this.ctx.status.write("Site", name, () => {
      const current = this.ctx.cache.get("Site", name) ?? site;
      const status = build(current.status?.conditions ?? [], new Date().toISOString());
      return { ...status, observedGeneration: current.metadata.generation ?? 1 };
    });
  }
}

export class RouterAccessReconciler implements Reconciler {
  readonly kind = "RouterAccess";

  constructor(private readonly ctx: ControllerContext) {}

  async reconcile(name: string): Promise<ReconcileResult> {
    const { ctx } = this;
    // Its hosts and ports are part of the site's access settings.
    if (ctx.active.site) ctx.enqueue("Site", ctx.active.site.metadata.name);
    if (await finishIfDeleted(ctx, "RouterAccess", name)) return;
    await ctx.status.write("RouterAccess", name, () => {
      const access = ctx.cache.live("RouterAccess", name);
      return access && this.status(access);
    });
  }

  private status(access: RouterAccess): RouterAccessStatus {
    const { active } = this.ctx;
    const now = new Date().toISOString();
    const noSite = !active.router;
    let conditions = access.status?.conditions ?? [];
    const configured = noSite ? NO_ACTIVE_SITE : active.configuredProblem;
    const resolved = active.resolvedProblem ?? (active.plan && active.site && linkAccessEnabled(active.site) ? undefined : "Link access is not enabled");
    conditions = setCondition(conditions, ConditionType.Configured, configured ? failed(configured) : ready(), now);
    // With invalid settings neither server is started: not resolved, for the reason Configured gives.
    const unresolvable = !resolved && active.configuredProblem ? pending(active.configuredProblem) : undefined;
    conditions = setCondition(conditions, ConditionType.Resolved, unresolvable ?? (resolved ? failed(resolved) : ready()), now);
    const status: RouterAccessStatus = withAggregate({ conditions }, requiredConditions("RouterAccess"), now);
    if (!status.message || status.status === "Ready") {
      const plan = active.plan;
      if (plan) status.endpoints = plan.hosts.map((host) => ({ name: "inter-router", host, port: String(plan.linkPort), group: ROUTER_GROUP }));
    }
    return { ...status, observedGeneration: access.metadata.generation ?? 1 };
  }
}

/** The view of the network this site publishes for clients. */
export function networkStatus(ctx: ControllerContext, grantServer: GrantServerPort): NetworkStatus {
  const { active } = ctx;
  const router = active.router?.status();
  const site = active.site;
  return {
    schema: NETWORK_STATUS_SCHEMA,
    siteId: active.siteId,
    siteName: site?.metadata.name ?? "",
    namespace: ctx.namespace,
    version: ctx.version,
    ...(active.plan && site && linkAccessEnabled(site)
      ? {
          linkAccess: {
            hosts: active.plan.hosts,
            linkPort: active.plan.linkPort,
            grantServerPort: active.plan.grantServerPort,
            linkServer: router?.linkServer.message ?? "",
            grantServer: grantServer.listening ? "OK" : (active.resolvedProblem ?? "not listening"),
          },
        }
      : {}),
    ...(active.grantCa ? { grantServerCa: active.grantCa.cert } : {}),
    ...(router ? { router } : {}),
    inputProblems: [],
  };
}

