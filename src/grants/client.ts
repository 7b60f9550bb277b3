/**
 * Redeeming an access token: POST the code to the token's URL over HTTPS, trusting only the
 * CA in the token, and read back a TLS Secret and one or more Links.
 */
import https from "node:https";
import { isIP } from "node:net";
import { parseDocuments, type Link, type Secret } from "../api/index.js";
import { SkupperError } from "../common/errors.js";
import { Header, type RefusalReason } from "./protocol.js";

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
  linkedSites: string[];
}

export interface RedeemedCredentials {
  secret: Secret;
  links: Link[];
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
  if (status === 200) return parseCredentials(body, where);
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
          [Header.linkedSites]: identity.linkedSites.join(","),
          "Content-Length": Buffer.byteLength(token.code),
        },
      },
      (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > 1024 * 1024) {
            request.destroy(new RedemptionError("response", `the grant server at ${where} sent an oversized response`, true));
            return;
          }
          chunks.push(chunk);
        });
        response.on("end", () =>
          resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString("utf8") }),
        );
        response.on("error", (err) => reject(transportError(err, where)));
      },
    );
    request.on("timeout", () => request.destroy(Object.assign(new Error("timeout"), { code: "ETIMEDOUT" })));
    request.on("error", (err) => reject(err instanceof RedemptionError ? err : transportError(err, where)));
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
    case "duplicate":
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

function parseCredentials(body: string, where: string): RedeemedCredentials {
  const { resources, problems } = parseDocuments(body, `response from ${where}`);
  const secret = resources.find((r): r is Secret => r.kind === "Secret");
  const links = resources.filter((r): r is Link => r.kind === "Link");
  if (!secret || links.length === 0 || problems.length > 0) {
    const detail = problems[0] ?? (secret ? "no Link in the response" : "no Secret in the response");
    throw new RedemptionError("response", `the grant server at ${where} sent credentials that cannot be used: ${detail}`, true);
  }
  for (const key of ["tls.crt", "tls.key", "ca.crt"]) {
    if (!secret.data?.[key]) {
      throw new RedemptionError("response", `the grant server at ${where} sent a Secret without "${key}"`, true);
    }
  }
  return { secret, links };
}
