/**
 * AccessGrant: the grants this site's grant server honours, their codes, counts and expiry,
 * and the credentials a redemption hands out (a client certificate from the site CA).
 */
import { linkAccessEnabled, toYamlDocuments, type AccessGrant, type AccessGrantStatus } from "../../api/index.js";
import { canonicalHost, isValidSiteId } from "../../certs/index.js";
import { logger } from "../../common/log.js";
import { Header, Refusal, type GrantRecord, type RedemptionRequest } from "../../grants/index.js";
import { formatHostPort } from "../access.js";
import { finishIfDeleted, type ControllerContext, type Reconciler } from "../context.js";
import { GrantBook } from "../grants.js";
import { issueLinkBundle } from "../links.js";
import type { ReconcileResult } from "../work-queue.js";

const log = logger("controller");

export class AccessGrantReconciler implements Reconciler {
  readonly kind = "AccessGrant";
  readonly book: GrantBook;

  constructor(private readonly ctx: ControllerContext) {
    this.book = new GrantBook({
      issue: (grant, request) => this.issueCredentials(grant, request),
      persist: async (name) => {
        await this.writeStatus(name);
      },
    });
  }

  async reconcile(name: string): Promise<ReconcileResult> {
    const { ctx } = this;
    if (await finishIfDeleted(ctx, "AccessGrant", name)) {
      this.book.remove(name);
      return;
    }
    let grant = ctx.cache.get("AccessGrant", name) as AccessGrant;
    if (!grant.metadata.uid) {
      // The store gives a resource its uid by its first status write at the latest; token URLs use it.
      grant = (await ctx.status.write("AccessGrant", name, () => ({ status: "Pending" as const, message: "Pending", observedGeneration: grant?.metadata.generation ?? 1 }))) ?? grant;
    }
    this.book.upsert(grant);
    await this.writeStatus(name);
    // Look again when it expires, so its status says so.
    const expiresAt = this.book.expiresAt(name);
    if (expiresAt !== undefined && expiresAt > Date.now()) return { retryAfterMs: Math.min(2 ** 31 - 1, expiresAt - Date.now() + 50) };
  }

  /** Writes the grant's status with its count as it is now. */
  private writeStatus(name: string): Promise<AccessGrant | undefined> {
    return this.ctx.status.write("AccessGrant", name, (): AccessGrantStatus | undefined => {
      const grant = this.ctx.cache.live("AccessGrant", name);
      const url = this.url(name);
      const ca = this.ctx.active.grantCa?.cert;
      const status = this.book.status(name, {
        ...(url ? { url } : {}),
        ...(ca && url ? { ca } : {}),
        linkAccess: !!this.ctx.active.site && linkAccessEnabled(this.ctx.active.site) && !this.ctx.active.site.spec.edge,
      });
      return status && { ...status, observedGeneration: grant?.metadata.generation ?? 1 };
    });
  }

  private url(name: string): string | undefined {
    const { active } = this.ctx;
    if (!active.plan || !active.site || !active.linkAccess) return undefined;
    const uid = this.book.uidOf(name);
    const host = active.plan.hosts[0];
    if (!uid || !host) return undefined;
    return `https://${formatHostPort(host, active.plan.grantServerPort)}/${uid}`;
  }

  private async issueCredentials(grant: GrantRecord, request: RedemptionRequest): Promise<string> {
    const { site, plan, siteCa, siteId, router } = this.ctx.active;
    if (!site || !plan || !siteCa || !router) throw new Error("the site is not ready to issue links");
    const issuer = { [Header.issuerSiteId]: siteId, [Header.issuerSiteName]: site.metadata.name };
    if (request.siteId === siteId) {
      throw new Refusal("self", `This token was issued by site "${site.metadata.name}" itself; a site cannot link to itself`, issuer);
    }
    // A site already linked with the redeeming one is served like any other (as in the
    // original): several links between two sites are normal, and the router uses the cheapest.
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
}
