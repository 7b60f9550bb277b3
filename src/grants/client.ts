/**
 * Redeeming an access token: POST the code to the token's URL over HTTPS, trusting only the
 * CA in the token, and read back a TLS Secret and one or more Links.
 *
 * The response is not trusted beyond what the token vouches for (the server's identity): it must
 * be exactly one TLS Secret and the Links that use it, nothing else, and the redeeming site names
 * them itself, from the token (credentialNames), so a grant server can never choose which
 * resources of the redeeming site get written.
 */
import https from "node:https";
import { isIP } from "node:net";
import { API_VERSION, NAME_PATTERN, parseDocuments, type Endpoint, type Link, type Secret } from "../api/index.js";
import { isCertificate } from "../certs/index.js";
import { SkupperError } from "../common/errors.js";
import { Header, MAX_LINKS_PER_REDEMPTION, MAX_RESPONSE_BYTES, ResponseAnnotation, type RefusalReason } from "./protocol.js";

/** No byte for this long fails the request; the whole exchange may take three times as long. */
const TIMEOUT_MS = 10_000;

export interface TokenToRedeem {
  url: string;
  code: string;
  ca: string;
}

export interface RedeemerIdentity {
  /** Name for the Secret and Link (the AccessToken's name). */
  name: string;
  subject: string;
  siteId: string;
  siteName: string;
}

/** What a redemption yields, already named for the redeeming site (see credentialNames). */
export interface RedeemedCredentials {
  secret: Secret;
  links: Link[];
}

/**
 * The names a redemption's resources get on the redeeming site, whatever the server called them:
 * the Secret and the first Link are named like the token; further Links (an issuing site with
 * several router groups) get "-2", "-3", ... appended.
 */
export function credentialNames(tokenName: string, linkCount: number): { secret: string; links: string[] } {
  const links = Array.from({ length: Math.max(1, linkCount) }, (_, i) => (i === 0 ? tokenName : `${tokenName}-${i + 1}`));
  return { secret: tokenName, links };
}

export type RedemptionFailure = RefusalReason | "transport" | "tls" | "response";

/**
 * A redemption that did not produce credentials. `retryable` failures (network, server errors)
 * may succeed later; refusals will not.
 */
export class RedemptionError extends SkupperError {
  constructor(
    readonly reason: RedemptionFailure,
    message: string,
    readonly retryable: boolean,
    readonly details: { issuerSiteId?: string; issuerSiteName?: string } = {},
  ) {
    super(`ERR_REDEMPTION_${reason.toUpperCase()}`, message, 1);
  }
}

export async function redeemToken(token: TokenToRedeem, identity: RedeemerIdentity, timeoutMs = TIMEOUT_MS): Promise<RedeemedCredentials> {
  let url: URL;
  try {
    url = new URL(token.url);
  } catch {
    throw new RedemptionError("invalid", `the token's URL "${token.url}" is not a valid URL`, false);
  }
  if (url.protocol !== "https:") throw new RedemptionError("invalid", `the token's URL must use https (got ${url.protocol.replace(":", "")})`, false);
  if (!token.ca.includes("-----BEGIN CERTIFICATE-----")) {
    throw new RedemptionError("invalid", "the token's CA is not a PEM certificate", false);
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const where = url.host;
  const { status, headers, body } = await post(url, host, token, identity, timeoutMs, where);
  if (status === 200) return acceptCredentials(body, where, identity.name);
  throw refusalError(status, headers, body.trim(), where);
}

function post(
  url: URL,
  host: string,
  token: TokenToRedeem,
  identity: RedeemerIdentity,
  timeoutMs: number,
  where: string,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const request = https.request(
      {
        protocol: "https:",
        hostname: host,
        port: url.port || 443,
        path: url.pathname + url.search,
        method: "POST",
        ca: token.ca,
        ...(isIP(host) ? {} : { servername: host }),
        minVersion: "TLSv1.3",
        agent: false,
        timeout: timeoutMs,
        headers: {
          [Header.name]: identity.name,
          [Header.subject]: identity.subject,
          [Header.siteId]: identity.siteId,
          [Header.siteName]: identity.siteName,
          "Content-Length": Buffer.byteLength(token.code),
        },
      },
      (response) => {
        const oversized = () =>
          request.destroy(
            new RedemptionError("response", `the grant server at ${where} sent an oversized response (over ${MAX_RESPONSE_BYTES} bytes)`, false),
          );
        if (Number(response.headers["content-length"] ?? 0) > MAX_RESPONSE_BYTES) return oversized();
        const chunks: Buffer[] = [];
        let size = 0;
        response.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_RESPONSE_BYTES) return oversized();
          chunks.push(chunk);
        });
        response.on("end", () =>
          settle(() => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString("utf8") })),
        );
        response.on("error", (err) => settle(() => reject(err instanceof RedemptionError ? err : transportError(err, where))));
      },
    );
    const timedOut = () => request.destroy(Object.assign(new Error("timeout"), { code: "ETIMEDOUT" }));
    // The inactivity timeout alone would let a server that trickles bytes hold us forever.
    const deadline = setTimeout(timedOut, timeoutMs * 3);
    deadline.unref();
    let settled = false;
    const settle = (action: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      action();
    };
    request.on("timeout", timedOut);
    request.on("error", (err) => settle(() => reject(err instanceof RedemptionError ? err : transportError(err, where))));
    request.end(token.code);
  });
}

function transportError(err: Error, where: string): RedemptionError {
  const code = (err as NodeJS.ErrnoException).code ?? "";
  switch (code) {
    case "ECONNREFUSED":
      return new RedemptionError("transport", `cannot reach the grant server at ${where}: connection refused (is the issuing site running with link access enabled?)`, true);
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return new RedemptionError("transport", `cannot reach the grant server at ${where}: the host name does not resolve`, true);
    case "ETIMEDOUT":
    case "ECONNRESET":
      return new RedemptionError("transport", `cannot reach the grant server at ${where}: ${code === "ETIMEDOUT" ? "timed out" : "connection reset"}`, true);
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return new RedemptionError("transport", `cannot reach the grant server at ${where}: no route to host`, true);
    case "UNABLE_TO_VERIFY_LEAF_SIGNATURE":
    case "SELF_SIGNED_CERT_IN_CHAIN":
    case "DEPTH_ZERO_SELF_SIGNED_CERT":
    case "UNABLE_TO_GET_ISSUER_CERT_LOCALLY":
    case "CERT_SIGNATURE_FAILURE":
      return new RedemptionError("tls", `the server at ${where} is not the one that issued this token: its certificate is not signed by the token's CA`, false);
    case "ERR_TLS_CERT_ALTNAME_INVALID":
      return new RedemptionError("tls", `the grant server's certificate does not cover ${where}`, false);
    case "CERT_HAS_EXPIRED":
      return new RedemptionError("tls", `the grant server's certificate at ${where} has expired`, false);
    default:
      if (code.startsWith("ERR_SSL") || code.startsWith("ERR_TLS")) {
        return new RedemptionError("tls", `TLS with the grant server at ${where} failed: ${err.message}`, false);
      }
      return new RedemptionError("transport", `cannot reach the grant server at ${where}: ${err.message}`, true);
  }
}

function refusalError(status: number, headers: Record<string, string | string[] | undefined>, text: string, where: string): RedemptionError {
  const header = (name: string) => {
    const value = headers[name];
    return typeof value === "string" ? value : undefined;
  };
  const details = {
    ...(header(Header.issuerSiteId) ? { issuerSiteId: header(Header.issuerSiteId) } : {}),
    ...(header(Header.issuerSiteName) ? { issuerSiteName: header(Header.issuerSiteName) } : {}),
  };
  const reason = (header(Header.error) ?? legacyReason(status, text)) as RefusalReason | undefined;
  switch (reason) {
    case "unknown":
      return new RedemptionError(reason, `the issuing site does not know this token (${text}): its grant was deleted, or the token is from a site that was re-created`, false);
    case "expired":
      return new RedemptionError(reason, `the token has expired (${text}); ask the issuing site for a new token`, false);
    case "exhausted":
      return new RedemptionError(reason, `the token has already been used as many times as it allows (${text}); ask the issuing site for a new token`, false);
    case "refused":
      return new RedemptionError(reason, `the issuing site refused the token's code (${text}); the token file may have been altered`, false);
    case "self":
    case "invalid":
      return new RedemptionError(reason, text, false, details);
    default:
      return new RedemptionError("response", `the grant server at ${where} answered ${status}: ${text || "(no message)"}`, status >= 500);
  }
}

/** Refusals of the original grant server, which sends no reason header. */
function legacyReason(status: number, text: string): RefusalReason | undefined {
  if (status === 403) return "refused";
  if (status === 404 && text.startsWith("No such access granted")) return "exhausted";
  if (status === 404) return "unknown";
  return undefined;
}

/**
 * Checks a 200 response strictly and rebuilds the credentials under the redeeming site's own
 * names: exactly one Secret of type kubernetes.io/tls with usable tls.crt, tls.key and ca.crt;
 * one to MAX_LINKS_PER_REDEMPTION Links, each using that Secret; nothing else. Only the fields a
 * link needs are kept (endpoints, and the issuer's site id and name); whatever else the server
 * put in (names, labels, annotations, settings, cost) is dropped.
 */
export function acceptCredentials(body: string, where: string, tokenName: string): RedeemedCredentials {
  // Final, not retried: the server has counted this redemption, and asking again would spend
  // another one for the same answer.
  const unusable = (detail: string) => new RedemptionError("response", `the grant server at ${where} sent credentials that cannot be used: ${detail}`, false);
  if (Buffer.byteLength(body) > MAX_RESPONSE_BYTES) throw unusable(`the response is over ${MAX_RESPONSE_BYTES} bytes`);
  let parsed: ReturnType<typeof parseDocuments>;
  try {
    parsed = parseDocuments(body, `response from ${where}`);
  } catch (err) {
    // The YAML library throws, rather than reports, unresolved aliases, alias bombs and nesting
    // deeper than the stack.
    if (err instanceof ReferenceError || err instanceof RangeError) throw unusable(`not valid YAML: ${err.message}`);
    throw err;
  }
  const { resources, problems } = parsed;
  if (problems.length > 0) throw unusable(problems[0] as string);
  const unexpected = resources.find((r) => r.kind !== "Secret" && r.kind !== "Link");
  if (unexpected) throw unusable(`a ${unexpected.kind} ("${unexpected.metadata.name}"), which a redemption never returns`);
  const secrets = resources.filter((r): r is Secret => r.kind === "Secret");
  const links = resources.filter((r): r is Link => r.kind === "Link");
  if (secrets.length !== 1) throw unusable(secrets.length === 0 ? "no Secret in the response" : `${secrets.length} Secrets; a redemption returns exactly one`);
  if (links.length === 0) throw unusable("no Link in the response");
  if (links.length > MAX_LINKS_PER_REDEMPTION) throw unusable(`${links.length} Links; at most ${MAX_LINKS_PER_REDEMPTION} are accepted`);
  const sent = secrets[0] as Secret;
  if (sent.type !== "kubernetes.io/tls") throw unusable(`the Secret is of type "${sent.type ?? ""}", not kubernetes.io/tls`);
  const data = tlsData(sent, unusable);
  for (const link of links) {
    if (link.spec.tlsCredentials !== sent.metadata.name) {
      throw unusable(`Link "${link.metadata.name}" does not use the Secret "${sent.metadata.name}" of the response (tlsCredentials: "${link.spec.tlsCredentials ?? ""}")`);
    }
  }

  const names = credentialNames(tokenName, links.length);
  for (const name of [names.secret, ...names.links]) {
    if (name.length > 253 || !NAME_PATTERN.test(name)) {
      throw new RedemptionError("invalid", `the token's name "${tokenName}" cannot name the ${links.length} links it yields ("${name}" is not a valid name); rename the token (metadata.name)`, false);
    }
  }
  const secret: Secret = { apiVersion: "v1", kind: "Secret", metadata: { name: names.secret }, type: "kubernetes.io/tls", data };
  return {
    secret,
    links: links.map((link, i) => ({
      apiVersion: API_VERSION,
      kind: "Link",
      metadata: { name: names.links[i] as string, ...issuerAnnotations(link) },
      spec: { endpoints: link.spec.endpoints.map(endpointOnly), tlsCredentials: names.secret },
    })),
  };
}

const TLS_KEYS = ["tls.crt", "tls.key", "ca.crt"] as const;

function tlsData(secret: Secret, unusable: (detail: string) => RedemptionError): Record<(typeof TLS_KEYS)[number], string> {
  const data = {} as Record<(typeof TLS_KEYS)[number], string>;
  for (const key of TLS_KEYS) {
    const value = secret.data?.[key]?.replace(/\s+/g, "");
    if (!value) throw unusable(`the Secret has no "${key}"`);
    const pem = Buffer.from(value, "base64").toString("utf8");
    const usable = key === "tls.key" ? /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem) : isCertificate(pem);
    if (!usable) throw unusable(`the Secret's "${key}" is not a PEM ${key === "tls.key" ? "private key" : "certificate"}`);
    data[key] = value;
  }
  return data;
}

function issuerAnnotations(link: Link): { annotations?: Record<string, string> } {
  const annotations: Record<string, string> = {};
  for (const key of Object.values(ResponseAnnotation)) {
    const value = link.metadata.annotations?.[key];
    if (value && value.length <= 253) annotations[key] = value;
  }
  return Object.keys(annotations).length > 0 ? { annotations } : {};
}

function endpointOnly(endpoint: Endpoint): Endpoint {
  return {
    ...(endpoint.name !== undefined ? { name: endpoint.name } : {}),
    host: endpoint.host,
    port: endpoint.port,
    ...(endpoint.group !== undefined ? { group: endpoint.group } : {}),
  };
}
