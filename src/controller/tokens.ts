/**
 * AccessTokens: each one not yet redeemed is redeemed once with the grant server named in it;
 * the Secret and Link it yields are written to the site's input. Refusals (expired, used up,
 * wrong code, link to self, already linked) are final for that token; network failures are
 * retried with backoff.
 */
import { createHash } from "node:crypto";
import {
  ConditionType,
  failed,
  pending,
  ready,
  requiredConditions,
  setCondition,
  withAggregate,
  type AccessToken,
  type AccessTokenStatus,
  type Condition,
  type Link,
  type Secret,
} from "../api/index.js";
import { sameCertificate } from "../certs/index.js";
import { Backoff } from "../common/backoff.js";
import { logger } from "../common/log.js";
import { redeemToken, RedemptionError, type RedeemedCredentials } from "../grants/index.js";

const log = logger("tokens");

/** Annotations we put on what a redemption creates. */
export const Annotation = {
  accessToken: "skupper.io/access-token",
  remoteSiteId: "skupper.io/remote-site-id",
  remoteSiteName: "skupper.io/remote-site-name",
} as const;

export interface TokenContext {
  siteId: string;
  siteName: string;
  /** PEM of this site's grant-server CA, to recognise tokens this site issued. */
  ownGrantCa?: string;
}

export interface TokenDeps {
  context(): TokenContext | undefined;
  /** Site ids this site is linked with, in either direction. */
  linkedSites(): string[];
  /** Name of the link (outgoing or incoming) that joins this site to `siteId`, if any. */
  linkTo(siteId: string): string | undefined;
  /** A sentence if a Link or Secret named `name` exists that this token did not create. */
  nameConflict(name: string, token: string): string | undefined;
  /** Writes the redeemed Secret and Links into the site's input. */
  save(token: AccessToken, credentials: RedeemedCredentials): Promise<void>;
  changed(): void;
}

interface TokenState {
  specHash: string;
  redeemed: boolean;
  conditions: Condition[];
  inFlight: boolean;
  retry?: NodeJS.Timeout;
  backoff: Backoff;
  token: AccessToken;
}

export class TokenRedeemer {
  private readonly states = new Map<string, TokenState>();
  private stopped = false;

  constructor(private readonly deps: TokenDeps) {}

  sync(tokens: AccessToken[], runtime: Map<string, AccessToken>): void {
    const wanted = new Set(tokens.map((t) => t.metadata.name));
    for (const [name, state] of this.states) {
      if (!wanted.has(name)) {
        if (state.retry) clearTimeout(state.retry);
        this.states.delete(name);
      }
    }
    for (const token of tokens) {
      const name = token.metadata.name;
      const hash = specHash(token);
      let state = this.states.get(name);
      if (!state || (state.specHash !== hash && !state.redeemed)) {
        if (state?.retry) clearTimeout(state.retry);
        const saved = runtime.get(name);
        const redeemed = saved?.status?.redeemed === true;
        state = {
          specHash: hash,
          redeemed,
          conditions: redeemed ? (saved?.status?.conditions ?? []) : [],
          inFlight: false,
          backoff: new Backoff({ initialMs: 2000, maxMs: 60_000 }),
          token,
        };
        this.states.set(name, state);
        if (!redeemed) this.attempt(name);
      } else {
        state.token = token;
      }
    }
  }

  status(name: string, now = new Date().toISOString()): AccessTokenStatus | undefined {
    const state = this.states.get(name);
    if (!state) return undefined;
    const status = withAggregate({ conditions: state.conditions }, requiredConditions("AccessToken"), now, false);
    return { ...status, redeemed: state.redeemed };
  }

  stop(): void {
    this.stopped = true;
    for (const state of this.states.values()) if (state.retry) clearTimeout(state.retry);
  }

  private attempt(name: string): void {
    const state = this.states.get(name);
    if (!state || state.redeemed || state.inFlight || this.stopped) return;
    state.retry = undefined;
    const context = this.deps.context();
    if (!context) {
      this.setCondition(state, pending("No active site in this namespace"));
      return;
    }
    const token = state.token;
    if (context.ownGrantCa && sameCertificate(context.ownGrantCa, token.spec.ca)) {
      this.setCondition(state, failed(`This token was issued by this site ("${context.siteName}"); redeem it on another site: a site cannot link to itself`));
      return;
    }
    const conflict = this.deps.nameConflict(name, name);
    if (conflict) {
      this.setCondition(state, failed(conflict));
      return;
    }
    state.inFlight = true;
    const hash = state.specHash;
    redeemToken(token.spec, {
      name,
      subject: context.siteName,
      siteId: context.siteId,
      siteName: context.siteName,
      linkedSites: this.deps.linkedSites(),
    })
      .then(async (credentials) => {
        applyLinkCost(credentials, token);
        annotate(credentials, name);
        await this.deps.save(token, credentials);
        state.inFlight = false;
        state.redeemed = true;
        log.info(`token ${name} redeemed: link ${credentials.links.map((l) => l.metadata.name).join(", ")} created`);
        this.setCondition(state, ready());
      })
      .catch((err: unknown) => {
        state.inFlight = false;
        if (this.states.get(name) !== state || state.specHash !== hash) return;
        const message = this.describe(err);
        log.warn(`token ${name}: ${message}`);
        if (err instanceof RedemptionError && err.retryable && !this.stopped) {
          // A network or server failure may pass: stay Pending and try again, so that
          // `token redeem --timeout` waits for it instead of giving up at the first attempt.
          const delay = state.backoff.next();
          this.setCondition(state, pending(`${message}; retrying in ${Math.max(1, Math.round(delay / 1000))} s`));
          state.retry = setTimeout(() => this.attempt(name), delay);
          state.retry.unref();
          return;
        }
        this.setCondition(state, failed(message));
      });
  }

  private describe(err: unknown): string {
    if (err instanceof RedemptionError) {
      if (err.reason === "duplicate" && err.details.issuerSiteId) {
        const link = this.deps.linkTo(err.details.issuerSiteId);
        const site = err.details.issuerSiteName ?? err.details.issuerSiteId;
        return link
          ? `This site is already linked to site "${site}" (link "${link}"); delete that link first to replace it`
          : `This site is already linked to site "${site}"`;
      }
      return err.message;
    }
    return `redemption failed: ${(err as Error).message}`;
  }

  private setCondition(state: TokenState, condition: ReturnType<typeof ready>): void {
    state.conditions = setCondition(state.conditions, ConditionType.Redeemed, condition, new Date().toISOString());
    this.deps.changed();
  }
}

function specHash(token: AccessToken): string {
  return createHash("sha256").update(JSON.stringify(token.spec)).digest("hex");
}

/** The token's link cost applies to the links it creates (the original ignored it off Kubernetes). */
function applyLinkCost(credentials: RedeemedCredentials, token: AccessToken): void {
  const cost = token.spec.linkCost;
  if (cost === undefined || cost <= 0) return;
  for (const link of credentials.links) link.spec.cost = cost;
}

function annotate(credentials: RedeemedCredentials, tokenName: string): void {
  const mark = (resource: Secret | Link) => {
    resource.metadata.annotations = { ...(resource.metadata.annotations ?? {}), [Annotation.accessToken]: tokenName };
  };
  mark(credentials.secret);
  credentials.links.forEach(mark);
}
