/**
 * The TLS credentials of listeners and connectors (`spec.tlsCredentials`): the Secret they name,
 * read and checked before the router sees any of it, so that a missing Secret, a missing key, a
 * certificate or key that does not parse, or a key that is not the certificate's, is a status
 * sentence naming the Secret, the key and what to do, never a failure at the first connection.
 *
 * Listener: `tls.crt` + `tls.key` (the server certificate clients see), and `ca.crt` when the
 * listener sets `requireClientCert` (clients must then present a certificate it issued). Connector: `ca.crt` (the CA the backend's
 * certificate must chain to), with `useClientCert` also `tls.crt` + `tls.key` (sent to the
 * backend). Private keys are only ever handed on, never put in a message.
 */
import { createPrivateKey, X509Certificate, type KeyObject } from "node:crypto";
import tls from "node:tls";
import { secretValue, type Connector, type Listener, type Secret } from "../api/index.js";
import type { ConnectorTls, ListenerTls } from "../router/index.js";

/** `verifyHostname` when a Connector does not say: see docs/decisions.md (TLS connectors). */
export const DEFAULT_VERIFY_HOSTNAME = true;
/** `useClientCert` when a Connector does not say, as in the original. */
export const DEFAULT_USE_CLIENT_CERT = false;

/** Credentials for the router, or a sentence saying what is wrong and what to do. */
export type Checked<T> = { credentials: T } | { problem: string };

/** The text of `key` in a Secret: `data` (base64) first, then `stringData`; empty counts as absent. */
export function secretText(secret: Secret, key: string): string | undefined {
  const text = secretValue(secret, key);
  return text && text.trim() ? text : undefined;
}

const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** The certificates of a PEM text (a bundle may hold several), or undefined if any does not parse. */
export function parseCertificates(pem: string): X509Certificate[] | undefined {
  const blocks = pem.match(CERTIFICATE_BLOCK);
  if (!blocks) return undefined;
  try {
    return blocks.map((block) => new X509Certificate(block));
  } catch {
    return undefined;
  }
}

/** An unencrypted PEM private key, or undefined. */
export function parsePrivateKey(pem: string): KeyObject | undefined {
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) return undefined;
  try {
    return createPrivateKey({ key: pem, format: "pem" });
  } catch {
    return undefined;
  }
}

const WHAT = {
  "tls.crt": "the PEM certificate (-----BEGIN CERTIFICATE-----)",
  "ca.crt": "the PEM certificate of the CA (-----BEGIN CERTIFICATE-----)",
  "tls.key": "an unencrypted PEM private key (-----BEGIN PRIVATE KEY-----)",
} as const;

type Key = keyof typeof WHAT;

/** What a use of a Secret needs, for the sentences. */
interface Need {
  keys: Key[];
  /** Why these keys: "a listener needs …". */
  why: string;
}

function missingProblem(name: string, need: Need): string {
  return `TLS credentials secret "${name}" not found: create a Secret "${name}" in this namespace with ${listKeys(need.keys)} (${need.why})`;
}

function listKeys(keys: string[]): string {
  return keys.length === 1 ? (keys[0] as string) : `${keys.slice(0, -1).join(", ")} and ${keys[keys.length - 1]}`;
}

/** Checks the keys `need` asks for; returns their texts or the first problem. */
function readKeys(secret: Secret, need: Need): Map<Key, string> | string {
  const name = secret.metadata.name;
  const texts = new Map<Key, string>();
  const missing: Key[] = [];
  for (const key of need.keys) {
    const text = secretText(secret, key);
    if (text === undefined) missing.push(key);
    else texts.set(key, text);
  }
  if (missing.length > 0) return `TLS credentials secret "${name}" has no ${listKeys(missing)}: add ${missing.length > 1 ? "them" : "it"} (${need.why})`;
  for (const key of need.keys) {
    const text = texts.get(key) as string;
    if (key === "tls.key") {
      if (!parsePrivateKey(text)) return `TLS credentials secret "${name}": tls.key is not a valid private key; put ${WHAT["tls.key"]} in tls.key`;
    } else if (!parseCertificates(text)) {
      return `TLS credentials secret "${name}": ${key} is not a valid certificate; put ${WHAT[key]} in ${key}`;
    }
  }
  const cert = texts.get("tls.crt");
  const key = texts.get("tls.key");
  if (cert !== undefined && key !== undefined) {
    const leaf = (parseCertificates(cert) as X509Certificate[])[0] as X509Certificate;
    if (!leaf.checkPrivateKey(parsePrivateKey(key) as KeyObject)) {
      return `TLS credentials secret "${name}": tls.key is not the private key of the certificate in tls.crt; put the certificate and its own key in the Secret`;
    }
  }
  return texts;
}

/** Whatever else the TLS library refuses (an unsupported key type), said the same way. */
function contextProblem(name: string, options: tls.SecureContextOptions): string | undefined {
  try {
    tls.createSecureContext(options);
    return undefined;
  } catch (err) {
    return `TLS credentials secret "${name}" cannot be used: ${(err as Error).message}`;
  }
}

/** Checking a Secret costs a few parses: the result is kept while the Secret object is the same. */
const checked = new WeakMap<Secret, Map<string, Checked<unknown>>>();

function memo<T>(secret: Secret, purpose: string, check: () => Checked<T>): Checked<T> {
  let bySecret = checked.get(secret);
  if (!bySecret) checked.set(secret, (bySecret = new Map()));
  let result = bySecret.get(purpose) as Checked<T> | undefined;
  if (!result) bySecret.set(purpose, (result = check()));
  return result;
}

const LISTENER_NEED: Need = { keys: ["tls.crt", "tls.key"], why: "a TLS listener needs its server certificate and private key" };

export function listenerTls(listener: Listener, secrets: ReadonlyMap<string, Secret>): Checked<ListenerTls> | undefined {
  const name = listener.spec.tlsCredentials;
  if (!name) return undefined;
  const secret = secrets.get(name);
  if (!secret) return { problem: missingProblem(name, LISTENER_NEED) };
  const checked = secretListenerTls(name, secret);
  if (!listener.spec.requireClientCert || "problem" in checked) return checked;
  if (!checked.credentials.ca) {
    return { problem: `TLS credentials secret "${name}" has no ca.crt: add the CA that issues the client certificates (requireClientCert is set), or unset requireClientCert` };
  }
  return { credentials: { ...checked.credentials, requireClientCert: true } };
}

function secretListenerTls(name: string, secret: Secret): Checked<ListenerTls> {
  return memo<ListenerTls>(secret, "listener", () => {
    const texts = readKeys(secret, LISTENER_NEED);
    if (typeof texts === "string") return { problem: texts };
    const ca = secretText(secret, "ca.crt");
    if (ca !== undefined && !parseCertificates(ca)) {
      return { problem: `TLS credentials secret "${name}": ca.crt is not a valid certificate; put ${WHAT["ca.crt"]} that issues the client certificates in ca.crt, or remove ca.crt` };
    }
    const credentials: ListenerTls = { cert: texts.get("tls.crt") as string, key: texts.get("tls.key") as string, ...(ca !== undefined ? { ca } : {}) };
    const problem = contextProblem(name, credentials);
    return problem ? { problem } : { credentials };
  });
}

export function connectorTls(connector: Connector, secrets: ReadonlyMap<string, Secret>): Checked<ConnectorTls> | undefined {
  const name = connector.spec.tlsCredentials;
  if (!name) return undefined;
  const useClientCert = connector.spec.useClientCert ?? DEFAULT_USE_CLIENT_CERT;
  const verifyHostname = connector.spec.verifyHostname ?? DEFAULT_VERIFY_HOSTNAME;
  const need: Need = useClientCert
    ? { keys: ["ca.crt", "tls.crt", "tls.key"], why: "a TLS connector with useClientCert needs the CA of the backend's certificate and the client certificate and key it sends" }
    : { keys: ["ca.crt"], why: "a TLS connector needs the CA that issued the backend's certificate" };
  const secret = secrets.get(name);
  if (!secret) return { problem: missingProblem(name, need) };
  const checkedSecret = memo(secret, useClientCert ? "connector+client" : "connector", (): Checked<Omit<ConnectorTls, "verifyHostname">> => {
    const texts = readKeys(secret, need);
    if (typeof texts === "string") return { problem: texts };
    const credentials = {
      ca: texts.get("ca.crt") as string,
      ...(useClientCert ? { cert: texts.get("tls.crt") as string, key: texts.get("tls.key") as string } : {}),
    };
    const problem = contextProblem(name, credentials);
    return problem ? { problem } : { credentials };
  });
  if ("problem" in checkedSecret) return checkedSecret;
  return { credentials: { ...checkedSecret.credentials, verifyHostname } };
}
