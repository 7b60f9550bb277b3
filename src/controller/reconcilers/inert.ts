/**
 * The kinds this site accepts (so that files written for the original apply unchanged) but does
 * not act on: each gets a status that is not Ready and says why, on its `Configured` condition.
 * What each kind does in the original, and why ours does not, is in docs/decisions.md.
 */
import { ConditionType, failed, requiredConditions, setCondition, withAggregate, type CommonStatus, type Kind } from "../../api/index.js";
import { finishIfDeleted, type ControllerContext, type Reconciler } from "../context.js";
import type { ReconcileResult } from "../work-queue.js";

export type InertKind = "SecuredAccess" | "AttachedConnector" | "AttachedConnectorBinding";

export const INERT_KINDS: readonly InertKind[] = ["SecuredAccess", "AttachedConnector", "AttachedConnectorBinding"];

/**
 * Why a resource of `kind` has no effect here. `workloads` is whether the platform runs the site
 * beside workloads it can select (Kubernetes: the controller has a SiteNetwork) or on a host.
 */
export function inertReason(kind: InertKind, workloads: boolean): string {
  switch (kind) {
    case "SecuredAccess":
      return workloads
        ? "SecuredAccess has no effect on this site: it makes its own Services (RouterAccess or Site link access for links, a Listener for each service) and does not expose pods through SecuredAccess"
        : "SecuredAccess is how the original's Kubernetes controller exposes pods through a Service; it has no effect on a local site, which listens on the host itself (RouterAccess or Site link access for links, a Listener for each service)";
    case "AttachedConnector":
      return workloads
        ? "AttachedConnector is not supported on this platform yet: a site serves its own namespace only; use a Connector with a selector in the site's namespace"
        : "AttachedConnector is for Kubernetes sites whose workloads run in another namespace; it has no effect on a local site; use a Connector with spec.host";
    case "AttachedConnectorBinding":
      return workloads
        ? "AttachedConnectorBinding is not supported on this platform yet: a site serves its own namespace only; use a Connector with a selector in the site's namespace"
        : "AttachedConnectorBinding is for Kubernetes sites whose workloads run in another namespace; it has no effect on a local site; use a Connector with spec.host";
  }
}

export class InertReconciler implements Reconciler {
  constructor(
    private readonly ctx: ControllerContext,
    readonly kind: InertKind,
  ) {}

  async reconcile(name: string): Promise<ReconcileResult> {
    const { ctx, kind } = this;
    if (await finishIfDeleted(ctx, kind, name)) return;
    const message = inertReason(kind, ctx.network !== undefined);
    await ctx.status.write(kind, name, () => {
      const resource = ctx.cache.live(kind, name) as { status?: CommonStatus; metadata: { generation?: number } } | undefined;
      if (!resource) return undefined;
      const now = new Date().toISOString();
      const conditions = setCondition(resource.status?.conditions, ConditionType.Configured, failed(message), now);
      const status = withAggregate({ conditions }, requiredConditions(kind), now);
      return { ...status, observedGeneration: resource.metadata.generation ?? 1 } as never;
    });
  }
}

export function isInertKind(kind: Kind): kind is InertKind {
  return (INERT_KINDS as readonly string[]).includes(kind);
}
