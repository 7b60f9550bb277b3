/**
 * The local platform's SiteState, in `runtime/` (docs/storage.md):
 *
 * - `site-state.json`: the site's identity, `{"siteId": "<uuid>"}`;
 * - `network-status.json`: the view of the network the site publishes for the CLI;
 * - `observer-credential`: the credential of the observer port (console, metrics) on a
 *   non-loopback address, made the first time it is needed;
 * - `redemptions/<token>.yaml`: credentials a redemption yielded, kept from the moment they
 *   arrive until they are written as resources. The grant server counts a redemption before it
 *   answers, so these files are what lets a site that stops half-way through writing a
 *   redemption's Secret and Links finish the job on restart instead of redeeming the token again.
 *
 * Every file is written atomically with mode 0600.
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";
import { MAX_FILE_BYTES, parseDocuments, resourceNameProblem, toYamlDocuments, type Link, type NetworkStatus, type Secret } from "../../api/index.js";
import { InvalidInputError } from "../../common/errors.js";
import { createFileExclusive, readFileIfExists, removeIfExists, writeFileAtomic } from "../../common/files.js";
import { logger } from "../../common/log.js";
import type { PendingCredentials, SiteIdentity, SiteState } from "../types.js";
import { DIR_MODE, FILE_MODE } from "./files.js";
import type { SitePaths } from "./paths.js";

const log = logger("site");
/** NAME_MAX of Linux file systems. */
const MAX_FILE_NAME_BYTES = 255;
const journalLog = logger("tokens");

export interface LocalSiteStateOptions {
  /** Input problems to publish with the network status (the resource store's). */
  problems?: () => string[];
}

export class LocalSiteState implements SiteState {
  private identityPromise: Promise<SiteIdentity> | undefined;
  private lastNetworkStatus = "";
  private lastPublished: NetworkStatus | undefined;

  constructor(
    readonly paths: SitePaths,
    private readonly options: LocalSiteStateOptions = {},
  ) {}

  /** Read once per process; concurrent first calls share one identity. */
  identity(): Promise<SiteIdentity> {
    this.identityPromise ??= this.loadIdentity().catch((err: unknown) => {
      this.identityPromise = undefined;
      throw err;
    });
    return this.identityPromise;
  }

  private async loadIdentity(): Promise<SiteIdentity> {
    const file = this.paths.stateFile;
    const text = await readFileIfExists(file);
    if (text) {
      try {
        const parsed = JSON.parse(text) as Partial<SiteIdentity>;
        if (typeof parsed.siteId === "string" && parsed.siteId) return { siteId: parsed.siteId };
      } catch {
        log.warn(`${file} is damaged; the site gets a new identity`);
      }
    }
    const state = { siteId: randomUUID() };
    await fs.mkdir(this.paths.runtime, { recursive: true, mode: DIR_MODE });
    await writeFileAtomic(file, JSON.stringify(state, null, 2) + "\n", { mode: FILE_MODE });
    return state;
  }

  /** Writes `network-status.json` when it changed, with the input problems the store found. */
  async publishNetworkStatus(status: NetworkStatus): Promise<void> {
    this.lastPublished = status;
    const problems = [...new Set([...(status.inputProblems ?? []), ...(this.options.problems?.() ?? [])])];
    const text = JSON.stringify({ ...status, inputProblems: problems }, null, 2) + "\n";
    if (text === this.lastNetworkStatus) return;
    await fs.mkdir(this.paths.runtime, { recursive: true, mode: DIR_MODE });
    await writeFileAtomic(this.paths.networkStatusFile, text, { mode: FILE_MODE });
    this.lastNetworkStatus = text;
  }

  /** Publishes the last status again, with the input problems as they are now. */
  async republish(): Promise<void> {
    if (this.lastPublished) await this.publishNetworkStatus(this.lastPublished);
  }

  /** What an earlier run left; unreadable entries are reported and skipped. */
  async pendingRedemptions(): Promise<Map<string, PendingCredentials>> {
    const pending = new Map<string, PendingCredentials>();
    let files: string[];
    try {
      files = (await fs.readdir(this.paths.redemptions)).filter((f) => f.endsWith(".yaml") && !f.startsWith("."));
    } catch {
      return pending; // nothing journaled yet
    }
    for (const file of files.sort()) {
      const full = path.join(this.paths.redemptions, file);
      let text: string | undefined;
      try {
        text = await readFileIfExists(full, MAX_FILE_BYTES);
      } catch (err) {
        journalLog.warn(`${full} cannot be read; ignored (${(err as Error).message})`);
        continue;
      }
      if (text === undefined) continue;
      // The token's name: in the first line (written since names too long for a file name are
      // possible), else the file name (as the site always wrote it).
      const token = TOKEN_LINE.exec(text)?.[1] ?? file.slice(0, -".yaml".length);
      if (resourceNameProblem(token) || redemptionFileName(token) !== file) {
        journalLog.warn(`${full} is not named after an access token; ignored`);
        continue;
      }
      const { resources, problems } = parseDocuments(text ?? "", path.join("runtime", "redemptions", file));
      const secrets = resources.filter((r): r is Secret => r.kind === "Secret");
      const links = resources.filter((r): r is Link => r.kind === "Link");
      if (problems.length > 0 || secrets.length !== 1 || links.length === 0 || secrets.length + links.length !== resources.length) {
        journalLog.warn(`${full} does not hold the credentials of a redemption; ignored (${problems[0] ?? "expected one Secret and its Links"})`);
        continue;
      }
      pending.set(token, { secret: secrets[0] as Secret, links });
    }
    return pending;
  }

  /** Durable when it resolves (atomic write with fsync). */
  async savePendingRedemption(token: string, credentials: PendingCredentials): Promise<void> {
    const file = this.redemptionFile(token);
    await fs.mkdir(this.paths.redemptions, { recursive: true, mode: DIR_MODE });
    const text = `# access token: ${token}\n${toYamlDocuments([credentials.secret, ...credentials.links])}`;
    await writeFileAtomic(file, text, { mode: FILE_MODE });
  }

  async removePendingRedemption(token: string): Promise<void> {
    await removeIfExists(this.redemptionFile(token));
  }

  /** `runtime/observer-credential` (0600): made on first use, the same on every later start. */
  async observerCredential(): Promise<string> {
    const file = this.paths.observerCredentialFile;
    const existing = (await readFileIfExists(file))?.trim();
    if (existing) return existing;
    await fs.mkdir(this.paths.runtime, { recursive: true, mode: DIR_MODE });
    await createFileExclusive(file, `${randomBytes(32).toString("base64url")}\n`, { mode: FILE_MODE });
    return ((await readFileIfExists(file)) ?? "").trim();
  }

  private redemptionFile(token: string): string {
    const problem = resourceNameProblem(token);
    if (problem) throw new InvalidInputError(`access token name ${JSON.stringify(String(token).slice(0, 80))} is not valid: ${problem}`);
    return path.join(this.paths.redemptions, redemptionFileName(token));
  }
}

const TOKEN_LINE = /^# access token: (\S+)\n/;

/** `<token>.yaml`, or for a name too long for that, its first part and a hash of the whole name. */
function redemptionFileName(token: string): string {
  const plain = `${token}.yaml`;
  if (Buffer.byteLength(plain) <= MAX_FILE_NAME_BYTES) return plain;
  const hash = createHash("sha256").update(token).digest("hex").slice(0, 16);
  return `${token.slice(0, MAX_FILE_NAME_BYTES - `_${hash}.yaml`.length)}_${hash}.yaml`;
}
