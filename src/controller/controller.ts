/**
 * The site controller: reads desired state from the store, configures the router and the grant
 * server, redeems tokens, and writes status back. Changes in input apply live.
 */
import { randomUUID } from "node:crypto";
import path from "node:path";
import {
  ConditionType,
  failed,
  linkAccessEnabled,
  ready,
  requiredConditions,
  ROUTER_GROUP,
  setCondition,
  toYamlDocuments,
  withAggregate,
  type AccessToken,
  type Condition,
  type Resource,
  type ResourceByKind,
  type Site,
} from "../api/index.js";
import { ensureCA, ensureLeaf, canonicalHost, isValidSiteId, loadCredentials, type Credentials } from "../certs/index.js";
import { Backoff } from "../common/backoff.js";
import { readFileIfExists, writeFileAtomic } from "../common/files.js";
import { logger } from "../common/log.js";
import { GrantServer, Header, Refusal, type GrantRecord, type RedeemedCredentials, type RedemptionRequest } from "../grants/index.js";
import { Router, type RouterStatus } from "../router/index.js";
import { FILE_MODE, resourceKey, type InputSnapshot, type LocalStore } from "../store/index.js";
import { certificateHosts, formatHostPort, planAccess, type AccessPlan } from "./access.js";
import { GrantBook } from "./grants.js";
import { issueLinkBundle, linkStatus, planLinks, type LinkPlan } from "./links.js";
import { RedemptionJournal } from "./redemption-journal.js";
import { RuntimeWriter } from "./runtime-writer.js";
import { connectorStatus, listenerStatus, planConnectors, planListeners, type ServicePlan } from "./services.js";
import { siteStatus } from "./site.js";
import { Annotation, conflictWith, CredentialConflictError, TokenRedeemer } from "./tokens.js";
import type { ConnectorConfig, ListenerConfig } from "../router/index.js";

const log = logger("controller");

export const SITE_CA = "skupper-site-ca";
export const SITE_SERVER = "skupper-site-server";
export const GRANT_CA = "skupper-grant-server-ca";
export const GRANT_SERVER = "skupper-grant-server";

export interface ControllerOptions {
  version: string;
}

/** Persistent identity of the site process's site (survives restarts). */
interface SiteState {
  siteId: string;
}

/** What `runtime/network-status.json` holds: the site's view of the network, for the CLI. */
export interface NetworkStatusFile {
  siteId: string;
  siteName: string;
  namespace: string;
  version: string;
  linkAccess?: {
    hosts: string[];
    linkPort: number;
    grantServerPort: number;
    linkServer: string;
    grantServer: string;
  };
  router?: RouterStatus;
  inputProblems: string[];
}

/** The kinds of resource whose reconcile can fail on its own (the Site's covers link access). */
type FailureScope = "Site" | "AccessGrant" | "AccessToken" | "Link" | "Listener" | "Connector";

/** A status with `failure` shown as its Configured condition and as the resource's state. */
function withFailure<T extends { conditions?: Condition[]; status?: string; message?: string }>(status: T | undefined, failure: string | undefined, now: string): T | undefined {
  if (!status || !failure) return status;
  return { ...status, conditions: setCondition(status.conditions ?? [], ConditionType.Configured, failed(failure), now), status: "Error", message: failure };
}

export class SiteController {
  private router: Router | undefined;
  private readonly grantServer: GrantServer;
  private readonly grants: GrantBook;
  private readonly tokens: TokenRedeemer;
  private readonly writer: RuntimeWriter;
  private readonly journal: RedemptionJournal;
  private snapshot: InputSnapshot = { resources: [], problems: [], sources: new Map() };
  private active: Site | undefined;
  private state: SiteState | undefined;
  private plan: AccessPlan | undefined;
  private siteCa: Credentials | undefined;
  private grantCa: Credentials | undefined;
  private configuredProblem: string | undefined;
  private resolvedProblem: string | undefined;
  private linkPlan: LinkPlan = { configs: [], problems: new Map() };
  private listenerPlan: ServicePlan<ListenerConfig> = { configs: [], problems: new Map() };
  private connectorPlan: ServicePlan<ConnectorConfig> = { configs: [], problems: new Map() };
  private readonly conditions = new Map<string, Condition[]>();
  private stopWatching: (() => void) | undefined;
  private running: Promise<void> | undefined;
  private rerun: { reload: boolean } | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private reportedProblems = new Set<string>();
  /**
   * The parts of the last reconcile that failed, by the kind of resource they concern, with the
   * sentence shown on those resources until a retry succeeds.
   */
  private readonly failures = new Map<FailureScope, string>();
  private readonly retryBackoff = new Backoff({ initialMs: 500, maxMs: 30_000 });
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly store: LocalStore,
    private readonly options: ControllerOptions,
  ) {
    this.writer = new RuntimeWriter(store);
    this.journal = new RedemptionJournal(path.join(store.paths.runtime, "redemptions"));
    this.grants = new GrantBook({
      issue: (grant, request) => this.issueCredentials(grant, request),
      persist: (name) => this.writeGrant(name),
    });
    this.grantServer = new GrantServer(this.grants);
    this.tokens = new TokenRedeemer({
      context: () =>
        this.active && this.state
          ? { siteId: this.state.siteId, siteName: this.active.metadata.name, ...(this.grantCa ? { ownGrantCa: this.grantCa.cert } : {}) }
          : undefined,
      linkedSites: () => this.linkedSites(),
      linkTo: (siteId) => this.linkTo(siteId),
      nameConflict: (name, token) => this.nameConflict(name, token),
      linksCreatedBy: (token) => this.linksCreatedBy(token),
      save: (token, credentials) => this.saveCredentials(token, credentials),
      pendingCredentials: (token) => this.journal.get(token),
      dropPendingCredentials: (token) => this.journal.remove(token),
      persistStatus: (name) => this.writeTokenStatus(name),
      changed: () => this.schedule(false),
    });
  }

  async start(): Promise<void> {
    await this.store.ensureDirectories();
    this.state = await this.loadState();
    await this.journal.load();
    this.stopWatching = this.store.watchInput(() => this.schedule(true));
    this.schedule(true);
    await this.settled();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopWatching?.();
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.tokens.stop();
    await this.running;
    await this.router?.close();
    await this.grantServer.close();
    await this.writer.idle();
  }

  /** Resolves when no reconcile is running or queued. */
  async settled(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Queues a reconcile; `reload` re-reads input, otherwise only status is refreshed. */
  schedule(reload: boolean): void {
    if (this.stopped) return;
    if (this.running) {
      this.rerun = { reload: reload || (this.rerun?.reload ?? false) };
      return;
    }
    this.running = this.reconcile(reload)
      .catch((err: Error) => {
        // Only status publication can get here (input errors are kept per kind): retry it all.
        log.error(`reconcile failed: ${err.stack ?? err.message}`);
        this.scheduleRetry();
      })
      .finally(() => {
        this.running = undefined;
        const again = this.rerun;
        this.rerun = undefined;
        if (again) this.schedule(again.reload);
      });
  }

  private async reconcile(reload: boolean): Promise<void> {
    if (reload) {
      if (this.retryTimer) clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
      await this.applyInput();
      if (this.failures.size > 0) this.scheduleRetry();
      else this.retryBackoff.reset();
    }
    await this.publishStatus();
    // Re-armed after every status pass, so each grant's expiry shows, not only the first one's.
    if (!this.stopped) this.scheduleExpiryRefresh();
  }

  /** Applies the whole input again after a failure, with a growing delay until it succeeds. */
  private scheduleRetry(): void {
    if (this.stopped || this.retryTimer) return;
    const delay = this.retryBackoff.next();
    for (const [scope, message] of this.failures) this.failures.set(scope, `${message}; retrying in ${Math.max(1, Math.round(delay / 1000))} s`);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.schedule(true);
    }, delay);
    this.retryTimer.unref();
  }

  /**
   * Runs one part of applying the input. A failure is logged, kept for the status of the
   * resources of `scope`, and leaves the other parts to run: each part is idempotent and the
   * whole input is applied again on retry.
   */
  private async step(scope: FailureScope, what: string, work: () => Promise<void> | void): Promise<boolean> {
    try {
      await work();
      return true;
    } catch (err) {
      const message = `${what} failed: ${(err as Error).message}`;
      log.error(`${message}${(err as Error).stack ? `\n${(err as Error).stack}` : ""}`);
      this.failures.set(scope, message);
      return false;
    }
  }

  // ---- desired state → router, grant server, redemptions ----

  private async applyInput(): Promise<void> {
    this.failures.clear();
    const read = await this.step("Site", "reading the input resources", async () => {
      this.snapshot = await this.store.readInput();
    });
    if (!read) return;
    for (const problem of this.snapshot.problems) {
      if (!this.reportedProblems.has(problem)) log.warn(`input: ${problem}`);
    }
    this.reportedProblems = new Set(this.snapshot.problems);

    const sites = this.list("Site").sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
    const active = sites.find((s) => s.metadata.name === this.active?.metadata.name) ?? sites[0];
    if (!active) {
      await this.step("Site", "stopping the site", () => this.deactivate());
      await this.step("AccessToken", "updating access tokens", () => this.tokens.sync(this.list("AccessToken"), new Map()));
      return;
    }
    const state = this.state as SiteState;
    if (this.router && this.router.identity.siteName !== active.metadata.name) {
      if (!(await this.step("Site", "stopping the previous site", () => this.deactivate()))) return;
    }
    this.active = active;
    if (!this.router) {
      log.info(`site "${active.metadata.name}" (${state.siteId}) is active in namespace "${this.store.paths.namespace}"`);
      this.router = new Router(
        { siteId: state.siteId, siteName: active.metadata.name, namespace: this.store.paths.namespace, version: this.options.version },
        { onChange: () => this.schedule(false) },
      );
    }
    const router = this.router;
    if (active.spec.ha) log.warn(`site "${active.metadata.name}": HA is not supported on this platform; ignored`);

    await this.step("Site", "configuring link access", () => this.configureAccess(active, router));
    await this.step("AccessGrant", "updating access grants", async () => this.grants.sync(this.list("AccessGrant"), await this.runtimeMap("AccessGrant")));
    await this.step("AccessToken", "updating access tokens", async () => this.tokens.sync(this.list("AccessToken"), await this.runtimeMap("AccessToken")));
    await this.step("Link", "configuring links", () => {
      const secrets = new Map(this.list("Secret").map((s) => [s.metadata.name, s]));
      this.linkPlan = planLinks(this.list("Link"), secrets);
      router.setOutgoingLinks(this.linkPlan.configs);
    });
    await this.step("Listener", "configuring listeners", () => {
      this.listenerPlan = planListeners(this.list("Listener"));
      router.setListeners(this.listenerPlan.configs);
    });
    await this.step("Connector", "configuring connectors", () => {
      this.connectorPlan = planConnectors(this.list("Connector"));
      router.setConnectors(this.connectorPlan.configs);
    });
  }

  /** The site's CAs and server certificates, the link server and the grant server. */
  private async configureAccess(active: Site, router: Router): Promise<void> {
    this.configuredProblem = undefined;
    this.resolvedProblem = undefined;
    this.siteCa = (await ensureCA(this.store.paths.issuer(SITE_CA), `${active.metadata.name} site CA`)).credentials;
    const plan = planAccess(active, this.list("RouterAccess"));
    this.plan = plan;
    const problems = [...plan.problems];
    let linkAccess = linkAccessEnabled(active);
    if (linkAccess && active.spec.edge) {
      problems.push("Edge sites cannot accept incoming links from remote sites");
      linkAccess = false;
    }
    if (problems.length > 0) this.configuredProblem = problems.join("; ");

    if (linkAccess && problems.length === 0) {
      const hosts = certificateHosts(plan);
      const server = (await ensureLeaf(this.store.paths.cert(SITE_SERVER), this.siteCa, { commonName: "skupper-router", hosts, usage: "server", siteId: (this.state as SiteState).siteId })).credentials;
      this.grantCa = (await ensureCA(this.store.paths.issuer(GRANT_CA), "skupper grant server CA")).credentials;
      const grantServerCert = (await ensureLeaf(this.store.paths.cert(GRANT_SERVER), this.grantCa, { commonName: "skupper-grant-server", hosts, usage: "server" })).credentials;
      const linkServer = await router.setLinkServer({
        port: plan.linkPort,
        ...(plan.bindHost ? { host: plan.bindHost } : {}),
        credentials: { ca: this.siteCa.cert, cert: server.cert, key: server.key },
      });
      const unresolved: string[] = [];
      if (linkServer.state === "error") unresolved.push(linkServer.message);
      try {
        await this.grantServer.configure({
          port: plan.grantServerPort,
          ...(plan.bindHost ? { host: plan.bindHost } : {}),
          cert: grantServerCert.cert,
          key: grantServerCert.key,
        });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        unresolved.push(
          code === "EADDRINUSE"
            ? `the grant server port ${plan.grantServerPort} is already in use; choose another one`
            : `cannot start the grant server on port ${plan.grantServerPort}: ${(err as Error).message}`,
        );
      }
      if (unresolved.length > 0) this.resolvedProblem = unresolved.join("; ");
    } else {
      await router.setLinkServer(undefined);
      await this.grantServer.close();
      this.grantCa = await loadCredentials(this.store.paths.issuer(GRANT_CA));
    }
  }

  private async deactivate(): Promise<void> {
    if (this.router) log.info(`site "${this.router.identity.siteName}" is no longer active`);
    await this.router?.close();
    this.router = undefined;
    this.active = undefined;
    await this.grantServer.close();
  }

  // ---- status ----

  private async publishStatus(): Promise<void> {
    const now = new Date().toISOString();
    const routerStatus = this.router?.status();
    const writes: Array<Promise<void>> = [];
    const expected = new Set<string>();
    const write = <K extends Resource["kind"]>(resource: ResourceByKind[K], status: Record<string, unknown> | undefined) => {
      const key = resourceKey(resource.kind, resource.metadata.name);
      expected.add(key);
      const { status: _ignored, ...desired } = resource as Resource & { status?: unknown };
      writes.push(this.writer.write(resource.kind, resource.metadata.name, () => ({ ...desired, status }) as Resource));
    };
    const noSite = !this.active;

    for (const site of this.list("Site")) {
      const key = resourceKey("Site", site.metadata.name);
      if (site === this.active || site.metadata.name === this.active?.metadata.name) {
        const status = siteStatus(
          this.conditions.get(key),
          {
            ...(this.siteProblem() ? { configuredProblem: this.siteProblem() } : {}),
            running: this.router !== undefined,
            linkAccess: linkAccessEnabled(site) && !site.spec.edge,
            ...(this.plan ? { plan: this.plan } : {}),
            ...(this.resolvedProblem ? { resolvedProblem: this.resolvedProblem } : {}),
            ...(routerStatus ? { router: routerStatus } : {}),
            namespace: this.store.paths.namespace,
            version: this.options.version,
          },
          now,
        );
        this.conditions.set(key, status.conditions ?? []);
        write(site, { ...status });
      } else {
        const message = `An active site already exists in the namespace (${this.active?.metadata.name})`;
        write(site, this.simpleStatus(key, [[ConditionType.Configured, message]], requiredConditions("Site"), now));
      }
    }

    for (const link of this.list("Link")) {
      const key = resourceKey("Link", link.metadata.name);
      const problem = noSite ? "No active site in namespace" : (this.failures.get("Link") ?? this.linkPlan.problems.get(link.metadata.name));
      const status = linkStatus(this.conditions.get(key), problem, routerStatus?.outgoing.find((o) => o.name === link.metadata.name), now);
      this.conditions.set(key, status.conditions ?? []);
      write(link, { ...status });
    }

    for (const listener of this.list("Listener")) {
      const key = resourceKey("Listener", listener.metadata.name);
      const problem = noSite ? "No active site" : (this.failures.get("Listener") ?? this.listenerPlan.problems.get(listener.metadata.name));
      const status = listenerStatus(this.conditions.get(key), problem, routerStatus?.listeners.find((l) => l.name === listener.metadata.name), now);
      this.conditions.set(key, status.conditions ?? []);
      write(listener, { ...status });
    }

    for (const connector of this.list("Connector")) {
      const key = resourceKey("Connector", connector.metadata.name);
      const problem = noSite ? "No active site" : (this.failures.get("Connector") ?? this.connectorPlan.problems.get(connector.metadata.name));
      const status = connectorStatus(this.conditions.get(key), problem, routerStatus?.connectors.find((c) => c.name === connector.metadata.name), now);
      this.conditions.set(key, status.conditions ?? []);
      write(connector, { ...status });
    }

    for (const grant of this.list("AccessGrant")) {
      expected.add(resourceKey("AccessGrant", grant.metadata.name));
      writes.push(this.writeGrant(grant.metadata.name));
    }

    for (const token of this.list("AccessToken")) {
      write(token, withFailure(this.tokens.status(token.metadata.name, now), this.failures.get("AccessToken"), now) as Record<string, unknown> | undefined);
    }

    for (const access of this.list("RouterAccess")) {
      const key = resourceKey("RouterAccess", access.metadata.name);
      const problems: Array<[string, string | undefined]> = [
        [ConditionType.Configured, noSite ? "No active site" : this.siteProblem()],
        [ConditionType.Resolved, this.resolvedProblem ?? (this.plan && this.active && linkAccessEnabled(this.active) ? undefined : "Link access is not enabled")],
      ];
      const status = this.simpleStatus(key, problems, requiredConditions("RouterAccess"), now);
      if (!status.message || status.status === "Ready") {
        status.endpoints = this.plan?.hosts.map((host) => ({ name: "inter-router", host, port: String(this.plan?.linkPort), group: ROUTER_GROUP }));
      }
      write(access, status);
    }

    await Promise.all(writes);
    await this.removeStaleRuntime(expected);
    await this.writeNetworkStatus(routerStatus);
  }

  private simpleStatus(
    key: string,
    problems: Array<[string, string | undefined]>,
    required: readonly string[],
    now: string,
  ): Record<string, unknown> & { status?: string; message?: string; endpoints?: unknown } {
    let conditions = this.conditions.get(key) ?? [];
    for (const [type, problem] of problems) conditions = setCondition(conditions, type, problem ? failed(problem) : ready(), now);
    const status = withAggregate({ conditions }, required, now);
    this.conditions.set(key, status.conditions ?? []);
    return { ...status };
  }

  /** Writes a grant's runtime status with the count as it is now (serialised per file). */
  private writeGrant(name: string): Promise<void> {
    return this.writer.write("AccessGrant", name, () => {
      const input = this.list("AccessGrant").find((g) => g.metadata.name === name);
      const url = this.grantUrl(name);
      const grant = this.grants.runtimeResource(name, {
        ...(url ? { url } : {}),
        ...(this.grantCa && url ? { ca: this.grantCa.cert } : {}),
        linkAccess: !!this.active && linkAccessEnabled(this.active) && !this.active.spec.edge,
        ...(input?.metadata.generation !== undefined ? { generation: input.metadata.generation } : {}),
      });
      const failure = this.failures.get("AccessGrant");
      return grant && failure ? { ...grant, status: withFailure(grant.status, failure, new Date().toISOString()) } : grant;
    });
  }

  /** Why the site is not configured: its own settings, or a failure while applying them. */
  private siteProblem(): string | undefined {
    const problems = [this.configuredProblem, this.failures.get("Site")].filter((p): p is string => !!p);
    return problems.length > 0 ? problems.join("; ") : undefined;
  }

  private grantUrl(name: string): string | undefined {
    if (!this.plan || !this.active || !linkAccessEnabled(this.active) || this.resolvedProblem || this.configuredProblem) return undefined;
    const uid = this.grants.uidOf(name);
    const host = this.plan.hosts[0];
    if (!uid || !host) return undefined;
    return `https://${formatHostPort(host, this.plan.grantServerPort)}/${uid}`;
  }

  private scheduleExpiryRefresh(): void {
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    const next = this.grants.nextExpiry();
    if (next === undefined) return;
    this.expiryTimer = setTimeout(() => this.schedule(false), Math.min(2 ** 31 - 1, next - Date.now() + 50));
    this.expiryTimer.unref();
  }

  private async removeStaleRuntime(expected: Set<string>): Promise<void> {
    for (const kind of ["Site", "Link", "Listener", "Connector", "AccessGrant", "AccessToken", "RouterAccess"] as const) {
      for (const resource of await this.store.listRuntime(kind)) {
        const name = resource.metadata.name;
        if (!expected.has(resourceKey(kind, name))) {
          await this.writer.write(kind, name, () => undefined);
          this.conditions.delete(resourceKey(kind, name));
        }
      }
    }
  }

  private lastNetworkStatus = "";

  private async writeNetworkStatus(router: RouterStatus | undefined): Promise<void> {
    const file: NetworkStatusFile = {
      siteId: this.state?.siteId ?? "",
      siteName: this.active?.metadata.name ?? "",
      namespace: this.store.paths.namespace,
      version: this.options.version,
      ...(this.plan && this.active && linkAccessEnabled(this.active)
        ? {
            linkAccess: {
              hosts: this.plan.hosts,
              linkPort: this.plan.linkPort,
              grantServerPort: this.plan.grantServerPort,
              linkServer: router?.linkServer.message ?? "",
              grantServer: this.grantServer.listening ? "OK" : (this.resolvedProblem ?? "not listening"),
            },
          }
        : {}),
      ...(router ? { router } : {}),
      inputProblems: this.snapshot.problems,
    };
    const text = JSON.stringify(file, null, 2) + "\n";
    if (text === this.lastNetworkStatus) return;
    this.lastNetworkStatus = text;
    await writeFileAtomic(this.store.paths.networkStatusFile, text, { mode: FILE_MODE });
  }

  // ---- redemption (both ends) ----

  private async issueCredentials(grant: GrantRecord, request: RedemptionRequest): Promise<string> {
    const site = this.active;
    const plan = this.plan;
    const siteCa = this.siteCa;
    const siteId = this.state?.siteId;
    if (!site || !plan || !siteCa || !siteId || !this.router) throw new Error("the site is not ready to issue links");
    const issuer = { [Header.issuerSiteId]: siteId, [Header.issuerSiteName]: site.metadata.name };
    if (request.siteId === siteId) {
      throw new Refusal("self", `This token was issued by site "${site.metadata.name}" itself; a site cannot link to itself`, issuer);
    }
    if (request.siteId) {
      const status = this.router.status();
      const linked =
        request.linkedSites.includes(siteId) ||
        status.outgoing.some((o) => o.remoteSiteId === request.siteId) ||
        status.incoming.some((i) => i.remoteSiteId === request.siteId);
      if (linked) {
        throw new Refusal("duplicate", `Site "${request.siteName ?? request.siteId}" is already linked to site "${site.metadata.name}"`, issuer);
      }
    }
    const requested = request.host ? canonicalHost(request.host) : undefined;
    const host = plan.hosts.find((h) => canonicalHost(h) === requested) ?? (plan.hosts[0] as string);
    const { link, secret } = await issueLinkBundle(siteCa, {
      name: request.name,
      subject: request.subject,
      host,
      port: plan.linkPort,
      siteId,
      siteName: site.metadata.name,
      ...(request.siteId !== undefined && isValidSiteId(request.siteId) ? { clientSiteId: request.siteId } : {}),
    });
    log.info(`issuing link credentials "${request.name}" for grant ${grant.name} to ${request.siteName ?? request.subject}`);
    return toYamlDocuments([secret, link]);
  }

  /**
   * Journals a redemption's credentials in runtime, then writes its Secret and Links into input,
   * Secret first so a Link never appears without its credentials. Input is read again first: a
   * resource of one of those names that this token did not create (the snapshot may be older
   * than a user's last apply) is never replaced, and then nothing is written to input.
   */
  private async saveCredentials(token: AccessToken, credentials: RedeemedCredentials): Promise<void> {
    const tokenName = token.metadata.name;
    // On disk before anything else: a restart from here on writes these instead of redeeming again.
    if (this.journal.get(tokenName) !== credentials) await this.journal.write(tokenName, credentials);
    for (const resource of [credentials.secret, ...credentials.links]) {
      const existing = await this.store.getInput(resource.kind, resource.metadata.name);
      const conflict = conflictWith(resource.kind, resource.metadata.name, existing, tokenName);
      if (conflict) throw new CredentialConflictError(conflict);
    }
    await this.store.writeInput({ ...credentials.secret, metadata: { ...credentials.secret.metadata, generation: 1 } });
    for (const link of credentials.links) {
      await this.store.writeInput({ ...link, metadata: { ...link.metadata, generation: 1 } });
    }
  }

  /** Writes a token's runtime status now, so `redeemed: true` is on disk right after its Links. */
  private async writeTokenStatus(name: string): Promise<void> {
    const token = this.list("AccessToken").find((t) => t.metadata.name === name);
    if (!token) return;
    const { status: _ignored, ...desired } = token;
    await this.writer.write("AccessToken", name, () => ({ ...desired, status: this.tokens.status(name) }) as AccessToken);
  }

  private linksCreatedBy(token: string): string[] {
    return this.list("Link")
      .filter((link) => link.metadata.annotations?.[Annotation.accessToken] === token)
      .map((link) => link.metadata.name);
  }

  private linkedSites(): string[] {
    const ids = new Set<string>();
    const status = this.router?.status();
    for (const o of status?.outgoing ?? []) if (o.remoteSiteId) ids.add(o.remoteSiteId);
    for (const i of status?.incoming ?? []) ids.add(i.remoteSiteId);
    for (const link of this.list("Link")) {
      const id = link.metadata.annotations?.[Annotation.remoteSiteId];
      if (id) ids.add(id);
    }
    return [...ids];
  }

  private linkTo(siteId: string): string | undefined {
    const status = this.router?.status();
    const outgoing = status?.outgoing.find((o) => o.remoteSiteId === siteId)?.name;
    if (outgoing) return outgoing;
    const annotated = this.list("Link").find((l) => l.metadata.annotations?.[Annotation.remoteSiteId] === siteId);
    if (annotated) return annotated.metadata.name;
    const incoming = status?.incoming.find((i) => i.remoteSiteId === siteId);
    return incoming ? `${incoming.name}, incoming` : undefined;
  }

  private nameConflict(name: string, token: string): string | undefined {
    for (const kind of ["Link", "Secret"] as const) {
      const conflict = conflictWith(kind, name, this.list(kind).find((r) => r.metadata.name === name), token);
      if (conflict) return conflict;
    }
    return undefined;
  }

  // ---- helpers ----

  private list<K extends Resource["kind"]>(kind: K): Array<ResourceByKind[K]> {
    return this.snapshot.resources.filter((r): r is ResourceByKind[K] => r.kind === kind);
  }

  private async runtimeMap<K extends "AccessGrant" | "AccessToken">(kind: K): Promise<Map<string, ResourceByKind[K]>> {
    const list = await this.store.listRuntime(kind);
    return new Map(list.map((r) => [r.metadata.name, r]));
  }

  private async loadState(): Promise<SiteState> {
    const text = await readFileIfExists(this.store.paths.stateFile);
    if (text) {
      try {
        const parsed = JSON.parse(text) as Partial<SiteState>;
        if (typeof parsed.siteId === "string" && parsed.siteId) return { siteId: parsed.siteId };
      } catch {
        log.warn(`${this.store.paths.stateFile} is damaged; the site gets a new identity`);
      }
    }
    const state = { siteId: randomUUID() };
    await writeFileAtomic(this.store.paths.stateFile, JSON.stringify(state, null, 2) + "\n", { mode: FILE_MODE });
    return state;
  }
}
