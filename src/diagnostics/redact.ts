/**
 * What `skupper debug dump` removes before anything is written: the redaction rules for
 * resources and other structured data, the rules for free text (logs, metrics, command output),
 * and the last check of the assembled dump against the secrets the site holds. A dump is meant
 * to be attached to a bug report: nothing in it may let its reader link to, or act as, the site.
 */
import { X509Certificate } from "node:crypto";

/** A PEM private key block of any type (`PRIVATE KEY`, `EC PRIVATE KEY`, `ENCRYPTED PRIVATE KEY` …), or its unterminated start. */
const PRIVATE_KEY_BLOCK = /-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----[\s\S]*?(?:-----END \1PRIVATE KEY-----|$)/g;
/** Whatever is left of a private key marker after redaction means the redaction failed. */
const PRIVATE_KEY_MARKER = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/;
const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/;

/** Keys whose value is a secret wherever they appear (outside labels and annotations), compared case-insensitively. */
export const SECRET_KEYS: readonly string[] = [
  "code",
  "token",
  "accessToken",
  "access-token",
  "access_token",
  "bearer",
  "authorization",
  "password",
  "passwd",
  "passphrase",
  "secret",
  "clientSecret",
  "client-secret",
  "apiKey",
  "api-key",
  "privateKey",
  "private-key",
  "key",
  "tls.key",
  "credential",
  "credentials",
  "observer-credential",
];
const SECRET_KEY_SET = new Set(SECRET_KEYS.map((k) => k.toLowerCase()));

/** The annotation `kubectl apply` keeps: a full copy of the applied object, Secret data and codes included. */
export const LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration";

export const REDACTED = "<redacted>";
export const REDACTED_PRIVATE_KEY = "<redacted: private key>";
export const REDACTED_SECRET = "<redacted: secret value>";

/** A rule for one field of one kind of resource. */
export interface RedactionRule {
  /** What it protects, in a few words (listed in docs/troubleshooting.md). */
  description: string;
  /** The resource kind it applies to; every kind when absent. */
  kind?: string;
  /** Where the field is, from the resource's root; `*` matches every key of an object. */
  path: readonly string[];
  /** What the field becomes; `key` is the field's own key. */
  replace(value: unknown, key: string): unknown;
}

/** Structured rules, applied before the key and value rules below. */
export const REDACTION_RULES: readonly RedactionRule[] = [
  { description: "Secret data: every value (keys and type are kept)", kind: "Secret", path: ["data", "*"], replace: (v, k) => redactSecretValue(v, k, "base64") },
  { description: "Secret stringData: every value", kind: "Secret", path: ["stringData", "*"], replace: (v, k) => redactSecretValue(v, k, "utf8") },
  { description: "AccessGrant spec.code: a code chosen for the grant", kind: "AccessGrant", path: ["spec", "code"], replace: () => REDACTED },
  { description: "AccessGrant status.code: the code that redeems the grant", kind: "AccessGrant", path: ["status", "code"], replace: () => REDACTED },
  { description: "AccessToken spec.code: the code the token redeems with", kind: "AccessToken", path: ["spec", "code"], replace: () => REDACTED },
  { description: "the last-applied-configuration annotation (a full copy of the object)", path: ["metadata", "annotations", LAST_APPLIED], replace: () => REDACTED },
];

/**
 * `value` (a resource, a network view, any JSON-like data) with every secret replaced:
 * the structured rules for `kind` (by default `value.kind`), then anywhere in it, every field
 * whose key is token-like (SECRET_KEYS; not in labels or annotations, where keys name things)
 * and every string holding a PEM private key. The input is not changed.
 */
export function redact(value: unknown, kind?: string): unknown {
  const ofKind = kind ?? (isObject(value) && typeof value.kind === "string" ? value.kind : undefined);
  let out = structuredClone(value);
  for (const rule of REDACTION_RULES) {
    if (rule.kind === undefined || rule.kind === ofKind) out = applyRule(out, rule.path, rule);
  }
  return redactDeep(out, []);
}

function applyRule(node: unknown, path: readonly string[], rule: RedactionRule): unknown {
  const [head, ...rest] = path;
  if (head === undefined || !isObject(node)) return node;
  const keys = head === "*" ? Object.keys(node) : Object.hasOwn(node, head) ? [head] : [];
  for (const key of keys) {
    node[key] = rest.length === 0 ? rule.replace(node[key], key) : applyRule(node[key], rest, rule);
  }
  return node;
}

function redactDeep(node: unknown, path: readonly string[]): unknown {
  if (typeof node === "string") return redactPrivateKeys(node);
  if (Array.isArray(node)) return node.map((item) => redactDeep(item, path));
  if (!isObject(node)) return node;
  const naming = path.length === 2 && path[0] === "metadata" && (path[1] === "labels" || path[1] === "annotations");
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    if (!naming && SECRET_KEY_SET.has(key.toLowerCase()) && value !== null && value !== "" && typeof value !== "object" && !isRedacted(value)) {
      out[key] = REDACTED;
    } else if (!naming && SECRET_KEY_SET.has(key.toLowerCase()) && isObject(value)) {
      // A token-like key holding an object (`credentials: {…}`): every leaf of it.
      out[key] = Object.fromEntries(Object.keys(value).map((k) => [k, REDACTED]));
    } else {
      out[key] = redactDeep(value, [...path, key]);
    }
  }
  return out;
}

function isRedacted(value: unknown): boolean {
  return typeof value === "string" && value.startsWith("<redacted");
}

/**
 * `<redacted: N bytes>`; for a public certificate (`tls.crt`, `ca.crt`, any `.crt` or a value
 * that is a PEM certificate) its subject, issuer and expiry are kept, never the certificate itself.
 */
export function redactSecretValue(value: unknown, key: string, encoding: "base64" | "utf8"): string {
  if (typeof value !== "string") return REDACTED;
  const bytes = encoding === "base64" ? Buffer.from(value, "base64") : Buffer.from(value, "utf8");
  const summary = key.endsWith(".crt") || key.endsWith(".pem") ? certificateSummary(bytes.toString("utf8")) : undefined;
  return `<redacted: ${bytes.length} bytes${summary ? `; ${summary}` : ""}>`;
}

/** `certificate subject "CN=x", issuer "CN=y", expires <ISO>` of the first certificate in `pem`, if it holds one. */
export function certificateSummary(pem: string): string | undefined {
  const block = CERTIFICATE_BLOCK.exec(pem)?.[0];
  if (!block) return undefined;
  try {
    const cert = new X509Certificate(block);
    const count = pem.match(/-----BEGIN CERTIFICATE-----/g)?.length ?? 1;
    const chain = count > 1 ? ` (first of ${count})` : "";
    return `certificate${chain} subject "${oneLine(cert.subject)}", issuer "${oneLine(cert.issuer)}", expires ${new Date(cert.validTo).toISOString()}`;
  } catch {
    return undefined;
  }
}

function oneLine(dn: string): string {
  return dn.split("\n").join(", ");
}

// ---- free text ----

/** Text rules: what is removed from logs, metrics and command output. */
export const TEXT_RULES: ReadonlyArray<{ description: string; pattern: RegExp; replace: string }> = [
  { description: "PEM private keys", pattern: PRIVATE_KEY_BLOCK, replace: REDACTED_PRIVATE_KEY },
  { description: "bearer credentials (`Authorization: Bearer …`)", pattern: /\b(Bearer\s+)[A-Za-z0-9._~+/=-]{8,}/g, replace: `$1${REDACTED}` },
  { description: "credentials in URLs (`?token=…`, `&code=…`)", pattern: /([?&](?:token|code|access_token|credential)=)[^&\s"']+/gi, replace: `$1${REDACTED}` },
];

export function redactPrivateKeys(text: string): string {
  return text.replace(PRIVATE_KEY_BLOCK, REDACTED_PRIVATE_KEY);
}

/** `text` with the text rules applied and every occurrence of a known secret (see `secretNeedles`) replaced. */
export function redactText(text: string, needles: readonly string[] = []): { text: string; found: number } {
  let out = text;
  let found = 0;
  for (const rule of TEXT_RULES) out = out.replace(rule.pattern, rule.replace);
  for (const needle of needles) {
    if (!out.includes(needle)) continue;
    const parts = out.split(needle);
    found += parts.length - 1;
    out = parts.join(REDACTED_SECRET);
  }
  return { text: out, found };
}

/**
 * Every form in which a known secret could appear in a dump: itself, its base64 form, its decoded
 * form when it is base64 (Secret data), and, for a PEM private key, its body and each body line.
 * Values shorter than MIN_SECRET_LENGTH are left out (they would match ordinary text); the
 * structured rules cover them.
 */
export const MIN_SECRET_LENGTH = 8;

export function secretNeedles(secret: string, options: { base64Value?: boolean } = {}): string[] {
  const out = new Set<string>();
  const add = (value: string): void => {
    const trimmed = value.trim();
    if (trimmed.length < MIN_SECRET_LENGTH) return;
    out.add(trimmed);
    out.add(Buffer.from(trimmed, "utf8").toString("base64"));
    for (const block of trimmed.match(PRIVATE_KEY_BLOCK) ?? []) {
      const body = block.split("\n").filter((line) => line !== "" && !line.startsWith("-----") && !line.includes(":"));
      for (const line of body) if (line.trim().length >= 32) out.add(line.trim());
      const joined = body.map((l) => l.trim()).join("");
      if (joined.length >= MIN_SECRET_LENGTH) out.add(joined);
    }
  };
  add(secret);
  if (options.base64Value) {
    const decoded = decodeBase64Text(secret);
    if (decoded !== undefined) add(decoded);
  }
  return [...out];
}

/** The UTF-8 text a base64 value holds, or undefined if it is not base64 of text. */
function decodeBase64Text(value: string): string | undefined {
  const compact = value.replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 !== 0) return undefined;
  const text = Buffer.from(compact, "base64").toString("utf8");
  return text.includes("\uFFFD") ? undefined : text;
}

/** The secrets in structured data (a resource, a parsed file) by the same rules `redact` applies. */
export function secretsIn(value: unknown): Array<{ value: string; base64Value: boolean }> {
  const out: Array<{ value: string; base64Value: boolean }> = [];
  const walk = (node: unknown, path: readonly string[], kind: string | undefined): void => {
    if (typeof node === "string") {
      for (const block of node.match(PRIVATE_KEY_BLOCK) ?? []) out.push({ value: block, base64Value: false });
      return;
    }
    if (Array.isArray(node)) {
      for (const item of node) walk(item, path, kind);
      return;
    }
    if (!isObject(node)) return;
    const ofKind = path.length === 0 && typeof node.kind === "string" ? node.kind : kind;
    if (path.length === 0) {
      for (const rule of REDACTION_RULES) {
        if (rule.kind !== undefined && rule.kind !== ofKind) continue;
        collectAt(node, rule.path, (v) => out.push({ value: v, base64Value: rule.path[0] === "data" }));
      }
    }
    const naming = path.length === 2 && path[0] === "metadata" && (path[1] === "labels" || path[1] === "annotations");
    for (const [key, child] of Object.entries(node)) {
      if (!naming && SECRET_KEY_SET.has(key.toLowerCase()) && (typeof child === "string" || typeof child === "number")) {
        out.push({ value: String(child), base64Value: false });
      } else walk(child, [...path, key], ofKind);
    }
  };
  walk(value, [], undefined);
  return out;
}

function collectAt(node: unknown, path: readonly string[], found: (value: string) => void): void {
  const [head, ...rest] = path;
  if (head === undefined) {
    if (typeof node === "string") found(node);
    return;
  }
  if (!isObject(node)) return;
  for (const key of head === "*" ? Object.keys(node) : [head]) collectAt(node[key], rest, found);
}

// ---- the last check ----

export interface Leak {
  file: string;
  /** What leaked, never the secret itself. */
  what: string;
}

/** Any private key marker or known secret still in `files` (checked after redaction: must be none). */
export function findLeaks(files: ReadonlyArray<{ path: string; text: string }>, needles: readonly string[]): Leak[] {
  const leaks: Leak[] = [];
  for (const file of files) {
    if (PRIVATE_KEY_MARKER.test(file.text)) leaks.push({ file: file.path, what: "a PEM private key" });
    const count = needles.filter((needle) => file.text.includes(needle)).length;
    if (count > 0) leaks.push({ file: file.path, what: `${count} known secret value(s) of the site` });
  }
  return leaks;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
