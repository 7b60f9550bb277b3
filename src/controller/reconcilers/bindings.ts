/**
 * Link, Listener and Connector: each is planned together with the others of its kind (a
 * Listener's port may be taken by another, a Link needs its Secret), handed to the router as
 * one set (the router changes only what differs), and given its status from the router's.
 * Secret: a change reaches the Links, Listeners and Connectors that use it.
 */
import { linkSecretName, type Kind, type ResourceByKind, type Secret } from "../../api/index.js";
import type { DataPlane, RouterStatus } from "../../router/index.js";
import { finishIfDeleted, NO_ACTIVE_SITE, step, type ControllerContext, type Reconciler } from "../context.js";
import { linkStatus, planLinks } from "../links.js";
import type { SelectorBackends } from "../selector-backends.js";
import {
  connectorStatus,
  keyStrategyOf,
  listenerResourceOf,
  listenerStatus,
  MULTI_KEY_PREFIX,
  multiKeyAsListeners,
  multiKeyListenerStatus,
  planConnectors,
  planListeners,
  routerConnectorOf,
  unsupportedListener,
} from "../services.js";
import type { ReconcileResult } from "../work-queue.js";

type BindingKind = "Link" | "Listener" | "Connector";

interface Plan {
  configs: Array<{ name: string }>;
  problems: Map<string, string>;
}

interface BindingRules<K extends BindingKind> {
  kind: K;
  activity: string;
  noSite: string;
  plan(ctx: ControllerContext): Plan | Promise<Plan>;
  /** What besides the cache a plan depends on (the backends of selectors); a change re-plans. */
  inputs?(): string;
  /** The resource a planned name stands for, when a plan serves another kind too. */
  resourceOf?(name: string): [Kind, string];
  apply(router: DataPlane, configs: Plan["configs"]): void;
  status(resource: ResourceByKind[K], problem: string | undefined, router: RouterStatus | undefined, now: string): NonNullable<ResourceByKind[K]["status"]>;
}

/** One reconciler shape for the three kinds the router serves. */
export class BindingReconciler<K extends BindingKind> implements Reconciler {
  readonly kind: K;
  private appliedTo: DataPlane | undefined;
  private applied = "";
  private problems = new Map<string, string>();
  /** The last plan and the inputs it was made from: a burst of keys plans once. */
  private plan: { inputs: string; plan: Plan; configs: string } | undefined;

  constructor(
    private readonly ctx: ControllerContext,
    private readonly rules: BindingRules<K>,
  ) {
    this.kind = rules.kind;
  }

  async reconcile(name: string): Promise<ReconcileResult> {
    await this.sync(name);
    if (!(await finishIfDeleted(this.ctx, this.rules.kind, name))) await this.writeStatus(name);
  }

  /** Why the planned `name` cannot be served, as of the last plan. */
  problemOf(name: string): string | undefined {
    return this.problems.get(name);
  }

  /**
   * Plans the kind again if anything it depends on changed, and hands the router what differs.
   * `name` is the one being reconciled: others whose problem changed get a look of their own.
   */
  async sync(name?: string): Promise<void> {
    const { ctx, rules } = this;
    const router = ctx.active.router;
    if (router) {
      const inputs = `${ctx.cache.version}/${rules.inputs?.() ?? ""}`;
      if (this.plan?.inputs !== inputs) {
        const plan = await rules.plan(ctx);
        this.plan = { inputs, plan, configs: JSON.stringify(plan.configs) };
      }
      const { plan, configs } = this.plan;
      // Others whose problem changed with this one (two Listeners on one port) get a look too.
      for (const other of new Set([...plan.problems.keys(), ...this.problems.keys()])) {
        if (other !== name && plan.problems.get(other) !== this.problems.get(other)) ctx.enqueue(...(rules.resourceOf?.(other) ?? [rules.kind, other]));
      }
      this.problems = plan.problems;
      if (configs !== this.applied || router !== this.appliedTo) {
        await step(rules.activity, () => rules.apply(router, plan.configs));
        this.applied = configs;
        this.appliedTo = router;
      }
    }
  }

  /** Writes the status of `name` as the router sees it now (after a router event). */
  async writeStatus(name: string): Promise<void> {
    const { ctx, rules } = this;
    await ctx.status.write(rules.kind, name, () => {
      const resource = ctx.cache.live(rules.kind, name);
      if (!resource) return undefined;
      const router = ctx.active.router;
      const problem = router ? this.problems.get(name) : rules.noSite;
      const status = rules.status(resource, problem, router?.status(), new Date().toISOString());
      return { ...status, observedGeneration: resource.metadata.generation ?? 1 } as never;
    });
  }
}

export function linkReconciler(ctx: ControllerContext): BindingReconciler<"Link"> {
  return new BindingReconciler(ctx, {
    kind: "Link",
    activity: "configuring links",
    noSite: `${NO_ACTIVE_SITE} in namespace`,
    plan: (c) => planLinks(c.cache.list("Link"), secretsOf(c)),
    apply: (router, configs) => router.setOutgoingLinks(configs as ReturnType<typeof planLinks>["configs"]),
    status: (link, problem, router, now) =>
      linkStatus(link.status?.conditions, problem, router?.outgoing.find((o) => o.name === link.metadata.name), now),
  });
}

export function listenerReconciler(ctx: ControllerContext): BindingReconciler<"Listener"> {
  return new BindingReconciler(ctx, {
    kind: "Listener",
    activity: "configuring listeners",
    noSite: NO_ACTIVE_SITE,
    plan: async (c) => {
      const multiKey = multiKeyAsListeners(c.cache.list("MultiKeyListener"));
      const listeners = [...c.cache.list("Listener"), ...multiKey.listeners];
      const secrets = secretsOf(c);
      const site = c.active.site;
      if (!c.network || !site) return planListeners(listeners, secrets, undefined, multiKey.strategies);
      // On Kubernetes a listener is a Service in front of the site's pods: it listens where that says.
      const placements = await step("publishing listeners", () => c.network!.publishListeners(site, listeners.filter((l) => !unsupportedListener(l))));
      return planListeners(listeners, secrets, placements, multiKey.strategies);
    },
    resourceOf: listenerResourceOf,
    apply: (router, configs) => router.setListeners(configs as ReturnType<typeof planListeners>["configs"]),
    status: (listener, problem, router, now) =>
      listenerStatus(listener.status?.conditions, problem, router?.listeners.find((l) => l.name === listener.metadata.name), now),
  });
}

export function connectorReconciler(ctx: ControllerContext, backends?: SelectorBackends): BindingReconciler<"Connector"> {
  return new BindingReconciler(ctx, {
    kind: "Connector",
    activity: "configuring connectors",
    noSite: NO_ACTIVE_SITE,
    plan: (c) => {
      const connectors = c.cache.list("Connector");
      return planConnectors(connectors, secretsOf(c), backends?.targetsFor(connectors));
    },
    inputs: () => String(backends?.version ?? 0),
    apply: (router, configs) => router.setConnectors(configs as ReturnType<typeof planConnectors>["configs"]),
    status: (connector, problem, router, now) =>
      connectorStatus(connector.status?.conditions, problem, router && routerConnectorOf(router.connectors, connector.metadata.name), now),
  });
}

export class SecretReconciler implements Reconciler {
  readonly kind: Kind = "Secret";

  constructor(private readonly ctx: ControllerContext) {}

  async reconcile(name: string): Promise<ReconcileResult> {
    const { ctx } = this;
    for (const link of ctx.cache.list("Link")) if (linkSecretName(link) === name) ctx.enqueue("Link", link.metadata.name);
    // A CA the user gave the site (spec.defaultIssuer) signs its link certificates.
    for (const site of ctx.cache.list("Site")) if (site.spec.defaultIssuer === name) ctx.enqueue("Site", site.metadata.name);
    // A Certificate keeps the Secret of its name, issued by the CA in the Secret spec.ca.
    for (const certificate of ctx.cache.list("Certificate")) {
      if (certificate.metadata.name === name || certificate.spec.ca === name) ctx.enqueue("Certificate", certificate.metadata.name);
    }
    for (const kind of ["Listener", "Connector", "MultiKeyListener"] as const) {
      for (const binding of ctx.cache.list(kind)) if (binding.spec.tlsCredentials === name) ctx.enqueue(kind, binding.metadata.name);
    }
    await finishIfDeleted(ctx, "Secret", name);
  }
}

function secretsOf(ctx: ControllerContext): Map<string, Secret> {
  return new Map(ctx.cache.list("Secret").map((s) => [s.metadata.name, s]));
}

/**
 * MultiKeyListener: served by the Listener plan (they share hosts and ports, and on Kubernetes
 * the Services in front of the site), with a status of its own: which of its keys are reachable.
 */
export class MultiKeyListenerReconciler implements Reconciler {
  readonly kind: Kind = "MultiKeyListener";

  constructor(
    private readonly ctx: ControllerContext,
    private readonly listeners: BindingReconciler<"Listener">,
  ) {}

  async reconcile(name: string): Promise<ReconcileResult> {
    await this.listeners.sync(`${MULTI_KEY_PREFIX}${name}`);
    if (!(await finishIfDeleted(this.ctx, "MultiKeyListener", name))) await this.writeStatus(name);
  }

  async writeStatus(name: string): Promise<void> {
    const { ctx } = this;
    const routerName = `${MULTI_KEY_PREFIX}${name}`;
    await ctx.status.write("MultiKeyListener", name, () => {
      const resource = ctx.cache.live("MultiKeyListener", name);
      if (!resource) return undefined;
      const router = ctx.active.router;
      const problem = router ? this.listeners.problemOf(routerName) : NO_ACTIVE_SITE;
      const routerListener = router?.status().listeners.find((l) => l.name === routerName);
      const status = multiKeyListenerStatus(resource.status?.conditions, problem, routerListener, keyStrategyOf(resource), new Date().toISOString());
      return { ...status, observedGeneration: resource.metadata.generation ?? 1 };
    });
  }
}
