/**
 * Certificate authorities and leaf certificates: ECDSA P-256, SHA-256, random 128-bit serials.
 * Server certificates carry serverAuth only and client certificates clientAuth only (the
 * original put both on every leaf). A CA a user gives a site may also have an RSA or another
 * NIST-curve key; leaves are still P-256.
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { isIP } from "node:net";
import { createPrivateKey, randomBytes, webcrypto, X509Certificate, type KeyObject } from "node:crypto";
import { certificateSiteIds, siteIdUri } from "./site-id.js";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

const ALGORITHM = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const DAY_MS = 86_400_000;
export const DEFAULT_VALIDITY_DAYS = 5 * 365;

/** PEM bundle in the layout of a Kubernetes TLS secret: `ca.crt`, `tls.crt`, `tls.key`. */
export interface Credentials {
  ca: string;
  cert: string;
  key: string;
}

export type CertificateUsage = "server" | "client" | "server-and-client";

export interface CertificateRequest {
  commonName: string;
  /** DNS names and IP addresses; each goes in as the SAN type it is. */
  hosts?: string[];
  usage: CertificateUsage;
  /** The site this certificate speaks for, carried as a SAN URI `urn:skupper:site:<id>`. */
  siteId?: string;
  /** A CA that signs others (an intermediate of the issuer) rather than a leaf; usage is then ignored. */
  authority?: boolean;
  validityDays?: number;
  /** Overrides, for tests that need certificates outside their validity period. */
  notBefore?: Date;
  notAfter?: Date;
}

async function generateKeys(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ALGORITHM, true, ["sign", "verify"])) as CryptoKeyPair;
}

async function exportKey(key: CryptoKey): Promise<string> {
  const pkcs8 = await webcrypto.subtle.exportKey("pkcs8", key);
  return x509.PemConverter.encode(pkcs8, "PRIVATE KEY") + "\n";
}

type SigningAlgorithm = { name: "ECDSA"; namedCurve: string; hash: string } | { name: "RSASSA-PKCS1-v1_5"; hash: string };

const CURVES: Record<string, { namedCurve: string; hash: string }> = {
  prime256v1: { namedCurve: "P-256", hash: "SHA-256" },
  secp384r1: { namedCurve: "P-384", hash: "SHA-384" },
  secp521r1: { namedCurve: "P-521", hash: "SHA-512" },
};

/**
 * The signing key of an issuer: ours are ECDSA P-256 in PKCS#8, but a CA a user gives a site may
 * be RSA or another NIST curve, in PKCS#8, PKCS#1 or SEC1 PEM.
 */
async function importSigningKey(pem: string): Promise<{ key: CryptoKey; algorithm: SigningAlgorithm }> {
  const keyObject = createPrivateKey(pem);
  const der = keyObject.export({ type: "pkcs8", format: "der" });
  let algorithm: SigningAlgorithm;
  if (keyObject.asymmetricKeyType === "rsa") algorithm = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
  else if (keyObject.asymmetricKeyType === "ec" && CURVES[keyObject.asymmetricKeyDetails?.namedCurve ?? ""]) {
    algorithm = { name: "ECDSA", ...(CURVES[keyObject.asymmetricKeyDetails?.namedCurve as string] as { namedCurve: string; hash: string }) };
  } else {
    throw new Error(`the issuer's ${keyObject.asymmetricKeyType ?? "unknown"} key ${keyObject.asymmetricKeyDetails?.namedCurve ?? ""} cannot sign here (use RSA, or ECDSA P-256, P-384 or P-521)`);
  }
  return { key: await webcrypto.subtle.importKey("pkcs8", der, algorithm, false, ["sign"]), algorithm };
}

/**
 * Why `credentials` cannot serve as a CA that issues certificates, or undefined when it can: the
 * certificate must be a current CA certificate and the key its private key, of a kind we sign with.
 */
export function issuerProblem(credentials: { cert: string; key: string }): string | undefined {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(credentials.cert);
  } catch {
    return "tls.crt does not hold a valid PEM certificate";
  }
  if (!cert.ca) return "tls.crt is not a CA certificate (basicConstraints CA:TRUE)";
  let key: KeyObject;
  try {
    key = createPrivateKey(credentials.key);
  } catch {
    return "tls.key does not hold a valid PEM private key";
  }
  if (!cert.checkPrivateKey(key)) return "tls.key is not the private key of the certificate in tls.crt";
  if (!["rsa", "ec"].includes(key.asymmetricKeyType ?? "") || (key.asymmetricKeyType === "ec" && !CURVES[key.asymmetricKeyDetails?.namedCurve ?? ""])) {
    return `its ${key.asymmetricKeyType} key cannot sign here (use RSA, or ECDSA P-256, P-384 or P-521)`;
  }
  const now = Date.now();
  if (new Date(cert.validTo).getTime() <= now) return `the CA certificate expired on ${new Date(cert.validTo).toISOString()}`;
  if (new Date(cert.validFrom).getTime() > now + 5 * 60_000) return `the CA certificate is not valid before ${new Date(cert.validFrom).toISOString()}`;
  return undefined;
}

function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] as number) & 0x7f; // positive
  return bytes.toString("hex");
}

function distinguishedName(commonName: string): string {
  return `CN=${commonName.replace(/([,+"\\<>;=])/g, "\\$1")}`;
}

function validity(request: { validityDays?: number; notBefore?: Date; notAfter?: Date }): { notBefore: Date; notAfter: Date } {
  // Back-date a little so a peer whose clock is slightly behind still accepts a fresh certificate.
  const notBefore = request.notBefore ?? new Date(Date.now() - 5 * 60_000);
  const notAfter = request.notAfter ?? new Date(Date.now() + (request.validityDays ?? DEFAULT_VALIDITY_DAYS) * DAY_MS);
  return { notBefore, notAfter };
}

export async function createCA(commonName: string, options: { validityDays?: number } = {}): Promise<Credentials> {
  const keys = await generateKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: distinguishedName(commonName),
    keys: keys as never,
    signingAlgorithm: ALGORITHM,
    ...validity(options),
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as never),
    ],
  });
  const pem = cert.toString("pem") + "\n";
  return { ca: pem, cert: pem, key: await exportKey(keys.privateKey) };
}

export async function issueCertificate(issuer: Credentials, request: CertificateRequest): Promise<Credentials> {
  const issuerCert = new x509.X509Certificate(issuer.cert);
  const signer = await importSigningKey(issuer.key);
  const keys = await generateKeys();
  const hosts = uniqueHosts(request.hosts ?? []);
  const usages = { server: [x509.ExtendedKeyUsage.serverAuth], client: [x509.ExtendedKeyUsage.clientAuth], "server-and-client": [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth] };
  const extensions: x509.Extension[] = request.authority
    ? [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as never),
        await x509.AuthorityKeyIdentifierExtension.create(issuerCert, false),
      ]
    : [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension(usages[request.usage], false),
        await x509.AuthorityKeyIdentifierExtension.create(issuerCert, false),
      ];
  const names: Array<{ type: "ip" | "dns" | "url"; value: string }> = hosts.map((host) => (isIP(host) ? { type: "ip" as const, value: host } : { type: "dns" as const, value: host }));
  if (request.siteId !== undefined) names.push({ type: "url", value: siteIdUri(request.siteId) });
  if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names, false));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: distinguishedName(request.commonName),
    issuer: issuerCert.subject,
    publicKey: keys.publicKey as never,
    signingKey: signer.key as never,
    signingAlgorithm: signer.algorithm,
    ...validity(request),
    extensions,
  });
  return { ca: issuer.cert, cert: cert.toString("pem") + "\n", key: await exportKey(keys.privateKey) };
}

/** Trims, unbrackets and de-duplicates hosts; IPv6 addresses are compared in canonical form. */
export function uniqueHosts(hosts: string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const raw of hosts) {
    const host = canonicalHost(raw);
    if (host === "" || seen.has(host)) continue;
    seen.add(host);
    out.push(host);
  }
  return out;
}

/** Lower-case host; IPv6 in its compressed form ("FE80:0:0:0:0:0:0:1" → "fe80::1"). */
export function canonicalHost(raw: string): string {
  const host = raw.trim().replace(/^\[(.*)\]$/, "$1").toLowerCase();
  if (isIP(host) === 6) return new URL(`http://[${host}]/`).hostname.slice(1, -1);
  return host;
}

export interface CertificateInfo {
  commonName: string;
  hosts: string[];
  /** The site named by a `urn:skupper:site:` SAN URI, if exactly one is. */
  siteId?: string;
  notBefore: Date;
  notAfter: Date;
  isCA: boolean;
  serialNumber: string;
  fingerprint256: string;
}

/** Reads the facts we check about a PEM certificate, using Node's own X.509 parser. */
export function describeCertificate(pem: string): CertificateInfo {
  const cert = new X509Certificate(pem);
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1] ?? "";
  const hosts = (cert.subjectAltName ?? "")
    .split(/,\s*/)
    .map((entry) => /^(?:DNS|IP Address):(.*)$/.exec(entry)?.[1])
    .filter((h): h is string => h !== undefined && h !== "");
  const siteIds = certificateSiteIds(cert);
  return {
    commonName: cn,
    hosts,
    ...(siteIds.length === 1 ? { siteId: siteIds[0] as string } : {}),
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    isCA: cert.ca,
    serialNumber: cert.serialNumber,
    fingerprint256: cert.fingerprint256,
  };
}

/** True when `pem` was signed by the key of `issuerPem`. */
export function isIssuedBy(pem: string, issuerPem: string): boolean {
  try {
    const cert = new X509Certificate(pem);
    const issuer = new X509Certificate(issuerPem);
    return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

/** Whether a certificate is valid now and for at least `marginMs` more. */
export function isCurrent(pem: string, marginMs = 0, now = Date.now()): boolean {
  const info = describeCertificate(pem);
  return info.notBefore.getTime() <= now + 5 * 60_000 && info.notAfter.getTime() > now + marginMs;
}

/** Whether `pem` holds a well-formed certificate. */
/** The same PEM certificate, however its lines are wrapped or indented. */
export function sameCertificate(a: string, b: string): boolean {
  return a.replace(/\s+/g, "") === b.replace(/\s+/g, "");
}

export function isCertificate(pem: string): boolean {
  try {
    new X509Certificate(pem);
    return true;
  } catch {
    return false;
  }
}
