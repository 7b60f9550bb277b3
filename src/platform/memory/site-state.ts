import { randomBytes, randomUUID } from "node:crypto";
import type { NetworkStatus } from "../../api/index.js";
import type { PendingCredentials, SiteIdentity, SiteState } from "../types.js";
import { FaultInjector, type FaultOptions } from "./faults.js";

export type SiteStateOperation = "publishNetworkStatus" | "savePendingRedemption" | "removePendingRedemption";

/** A SiteState in memory: what was published and saved is exposed for assertions. */
export class MemorySiteState implements SiteState {
  readonly siteId: string;
  /** The last view published, and how many times one was. */
  networkStatus: NetworkStatus | undefined;
  publishCount = 0;
  /** Pending redemptions by token. */
  readonly redemptions = new Map<string, PendingCredentials>();
  private readonly faults = new FaultInjector<SiteStateOperation>();

  constructor(siteId: string = randomUUID()) {
    this.siteId = siteId;
  }

  failNext(op: SiteStateOperation, options: FaultOptions = {}): void {
    this.faults.add(op, () => true, options);
  }

  async identity(): Promise<SiteIdentity> {
    return { siteId: this.siteId };
  }

  async publishNetworkStatus(status: NetworkStatus): Promise<void> {
    this.faults.check("publishNetworkStatus", "");
    this.networkStatus = structuredClone(status);
    this.publishCount++;
  }

  async pendingRedemptions(): Promise<Map<string, PendingCredentials>> {
    return structuredClone(this.redemptions);
  }

  async savePendingRedemption(token: string, credentials: PendingCredentials): Promise<void> {
    this.faults.check("savePendingRedemption", "");
    this.redemptions.set(token, structuredClone(credentials));
  }

  /** The observer port's credential: one per state, like the local platform's file. */
  observer = randomBytes(32).toString("base64url");

  async observerCredential(): Promise<string> {
    return this.observer;
  }

  async removePendingRedemption(token: string): Promise<void> {
    this.faults.check("removePendingRedemption", "");
    this.redemptions.delete(token);
  }
}
