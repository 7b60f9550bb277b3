/**
 * AccessGrants: the site's record of what tokens may be redeemed, how often and until when.
 * Code, expiry and the redemption count live in the grant's runtime status, so they survive
 * restarts of the site process.
 */
import { randomBytes, randomUUID } from "node:crypto";
import {
  ConditionType,
  expirationWindowMs,
  failed,
  pending,
  ready,
  redemptionsAllowed,
  requiredConditions,
  setCondition,
  withAggregate,
  type AccessGrant,
  type AccessGrantStatus,
  type Condition,
} from "../api/index.js";
import type { GrantLedger, GrantRecord, RedemptionRequest } from "../grants/index.js";

const CODE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

export function randomCode(length = 24): string {
  const bytes = randomBytes(length * 2);
  let out = "";
  for (let i = 0; out.length < length && i < bytes.length; i++) {
    const byte = bytes[i] as number;
    if (byte < 248) out += CODE_ALPHABET[byte % 62]; // 248 = 4 × 62: no modulo bias
  }
  return out.length === length ? out : randomCode(length);
}

/**
 * Expiry falls on a whole second, rounded up: timestamps are shown (and stored by Kubernetes) in
 * whole seconds, so the instant a user reads as the expiry is the one the grant server enforces,
 * and a grant never lasts less than its window.
 */
function wholeSecondUp(ms: number): number {
  return Math.ceil(ms / 1000) * 1000;
}

interface Entry {
  record: GrantRecord;
  createdAt: string;
  /** The grant as written in input. */
  resource: AccessGrant;
  conditions: Condition[];
}

export interface GrantBookDeps {
  issue(grant: GrantRecord, request: RedemptionRequest): Promise<string>;
  /** Durably writes the grant's runtime status (with the current count). */
  persist(name: string): Promise<void>;
}

export class GrantBook implements GrantLedger {
  private readonly byName = new Map<string, Entry>();
  private readonly byUid = new Map<string, Entry>();

  constructor(private readonly deps: GrantBookDeps) {}

  /**
   * Adds or updates one grant. Its identity, code and count come from the book if it knows the
   * grant, else from the grant as stored (metadata and status), so they survive restarts.
   */
  upsert(grant: AccessGrant): void {
    const name = grant.metadata.name;
    const existing = this.byName.get(name);
    const createdAt = existing?.createdAt ?? grant.metadata.creationTimestamp ?? new Date().toISOString();
    const uid = existing?.record.uid ?? grant.metadata.uid ?? randomUUID();
    const code = existing?.record.code ?? grant.status?.code ?? grant.spec.code ?? randomCode();
    const made = existing?.record.made ?? grant.status?.redemptions ?? 0;
    const record: GrantRecord = existing?.record ?? { name, uid, code, expiresAt: 0, allowed: 1, made };
    record.allowed = redemptionsAllowed(grant);
    record.expiresAt = wholeSecondUp(Date.parse(createdAt) + expirationWindowMs(grant));
    const conditions = existing?.conditions ?? grant.status?.conditions ?? [];
    const entry: Entry = { record, createdAt: String(createdAt), resource: grant, conditions };
    this.byName.set(name, entry);
    this.byUid.set(uid, entry);
  }

  remove(name: string): void {
    const entry = this.byName.get(name);
    if (!entry) return;
    this.byName.delete(name);
    this.byUid.delete(entry.record.uid);
  }

  /** When the grant expires (ms since the epoch), if the book knows it. */
  expiresAt(name: string): number | undefined {
    return this.byName.get(name)?.record.expiresAt;
  }

  uidOf(name: string): string | undefined {
    return this.byName.get(name)?.record.uid;
  }

  /** The grant's status: code, count, expiry, and the URL and CA of `context` if it can be redeemed. */
  status(name: string, context: { url?: string; ca?: string; linkAccess: boolean }, now = new Date()): AccessGrantStatus | undefined {
    const entry = this.byName.get(name);
    if (!entry) return undefined;
    const { record } = entry;
    const stamp = now.toISOString();
    const status: AccessGrantStatus = {
      ...(context.url ? { url: context.url } : {}),
      code: record.code,
      ...(context.ca ? { ca: context.ca } : {}),
      redemptions: record.made,
      expirationTime: new Date(record.expiresAt).toISOString(),
    };
    let conditions = entry.conditions;
    const processed =
      record.made >= record.allowed
        ? failed(`All ${record.allowed} redemption(s) have been used`)
        : record.expiresAt <= now.getTime()
          ? failed(`Expired at ${new Date(record.expiresAt).toISOString()}`)
          : ready();
    conditions = setCondition(conditions, ConditionType.Processed, processed, stamp);
    conditions = setCondition(
      conditions,
      ConditionType.Resolved,
      !context.linkAccess ? pending("Link access is not enabled for this site") : context.url && context.ca ? ready() : pending("Pending"),
      stamp,
    );
    const result = withAggregate({ ...status, conditions }, requiredConditions("AccessGrant"), stamp);
    entry.conditions = result.conditions ?? [];
    return result;
  }

  // ---- GrantLedger ----

  find(uid: string): GrantRecord | undefined {
    return this.byUid.get(uid)?.record;
  }

  issue(grant: GrantRecord, request: RedemptionRequest): Promise<string> {
    return this.deps.issue(grant, request);
  }

  async record(grant: GrantRecord): Promise<void> {
    grant.made++;
    try {
      await this.deps.persist(grant.name);
    } catch (err) {
      grant.made--;
      throw err;
    }
  }

  async unrecord(grant: GrantRecord): Promise<void> {
    grant.made = Math.max(0, grant.made - 1);
    await this.deps.persist(grant.name);
  }
}
