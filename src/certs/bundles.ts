/**
 * Credentials on disk (`<dir>/ca.crt`, `tls.crt`, `tls.key`, key mode 0600) and the
 * "load it, or create it if missing or no longer right" rules the site applies at start.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import { readFileIfExists, writeFileAtomic } from "../common/files.js";
import {
  createCA,
  describeCertificate,
  isCurrent,
  isIssuedBy,
  issueCertificate,
  uniqueHosts,
  type CertificateRequest,
  type Credentials,
} from "./certificates.js";

/** Leaf certificates are renewed when less than this much validity is left. */
export const RENEW_BEFORE_MS = 30 * 86_400_000;

export async function loadCredentials(dir: string): Promise<Credentials | undefined> {
  const [ca, cert, key] = await Promise.all(
    ["ca.crt", "tls.crt", "tls.key"].map((name) => readFileIfExists(path.join(dir, name))),
  );
  if (ca === undefined || cert === undefined || key === undefined) return undefined;
  return { ca, cert, key };
}

export async function saveCredentials(dir: string, credentials: Credentials): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFileAtomic(path.join(dir, "tls.key"), credentials.key, { mode: 0o600 });
  await writeFileAtomic(path.join(dir, "tls.crt"), credentials.cert, { mode: 0o600 });
  await writeFileAtomic(path.join(dir, "ca.crt"), credentials.ca, { mode: 0o600 });
}

/** Where one set of credentials is kept: a directory of PEM files, a Kubernetes Secret, … */
export interface CredentialSlot {
  load(): Promise<Credentials | undefined>;
  save(credentials: Credentials): Promise<void>;
}

/** A directory holding `ca.crt`, `tls.crt` and `tls.key`. */
export function directorySlot(dir: string): CredentialSlot {
  return { load: () => loadCredentials(dir), save: (credentials) => saveCredentials(dir, credentials) };
}

function slotOf(where: string | CredentialSlot): CredentialSlot {
  return typeof where === "string" ? directorySlot(where) : where;
}

/**
 * A CA is never replaced while it is readable: replacing it would silently break every link it
 * issued credentials for. It is created when absent.
 */
export async function ensureCA(where: string | CredentialSlot, commonName: string): Promise<{ credentials: Credentials; created: boolean }> {
  const slot = slotOf(where);
  const existing = await slot.load();
  if (existing) return { credentials: existing, created: false };
  const credentials = await createCA(commonName);
  await slot.save(credentials);
  return { credentials, created: true };
}

/**
 * Loads a leaf certificate, issuing a new one when it is missing, signed by another CA, for
 * other hosts, another name or another site id (or none where one is wanted), expired or close
 * to expiry.
 */
export async function ensureLeaf(
  where: string | CredentialSlot,
  issuer: Credentials,
  request: CertificateRequest,
): Promise<{ credentials: Credentials; issued: boolean }> {
  const slot = slotOf(where);
  const existing = await slot.load().catch(() => undefined);
  if (existing && leafMatches(existing, issuer, request)) return { credentials: existing, issued: false };
  const credentials = await issueCertificate(issuer, request);
  await slot.save(credentials);
  return { credentials, issued: true };
}

function leafMatches(existing: Credentials, issuer: Credentials, request: CertificateRequest): boolean {
  try {
    if (!isIssuedBy(existing.cert, issuer.cert) || !isCurrent(existing.cert, RENEW_BEFORE_MS)) return false;
    const info = describeCertificate(existing.cert);
    if (info.commonName !== request.commonName) return false;
    if (info.siteId !== request.siteId) return false;
    const want = new Set(uniqueHosts(request.hosts ?? []));
    const have = new Set(uniqueHosts(info.hosts));
    return want.size === have.size && [...want].every((h) => have.has(h));
  } catch {
    return false;
  }
}
