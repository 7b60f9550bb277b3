/**
 * The site id a link certificate names: a SAN URI `urn:skupper:site:<id>`. Kept apart from
 * certificates.ts so the router can read it with Node's own X.509 parser alone.
 */
import { X509Certificate } from "node:crypto";

export const SITE_ID_URI_PREFIX = "urn:skupper:site:";

/** Site ids are UUIDs; anything else this strict set of characters allows is accepted too. */
const SITE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function isValidSiteId(siteId: string): boolean {
  return SITE_ID_PATTERN.test(siteId);
}

export function siteIdUri(siteId: string): string {
  if (!isValidSiteId(siteId)) throw new Error(`"${siteId}" is not a valid site id for a certificate`);
  return SITE_ID_URI_PREFIX + siteId;
}

/**
 * The site ids named in a certificate's SAN URIs: none for a certificate made without one (by
 * `skupper link generate`, or by an older version).
 */
export function certificateSiteIds(certificate: X509Certificate | string): string[] {
  const cert = typeof certificate === "string" ? new X509Certificate(certificate) : certificate;
  const ids: string[] = [];
  for (const entry of (cert.subjectAltName ?? "").split(/,\s*/)) {
    if (!entry.startsWith(`URI:${SITE_ID_URI_PREFIX}`)) continue;
    const id = entry.slice(`URI:${SITE_ID_URI_PREFIX}`.length);
    if (!ids.includes(id)) ids.push(id);
  }
  return ids;
}
