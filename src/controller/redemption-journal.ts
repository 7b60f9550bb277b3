/**
 * Credentials a redemption yielded, kept in runtime (`runtime/redemptions/<token>.yaml`, mode
 * 0600) from the moment they arrive until the token's redeemed status is on disk. The grant
 * server counts a redemption before it answers, so these files are what lets a site that stops
 * half-way through writing a redemption's Secret and Links finish the job on restart instead of
 * redeeming the token again.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import { parseDocuments, toYamlDocuments, type Link, type Secret } from "../api/index.js";
import { readFileIfExists, removeIfExists, writeFileAtomic } from "../common/files.js";
import { logger } from "../common/log.js";
import type { RedeemedCredentials } from "../grants/index.js";

const log = logger("tokens");
const FILE_MODE = 0o600;

export class RedemptionJournal {
  private readonly entries = new Map<string, RedeemedCredentials>();

  constructor(readonly dir: string) {}

  /** Reads what an earlier run of the site left; unreadable entries are reported and skipped. */
  async load(): Promise<void> {
    let files: string[] = [];
    try {
      files = (await fs.readdir(this.dir)).filter((f) => f.endsWith(".yaml") && !f.startsWith("."));
    } catch {
      return; // nothing journaled yet
    }
    for (const file of files) {
      const token = file.slice(0, -".yaml".length);
      const text = await readFileIfExists(path.join(this.dir, file));
      const { resources, problems } = parseDocuments(text ?? "", path.join("runtime", "redemptions", file));
      const secrets = resources.filter((r): r is Secret => r.kind === "Secret");
      const links = resources.filter((r): r is Link => r.kind === "Link");
      if (problems.length > 0 || secrets.length !== 1 || links.length === 0 || secrets.length + links.length !== resources.length) {
        log.warn(`${path.join(this.dir, file)} does not hold the credentials of a redemption; ignored (${problems[0] ?? "expected one Secret and its Links"})`);
        continue;
      }
      this.entries.set(token, { secret: secrets[0] as Secret, links });
    }
  }

  get(token: string): RedeemedCredentials | undefined {
    return this.entries.get(token);
  }

  /** Durably records the credentials of `token` (atomic write with fsync). */
  async write(token: string, credentials: RedeemedCredentials): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.file(token), toYamlDocuments([credentials.secret, ...credentials.links]), { mode: FILE_MODE });
    this.entries.set(token, credentials);
  }

  async remove(token: string): Promise<void> {
    this.entries.delete(token);
    await removeIfExists(this.file(token));
  }

  private file(token: string): string {
    return path.join(this.dir, `${token}.yaml`);
  }
}
