/**
 * AccessTokens: each one not yet redeemed is redeemed once with the grant server named in it;
 * the Secret and Link it yields are written to the site's input. Refusals (expired, used up,
 * wrong code, link to self) are final for that token; network failures are
 * retried with backoff.
 *
 * Once the grant server has answered, the redemption is spent, so from then on the order is:
 * keep the credentials (in memory, and journaled to disk by `save` before anything else); write
 * them (Secret first, then the Links), retrying the write (never the redemption) while it fails;
 * then mark the token redeemed, write its status at once, and only then drop the journaled copy.
 * On restart, a token whose Links (annotated with its name) are in input counts as redeemed, and
 * one with journaled credentials has them written; neither is redeemed again.
 */
import { createHash } from "node:crypto";
import {
  Annotation,
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
import { Backoff, type BackoffOptions } from "../common/backoff.js";
import { SkupperError } from "../common/errors.js";
import { logger } from "../common/log.js";
import { redeemToken, RedemptionError, type RedeemedCredentials } from "../grants/index.js";

const log = logger("tokens");

export { Annotation } from "../api/index.js";

/**
 * Thrown by TokenDeps.save when a resource of a redemption's name exists that this token did not
 * create: it is never replaced, and the token fails with this message.
 */
export class CredentialConflictError extends SkupperError {
  constructor(message: string) {
    super("ERR_CREDENTIAL_CONFLICT", message, 1);
  }
}

/** A sentence if `existing` (of `kind`, named `name`) was not created by redeeming `token`. */
export function conflictWith(kind: "Link" | "Secret", name: string, existing: { metadata: { annotations?: Record<string, string> } } | undefined, token: string): string | undefined {
  if (!existing || existing.metadata.annotations?.[Annotation.accessToken] === token) return undefined;
  return `A ${kind} named "${name}" already exists in this namespace; rename the token (metadata.name) or delete that ${kind}`;
}

export interface TokenContext {
  siteId: string;
  siteName: string;
  /** PEM of this site's grant-server CA, to recognise tokens this site issued. */
  ownGrantCa?: string;
}

export interface TokenDeps {
  context(): TokenContext | undefined;
  /** A sentence if a Link or Secret named `name` exists that this token did not create. */
  nameConflict(name: string, token: string): string | undefined;
  /** Names of the Links in input created by redeeming the token named `token`. */
  linksCreatedBy(token: string): string[];
  /**
   * Journals the credentials durably, then writes the Secret and Links into the site's input,
   * Secret first. Throws a CredentialConflictError, and writes nothing to input, if a resource
   * of one of their names exists that this token did not create; any other failure is retried
   * with the same credentials.
   */
  save(token: AccessToken, credentials: RedeemedCredentials): Promise<void>;
  /** Credentials journaled for `token` by an earlier run that may not have written them all. */
  pendingCredentials(token: string): RedeemedCredentials | undefined;
  /** Forgets the journaled credentials of `token` (written, or dropped). */
  dropPendingCredentials(token: string): Promise<void>;
  /** Writes the token's status (as `status()` gives it) to runtime now. */
  persistStatus(name: string): Promise<void>;
  /** The token's status changed. */
  changed(name: string): void;
}

export interface TokenRedeemerOptions {
  /** Backoff of retried redemptions and retried writes (default 2 s doubling to 60 s). */
  retry?: Pick<BackoffOptions, "initialMs" | "maxMs">;
}

interface TokenState {
  specHash: string;
  redeemed: boolean;
  /** Credentials received and not yet written: the redemption is spent, only the write is retried. */
  received?: RedeemedCredentials;
  conditions: Condition[];
  inFlight: boolean;
  /** Not attempted yet because no site was active; attempted at the next sync. */
  waitingForSite?: boolean;
  retry?: NodeJS.Timeout;
  backoff: Backoff;
  token: AccessToken;
}

export class TokenRedeemer {
  private readonly states = new Map<string, TokenState>();
  private readonly retry: Pick<BackoffOptions, "initialMs" | "maxMs">;
  private stopped = false;

  constructor(
    private readonly deps: TokenDeps,
    options: TokenRedeemerOptions = {},
  ) {
    this.retry = options.retry ?? { initialMs: 2000, maxMs: 60_000 };
  }

  /** The token was deleted: stop redeeming it, and drop what it yielded if that was not saved. */
  remove(name: string): void {
    const state = this.states.get(name);
    if (!state) return;
    if (state.retry) clearTimeout(state.retry);
    if (state.received) {
      log.error(`token ${name} was deleted before the link credentials it yielded could be saved; they are dropped`);
      void this.drop(name);
    }
    this.states.delete(name);
  }

  /**
   * Starts redeeming a new token, or takes note of a changed one. A token whose stored status
   * says redeemed, or whose Links exist, is not redeemed again.
   */
  upsert(token: AccessToken): void {
    const name = token.metadata.name;
    const hash = specHash(token);
    let state = this.states.get(name);
    // A spent redemption (redeemed, or credentials waiting to be written) is never redone.
    if (!state || (state.specHash !== hash && !state.redeemed && !state.received)) {
      if (state?.retry) clearTimeout(state.retry);
      const links = this.deps.linksCreatedBy(name);
      const redeemed = token.status?.redeemed === true || links.length > 0;
      state = {
        specHash: hash,
        redeemed,
        conditions: token.status?.redeemed === true ? (token.status.conditions ?? []) : [],
        inFlight: false,
        backoff: new Backoff(this.retry),
        token,
      };
      this.states.set(name, state);
      const journaled = this.deps.pendingCredentials(name);
      if (redeemed && token.status?.redeemed !== true) {
        // The Links were written but the status was not (the site stopped in between).
        log.info(`token ${name} was redeemed already (link ${links.join(", ")}); not redeeming it again`);
        this.setCondition(state, ready());
        void this.persist(name);
      } else if (redeemed) {
        // The site stopped after writing the status and before dropping the journaled copy.
        if (journaled) void this.drop(name);
      } else if (journaled) {
        // The site stopped while writing what a redemption yielded: finish that, do not redeem again.
        log.info(`token ${name}: writing the link credentials received before the site stopped`);
        state.received = journaled;
        this.save(name);
      } else {
        this.attempt(name);
      }
    } else {
      state.token = token;
      // Only once there is a site: attempting without one reports "no active site" again, which
      // enqueues the token again, which attempts again, with no end.
      if (state.waitingForSite && this.deps.context()) this.attempt(name);
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
    state.waitingForSite = !context;
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
    })
      .then((credentials) => {
        state.inFlight = false;
        applyLinkCost(credentials, token);
        annotate(credentials, name);
        state.received = credentials;
        state.backoff.reset();
        if (this.states.get(name) !== state) {
          log.error(`token ${name} was deleted while it was being redeemed; the link credentials it yielded are dropped`);
          return;
        }
        this.save(name);
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

  /** Writes the credentials a redemption yielded; retried, with the same credentials, until it works. */
  private save(name: string): void {
    const state = this.states.get(name);
    const credentials = state?.received;
    if (!state || !credentials || state.inFlight || this.stopped) return;
    state.retry = undefined;
    state.inFlight = true;
    this.deps.save(state.token, credentials).then(
      () => {
        state.inFlight = false;
        state.received = undefined;
        state.redeemed = true;
        log.info(`token ${name} redeemed: link ${credentials.links.map((l) => l.metadata.name).join(", ")} created`);
        this.setCondition(state, ready());
        void this.persist(name);
      },
      (err: unknown) => {
        state.inFlight = false;
        if (err instanceof CredentialConflictError) {
          state.received = undefined;
          log.warn(`token ${name}: ${err.message}`);
          this.setCondition(state, failed(err.message));
          void this.drop(name);
          return;
        }
        if (this.states.get(name) !== state) {
          log.error(`token ${name} was deleted before the link credentials it yielded could be saved; they are dropped`);
          void this.drop(name);
          return;
        }
        const delay = state.backoff.next();
        const message = `the link credentials were received but could not be saved (${(err as Error).message}); retrying in ${Math.max(1, Math.round(delay / 1000))} s`;
        log.warn(`token ${name}: ${message}`);
        this.setCondition(state, pending(message));
        if (this.stopped) return;
        state.retry = setTimeout(() => this.save(name), delay);
        state.retry.unref();
      },
    );
  }

  /** Writes the redeemed status, then drops the journaled credentials, which are in input now. */
  private async persist(name: string): Promise<void> {
    try {
      await this.deps.persistStatus(name);
    } catch (err) {
      // The Links in input already mark the token as redeemed; the next status pass writes it.
      log.warn(`token ${name}: its status could not be written: ${(err as Error).message}`);
    }
    await this.drop(name);
  }

  private async drop(name: string): Promise<void> {
    try {
      await this.deps.dropPendingCredentials(name);
    } catch (err) {
      log.warn(`token ${name}: its journaled link credentials could not be removed: ${(err as Error).message}`);
    }
  }

  private describe(err: unknown): string {
    if (err instanceof RedemptionError) return err.message;
    return `redemption failed: ${(err as Error).message}`;
  }

  private setCondition(state: TokenState, condition: ReturnType<typeof ready>): void {
    state.conditions = setCondition(state.conditions, ConditionType.Redeemed, condition, new Date().toISOString());
    this.deps.changed(state.token.metadata.name);
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
