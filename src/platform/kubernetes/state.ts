/**
 * The Kubernetes platform's SiteState, in the site's namespace:
 *
 * - ConfigMap `skupper-site-state`, key `site-id`: the site's identity, a random UUID created on
 *   first use. Two first uses racing both try to create it; the loser reads the winner's.
 * - ConfigMap `skupper-network-status`, key `network-status.json`: the view of the network the
 *   site publishes for clients (read it with `readNetworkStatus` of src/api), written only when
 *   it changed.
 * - Secrets labelled `skupper.io/pending-redemption: "true"` (they hold a private key), one per
 *   redemption not yet written as resources: named `skupper-redemption-<token>` (the start of
 *   the name and a hash when that is too long), the token's name in the annotation
 *   `skupper.io/access-token`, the Secret and Links as YAML documents under `redemption.yaml`.
 *   The grant server counts a redemption before it answers, so these are what lets a site that
 *   stops half-way through writing a redemption's resources finish the job on restart.
 *
 * Every write is durable when its promise resolves: the API server has accepted it.
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import type { KubeConfig, V1ConfigMap, V1OwnerReference } from "@kubernetes/client-node";
import {
  MAX_FILE_BYTES,
  parseDocuments,
  readNetworkStatus,
  resourceNameProblem,
  toYamlDocuments,
  validateNamespace,
  type Link,
  type NetworkStatus,
  type Resource,
  type Secret,
  type Site,
} from "../../api/index.js";
import { AlreadyExistsError, ConflictError, InvalidInputError, SkupperError } from "../../common/errors.js";
import { logger } from "../../common/log.js";
import type { PendingCredentials, SiteIdentity, SiteState } from "../types.js";
import { b64, CoreObjects, fromB64, MAX_CONFLICT_RETRIES, SKUPPER_LABELS } from "./core-objects.js";
import { CREDENTIALS_LABEL } from "./credentials.js";
import { contextNamespace, SKUPPER_GROUP, SKUPPER_VERSION } from "./resource-store.js";

const journalLog = logger("tokens");

export const SITE_STATE_CONFIGMAP = "skupper-site-state";
export const SITE_ID_KEY = "site-id";
export const NETWORK_STATUS_CONFIGMAP = "skupper-network-status";
export const NETWORK_STATUS_KEY = "network-status.json";
export const PENDING_REDEMPTION_LABEL = "skupper.io/pending-redemption";
export const ACCESS_TOKEN_ANNOTATION = "skupper.io/access-token";
export const REDEMPTION_KEY = "redemption.yaml";
/** The observer port's credential (docs/console.md): a Secret, readable by whoever may read the namespace's Secrets. */
export const OBSERVER_CREDENTIAL_SECRET = "skupper-observer-credential";
export const OBSERVER_CREDENTIAL_KEY = "credential";
const REDEMPTION_PREFIX = "skupper-redemption-";
/** A Secret's name is a DNS subdomain: at most 253 characters. */
const MAX_SECRET_NAME = 253;

export interface KubernetesSiteStateOptions {
  /** Default: the namespace of the kubeconfig's current context. */
  namespace?: string;
  /** Input problems to publish with the network status. */
  problems?: () => string[];
}

export class KubernetesSiteState implements SiteState {
  readonly namespace: string;
  private readonly core: CoreObjects;
  private identityPromise: Promise<SiteIdentity> | undefined;
  private lastNetworkStatus = "";
  /** Objects already given an owner reference to the Site (kind/name/uid). */
  private readonly adopted = new Set<string>();
  /** The Site the state belongs to, once belongTo has been told: what the site makes later is owned by it too. */
  private siteOwner: V1OwnerReference | undefined;

  constructor(
    config: KubeConfig,
    private readonly options: KubernetesSiteStateOptions = {},
  ) {
    this.namespace = validateNamespace(options.namespace ?? contextNamespace(config));
    this.core = new CoreObjects(config, this.namespace);
  }

  /** Read once per instance; concurrent first calls, here or in other processes, share one identity. */
  identity(): Promise<SiteIdentity> {
    this.identityPromise ??= this.loadIdentity().catch((err: unknown) => {
      this.identityPromise = undefined;
      throw err;
    });
    return this.identityPromise;
  }

  private async loadIdentity(): Promise<SiteIdentity> {
    for (let attempt = 0; ; attempt++) {
      const current = await this.core.readConfigMap(SITE_STATE_CONFIGMAP);
      const existing = current?.data?.[SITE_ID_KEY];
      if (existing) return { siteId: existing };
      const siteId = randomUUID();
      try {
        if (!current) {
          await this.core.createConfigMap({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: SITE_STATE_CONFIGMAP, labels: { ...SKUPPER_LABELS } }, data: { [SITE_ID_KEY]: siteId } });
        } else {
          // There, but without an identity (edited by hand): add one, unless someone else does first.
          const replaced = await this.core.replaceConfigMap({ ...current, data: { ...(current.data ?? {}), [SITE_ID_KEY]: siteId } });
          if (!replaced) continue;
        }
        return { siteId };
      } catch (err) {
        // Another instance created or changed it first: its identity is the site's.
        if (!(err instanceof AlreadyExistsError || err instanceof ConflictError) || attempt >= MAX_CONFLICT_RETRIES) throw err;
      }
    }
  }

  /** The observer port's credential: made on first use, the same for every later pod. */
  async observerCredential(): Promise<string> {
    for (let attempt = 0; ; attempt++) {
      const existing = await readObserverCredential(this.core);
      if (existing) return existing;
      try {
        await this.core.createSecret({
          apiVersion: "v1",
          kind: "Secret",
          // Labelled as the site's credentials: tied to the Site, and removed by `site delete`.
          metadata: {
            name: OBSERVER_CREDENTIAL_SECRET,
            labels: { ...SKUPPER_LABELS, [CREDENTIALS_LABEL]: "true" },
            ...(this.siteOwner ? { ownerReferences: [this.siteOwner] } : {}),
          },
          type: "Opaque",
          data: { [OBSERVER_CREDENTIAL_KEY]: b64(randomBytes(32).toString("base64url")) },
        });
      } catch (err) {
        // Another pod made it first: its credential is the site's.
        if (!(err instanceof AlreadyExistsError) || attempt >= MAX_CONFLICT_RETRIES) throw err;
      }
    }
  }

  /** Writes the view to its ConfigMap when it changed, with the input problems known. */
  async publishNetworkStatus(status: NetworkStatus): Promise<void> {
    const problems = [...new Set([...(status.inputProblems ?? []), ...(this.options.problems?.() ?? [])])];
    const text = JSON.stringify({ ...status, inputProblems: problems }, null, 2) + "\n";
    if (text === this.lastNetworkStatus) return;
    await this.writeConfigMap(NETWORK_STATUS_CONFIGMAP, { [NETWORK_STATUS_KEY]: text });
    this.lastNetworkStatus = text;
  }

  /** The view last published, as a client reads it (through `readNetworkStatus`); undefined when there is none or it is not one. */
  async networkStatus(): Promise<NetworkStatus | undefined> {
    const text = (await this.core.readConfigMap(NETWORK_STATUS_CONFIGMAP))?.data?.[NETWORK_STATUS_KEY];
    if (text === undefined) return undefined;
    try {
      return readNetworkStatus(JSON.parse(text));
    } catch {
      return undefined;
    }
  }

  /** What an earlier run left; unreadable entries are reported and skipped. */
  async pendingRedemptions(): Promise<Map<string, PendingCredentials>> {
    const pending = new Map<string, PendingCredentials>();
    const secrets = await this.core.listSecrets(`${PENDING_REDEMPTION_LABEL}=true`);
    secrets.sort((a, b) => ((a.metadata?.name ?? "") < (b.metadata?.name ?? "") ? -1 : 1));
    for (const item of secrets) {
      const name = item.metadata?.name ?? "";
      const token = item.metadata?.annotations?.[ACCESS_TOKEN_ANNOTATION];
      if (token === undefined || resourceNameProblem(token) || redemptionSecretName(token) !== name) {
        journalLog.warn(`Secret "${name}" in namespace "${this.namespace}" is not named after the access token it names; ignored`);
        continue;
      }
      const text = fromB64(item.data?.[REDEMPTION_KEY]) ?? "";
      const { resources, problems } = text.length > MAX_FILE_BYTES ? { resources: [] as Resource[], problems: ["too large"] } : parseDocuments(text, `Secret ${name}`);
      const secretsOf = resources.filter((r): r is Secret => r.kind === "Secret");
      const links = resources.filter((r): r is Link => r.kind === "Link");
      if (problems.length > 0 || secretsOf.length !== 1 || links.length === 0 || secretsOf.length + links.length !== resources.length) {
        journalLog.warn(`Secret "${name}" in namespace "${this.namespace}" does not hold the credentials of a redemption; ignored (${problems[0] ?? "expected one Secret and its Links"})`);
        continue;
      }
      pending.set(token, { secret: secretsOf[0] as Secret, links });
    }
    return pending;
  }

  /** Durable when it resolves (the API server accepted the Secret). */
  async savePendingRedemption(token: string, credentials: PendingCredentials): Promise<void> {
    const name = this.redemptionName(token);
    const body = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name, labels: { ...SKUPPER_LABELS, [PENDING_REDEMPTION_LABEL]: "true" }, annotations: { [ACCESS_TOKEN_ANNOTATION]: token } },
      type: "Opaque",
      data: { [REDEMPTION_KEY]: b64(toYamlDocuments([credentials.secret, ...credentials.links])) },
    };
    for (let attempt = 0; ; attempt++) {
      try {
        const current = await this.core.readSecret(name);
        if (!current) await this.core.createSecret(body);
        else if (!(await this.core.replaceSecret({ ...body, metadata: { ...body.metadata, resourceVersion: current.metadata?.resourceVersion } }))) continue;
        return;
      } catch (err) {
        if (!(err instanceof AlreadyExistsError || err instanceof ConflictError) || attempt >= MAX_CONFLICT_RETRIES) throw err;
      }
    }
  }

  async removePendingRedemption(token: string): Promise<void> {
    await this.core.deleteSecret(this.redemptionName(token));
  }

  /** Removes the identity, the published view and every pending redemption (`system uninstall`). */
  async removeAll(): Promise<void> {
    await this.core.deleteConfigMap(SITE_STATE_CONFIGMAP);
    await this.core.deleteConfigMap(NETWORK_STATUS_CONFIGMAP);
    for (const item of await this.core.listSecrets(`${PENDING_REDEMPTION_LABEL}=true`)) if (item.metadata?.name) await this.core.deleteSecret(item.metadata.name);
    this.identityPromise = undefined;
    this.lastNetworkStatus = "";
  }

  private redemptionName(token: string): string {
    const problem = resourceNameProblem(token);
    if (problem) throw new InvalidInputError(`access token name ${JSON.stringify(String(token).slice(0, 80))} is not valid: ${problem}`);
    return redemptionSecretName(token);
  }

  /** Owner references from the site's state ConfigMaps and credential Secrets to the Site. */
  async belongTo(site: Site): Promise<void> {
    const uid = site.metadata.uid;
    if (!uid) return;
    const owner: V1OwnerReference = { apiVersion: `${SKUPPER_GROUP}/${SKUPPER_VERSION}`, kind: "Site", name: site.metadata.name, uid, blockOwnerDeletion: true };
    this.siteOwner = owner;
    const owned = (o: { metadata?: { ownerReferences?: V1OwnerReference[] } }) => (o.metadata?.ownerReferences ?? []).some((r) => r.uid === uid);
    const withOwner = <T extends { metadata?: { ownerReferences?: V1OwnerReference[] } }>(o: T): T => ({
      ...o,
      metadata: { ...o.metadata, ownerReferences: [...(o.metadata?.ownerReferences ?? []).filter((r) => r.kind !== "Site"), owner] },
    });
    for (const name of [SITE_STATE_CONFIGMAP, NETWORK_STATUS_CONFIGMAP]) {
      const key = `ConfigMap/${name}/${uid}`;
      if (this.adopted.has(key)) continue;
      const current = await this.core.readConfigMap(name);
      if (current && !owned(current)) await this.core.replaceConfigMap(withOwner(current));
      if (current) this.adopted.add(key);
    }
    for (const secret of await this.core.listSecrets(`${CREDENTIALS_LABEL}=true`)) {
      const key = `Secret/${secret.metadata?.name}/${uid}`;
      if (this.adopted.has(key)) continue;
      if (!owned(secret)) await this.core.replaceSecret(withOwner(secret));
      this.adopted.add(key);
    }
  }

  /** Creates or replaces a ConfigMap's data (last writer wins: only the site writes these). */
  private async writeConfigMap(name: string, data: Record<string, string>): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        const current = await this.core.readConfigMap(name);
        if (!current) {
          await this.core.createConfigMap({ apiVersion: "v1", kind: "ConfigMap", metadata: { name, labels: { ...SKUPPER_LABELS } }, data });
          return;
        }
        const body: V1ConfigMap = { ...current, metadata: { ...current.metadata, labels: { ...(current.metadata?.labels ?? {}), ...SKUPPER_LABELS } }, data };
        if (await this.core.replaceConfigMap(body)) return;
      } catch (err) {
        if (!(err instanceof AlreadyExistsError || err instanceof ConflictError) || attempt >= MAX_CONFLICT_RETRIES) throw err;
      }
      if (attempt >= MAX_CONFLICT_RETRIES) throw new SkupperError("ERR_KUBERNETES", `ConfigMap "${name}" kept disappearing in namespace "${this.namespace}"`);
    }
  }
}

/**
 * `skupper-redemption-<token>`, or, when that is longer than a Secret's name may be, its start
 * and a hash of the whole token name (still a valid DNS subdomain: the cut never ends in "-" or ".").
 */
export function redemptionSecretName(token: string): string {
  const plain = `${REDEMPTION_PREFIX}${token}`;
  if (plain.length <= MAX_SECRET_NAME) return plain;
  const hash = createHash("sha256").update(token).digest("hex").slice(0, 16);
  const head = plain.slice(0, MAX_SECRET_NAME - hash.length - 1).replace(/[-.]+$/, "");
  return `${head}-${hash}`;
}

/** The observer credential the site made, if it made one yet. */
export async function readObserverCredential(core: CoreObjects): Promise<string | undefined> {
  const value = fromB64((await core.readSecret(OBSERVER_CREDENTIAL_SECRET))?.data?.[OBSERVER_CREDENTIAL_KEY])?.trim();
  return value || undefined;
}
