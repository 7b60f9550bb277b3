/**
 * TLS on the application side of listeners and connectors (`spec.tlsCredentials`): a listener
 * can terminate its clients' TLS, a connector can originate TLS to its backend. The bytes carried
 * over links are the plain ones either way; plain listeners and connectors never come here.
 */
import net from "node:net";
import tls from "node:tls";
import { UNKNOWN_CA_CODES } from "./errors.js";
import { DEFAULT_LINK_SERVER_LIMITS } from "./links.js";

/** A listener's server certificate; with `ca`, clients must present a certificate it issued. */
export interface ListenerTls {
  cert: string;
  key: string;
  ca?: string;
  /** Clients must present a certificate that `ca` issued (mutual TLS). */
  requireClientCert?: boolean;
}

/** What a connector trusts for its backend, and the client certificate it may present. */
export interface ConnectorTls {
  /** The CA(s) the backend's certificate must chain to. */
  ca: string;
  /** A client certificate and key, sent only when both are given (`useClientCert`). */
  cert?: string;
  key?: string;
  /** Whether the backend's certificate must name the host connected to. */
  verifyHostname: boolean;
}

/** From accept to the end of a client's TLS handshake on a listener: the link server's own bound. */
export const SERVICE_HANDSHAKE_TIMEOUT_MS = DEFAULT_LINK_SERVER_LIMITS.handshakeTimeoutMs;
/** Clients of one listener that may be in their TLS handshake at once; past it the oldest is closed. */
export const SERVICE_MAX_HANDSHAKES = 1024;

export function sameListenerTls(a: ListenerTls | undefined, b: ListenerTls | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && a.cert === b.cert && a.key === b.key && a.ca === b.ca && a.requireClientCert === b.requireClientCert);
}

export function sameConnectorTls(a: ConnectorTls | undefined, b: ConnectorTls | undefined): boolean {
  return (
    a === b ||
    (a !== undefined && b !== undefined && a.ca === b.ca && a.cert === b.cert && a.key === b.key && a.verifyHostname === b.verifyHostname)
  );
}

/** The secure context of a listener: made once per credentials, shared by every client. */
export function listenerContextOptions(credentials: ListenerTls): tls.SecureContextOptions {
  return { cert: credentials.cert, key: credentials.key, ...(credentials.ca ? { ca: credentials.ca } : {}), minVersion: "TLSv1.2" };
}

/** The secure context a connector dials its backend with, made once per credentials. */
export function connectorContext(credentials: ConnectorTls): tls.SecureContext {
  return tls.createSecureContext({
    ca: credentials.ca,
    ...(credentials.cert && credentials.key ? { cert: credentials.cert, key: credentials.key } : {}),
    minVersion: "TLSv1.2",
  });
}

/** Options of `tls.connect` for a backend at `host`: chain always verified, the name only if asked. */
export function backendTlsOptions(host: string, credentials: ConnectorTls, secureContext: tls.SecureContext): tls.ConnectionOptions {
  return {
    secureContext,
    rejectUnauthorized: true,
    // SNI carries host names only, never addresses.
    ...(net.isIP(host) ? {} : { servername: host }),
    ...(credentials.verifyHostname ? {} : { checkServerIdentity: () => undefined }),
  };
}

/** A sentence for why the TLS handshake with a backend failed. */
export function describeBackendTlsFailure(err: NodeJS.ErrnoException & { reason?: string }, where: string): string {
  if (UNKNOWN_CA_CODES.has(err.code ?? "")) return `the certificate of the backend ${where} is not issued by the CA (ca.crt) of the connector's TLS credentials`;
  switch (err.code) {
    case "ERR_TLS_CERT_ALTNAME_INVALID":
      return `the certificate of the backend ${where} does not name that host (${err.reason ?? err.message}); connect by a name the certificate holds, or set verifyHostname: false`;
    case "CERT_HAS_EXPIRED":
      return `the certificate of the backend ${where} has expired`;
    case "CERT_NOT_YET_VALID":
      return `the certificate of the backend ${where} is not valid yet`;
    default:
      return `TLS with the backend ${where} failed: ${err.message}`;
  }
}
