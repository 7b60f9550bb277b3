/**
 * AccessToken: each token is redeemed once with the grant server it names (TokenRedeemer), and
 * the Secret and Links it yields are stored as resources of this namespace.
 */
import type { AccessToken, Link, Secret } from "../../api/index.js";
import { AlreadyExistsError } from "../../common/errors.js";
import type { PendingCredentials } from "../../platform/index.js";
import { finishIfDeleted, type ControllerContext, type Reconciler } from "../context.js";
import { Annotation, conflictWith, CredentialConflictError, TokenRedeemer } from "../tokens.js";
import type { ReconcileResult } from "../work-queue.js";

export class AccessTokenReconciler implements Reconciler {
  readonly kind = "AccessToken";
  readonly redeemer: TokenRedeemer;

  constructor(
    private readonly ctx: ControllerContext,
    /** Credentials of redemptions an earlier run received and may not have written. */
    private readonly pending: Map<string, PendingCredentials>,
  ) {
    this.redeemer = new TokenRedeemer({
      context: () =>
        ctx.active.site && ctx.active.router
          ? { siteId: ctx.active.siteId, siteName: ctx.active.site.metadata.name, ...(ctx.active.grantCa ? { ownGrantCa: ctx.active.grantCa.cert } : {}) }
          : undefined,
      nameConflict: (name, token) => this.nameConflict(name, token),
      linksCreatedBy: (token) => ctx.cache.list("Link").filter((l) => l.metadata.annotations?.[Annotation.accessToken] === token).map((l) => l.metadata.name),
      save: (token, credentials) => this.save(token, credentials),
      pendingCredentials: (token) => this.pending.get(token),
      dropPendingCredentials: async (token) => {
        this.pending.delete(token);
        await ctx.state.removePendingRedemption(token);
      },
      persistStatus: async (name) => {
        await this.writeStatus(name);
      },
      changed: (name) => ctx.enqueue("AccessToken", name),
    });
  }

  async reconcile(name: string): Promise<ReconcileResult> {
    const { ctx } = this;
    if (await finishIfDeleted(ctx, "AccessToken", name)) {
      this.redeemer.remove(name);
      return;
    }
    this.redeemer.upsert(ctx.cache.get("AccessToken", name) as AccessToken);
    await this.writeStatus(name);
  }

  stop(): void {
    this.redeemer.stop();
  }

  private writeStatus(name: string): Promise<AccessToken | undefined> {
    return this.ctx.status.write("AccessToken", name, () => {
      const token = this.ctx.cache.live("AccessToken", name);
      const status = this.redeemer.status(name);
      return token && status ? { ...status, observedGeneration: token.metadata.generation ?? 1 } : undefined;
    });
  }

  /**
   * Keeps the credentials as pending first (durably), then stores the Secret and the Links,
   * Secret first so a Link never appears without its credentials. A resource of one of those
   * names that this token did not create is never replaced; then nothing is stored.
   */
  private async save(token: AccessToken, credentials: PendingCredentials): Promise<void> {
    const tokenName = token.metadata.name;
    if (this.pending.get(tokenName) !== credentials) {
      await this.ctx.state.savePendingRedemption(tokenName, credentials);
      this.pending.set(tokenName, credentials);
    }
    const resources: Array<Secret | Link> = [credentials.secret, ...credentials.links];
    for (const resource of resources) {
      const existing = await this.ctx.store.get(resource.kind, resource.metadata.name);
      const conflict = conflictWith(resource.kind, resource.metadata.name, existing, tokenName);
      if (conflict) throw new CredentialConflictError(conflict);
    }
    for (const resource of resources) {
      const stored = await this.createOrReplace(resource);
      this.ctx.cache.set(resource.kind, resource.metadata.name, stored);
    }
  }

  private async createOrReplace<R extends Secret | Link>(resource: R): Promise<R> {
    const { status: _status, ...desired } = resource as R & { status?: unknown };
    try {
      return await this.ctx.store.create(desired as R);
    } catch (err) {
      if (!(err instanceof AlreadyExistsError)) throw err;
      // Written by an earlier attempt for this token (checked above): write it again.
      return this.ctx.store.update(desired as R);
    }
  }

  private nameConflict(name: string, token: string): string | undefined {
    for (const kind of ["Link", "Secret"] as const) {
      const conflict = conflictWith(kind, name, this.ctx.cache.live(kind, name), token);
      if (conflict) return conflict;
    }
    return undefined;
  }
}
