/** Sentences for why a link could not be made or was lost, from Node.js socket and TLS errors. */

/** Node's TLS error codes for a peer certificate that the trusted CA did not issue. */
export const UNKNOWN_CA_CODES: ReadonlySet<string> = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_SIGNATURE_FAILURE",
]);

export interface LinkFailure {
  /** TLS and certificate problems are configuration errors; the rest are (usually) transient. */
  kind: "error" | "pending";
  message: string;
}

export function describeLinkFailure(err: unknown, host: string, port: number | string): LinkFailure {
  const code = (err as NodeJS.ErrnoException | undefined)?.code ?? "";
  const where = `${host.includes(":") ? `[${host}]` : host}:${port}`;
  if (UNKNOWN_CA_CODES.has(code)) {
    return {
      kind: "error",
      message: `TLS: the certificate of ${where} is not signed by the CA in this link's credentials (unknown CA); the endpoint is not the site that issued the token`,
    };
  }
  switch (code) {
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "EAI_NONAME":
    case "EAI_FAIL":
      return { kind: "pending", message: `cannot resolve host "${host}" (DNS lookup failed)` };
    case "ECONNREFUSED":
      return { kind: "pending", message: `connection refused by ${where} (is the remote site running, with link access enabled?)` };
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return { kind: "pending", message: `${where} is unreachable from this host (no route)` };
    case "ETIMEDOUT":
    case "ERR_LINK_CONNECT_TIMEOUT":
      return { kind: "pending", message: `timed out connecting to ${where}` };
    case "ECONNRESET":
      return { kind: "pending", message: `the connection to ${where} was reset` };

    case "CERT_HAS_EXPIRED":
      return { kind: "error", message: `TLS: the certificate of ${where} has expired` };
    case "CERT_NOT_YET_VALID":
      return { kind: "error", message: `TLS: the certificate of ${where} is not valid yet (check the clocks of both hosts)` };
    case "ERR_TLS_CERT_ALTNAME_INVALID":
      return { kind: "error", message: `TLS: the certificate of ${where} does not cover the name "${host}"` };
    case "ERR_SSL_TLSV1_ALERT_UNKNOWN_CA":
    case "ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE":
    case "ERR_SSL_TLSV1_ALERT_DECRYPT_ERROR":
      return {
        kind: "error",
        message: `TLS: ${where} rejected this link's certificate (unknown CA): the credentials were not issued by that site, or its CA was replaced; redeem a new token`,
      };
    case "ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED":
      return { kind: "error", message: `TLS: ${where} rejected this link's certificate because it has expired; redeem a new token` };
    case "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED":
      return { kind: "error", message: `TLS: ${where} requires a client certificate and none was sent` };
    case "ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION":
    case "ERR_SSL_UNSUPPORTED_PROTOCOL":
      return { kind: "error", message: `TLS: ${where} does not speak TLS 1.3` };
    case "ERR_SSL_WRONG_VERSION_NUMBER":
    case "ERR_SSL_PACKET_LENGTH_TOO_LONG":
      return { kind: "error", message: `TLS: ${where} did not answer with TLS (is that the link port?)` };
    default: {
      const text = err instanceof Error ? err.message : String(err);
      if (code.startsWith("ERR_SSL") || code.startsWith("ERR_TLS")) return { kind: "error", message: `TLS: ${where}: ${text}` };
      return { kind: "pending", message: `${where}: ${text}` };
    }
  }
}
