/**
 * What a link's identity is (docs/link-protocol.md §4): the site id a peer announces in its HELLO
 * must be the one its certificate names (a `urn:skupper:site:<id>` SAN URI). A certificate that
 * names no site (from `skupper link generate`, or an older version) is bound to the first site id
 * announced with it, for the life of the process, and cannot take an id that a certificate naming
 * it has already proved.
 */
import type { TLSSocket } from "node:tls";
import { certificateSiteIds } from "../certs/site-id.js";

/** The facts about a peer's certificate that the identity check needs. */
export interface PeerCertificate {
  fingerprint256: string;
  /** Site ids named in its SAN URIs: normally none or one. */
  siteIds: string[];
}

/** Decides whether the peer of one link may be the site it announces. */
export interface PeerIdentityCheck {
  /** Why the peer may not be `claimedSiteId`, or `undefined` when it may (the claim is then recorded). */
  verify(claimedSiteId: string): string | undefined;
}

export function peerCertificate(socket: TLSSocket): PeerCertificate | undefined {
  const certificate = socket.getPeerX509Certificate();
  if (!certificate) return undefined;
  return { fingerprint256: certificate.fingerprint256, siteIds: certificateSiteIds(certificate) };
}

/** The acceptor's memory of which certificate spoke for which site. One per router. */
export class IncomingIdentities {
  /** Site ids that a certificate naming them has authenticated. */
  private readonly proven = new Set<string>();

  /** The check for one incoming link; a link without a client certificate (tests) has none. */
  checkFor(certificate: PeerCertificate | undefined): PeerIdentityCheck | undefined {
    if (!certificate) return undefined;
    return { verify: (claimed) => this.verify(certificate, claimed) };
  }

  private verify(certificate: PeerCertificate, claimed: string): string | undefined {
    const named = certificate.siteIds;
    if (named.length > 1) return `the link's certificate names several sites (${named.join(", ")}); it cannot identify one`;
    if (named.length === 1) {
      const siteId = named[0] as string;
      if (siteId !== claimed) return `the link's certificate names site ${siteId}, but the connecting site announced itself as site ${claimed}`;
      this.proven.add(siteId);
      return undefined;
    }
    // A certificate naming no site (link generate, cert tokens) is a bearer credential that any
    // number of sites may hold, as the original's cert tokens are; it may not pass for a site that
    // has proved itself with a certificate naming it.
    if (this.proven.has(claimed)) {
      return `the connecting site announced itself as site ${claimed}, but its certificate names no site and site ${claimed} has a certificate that names it`;
    }
    return undefined;
  }
}

/**
 * The dialer's check of the site it reached: the server certificate's site id, if it names one,
 * and the site the Link was issued for, if known.
 */
export function outgoingIdentityCheck(serverCertificate: PeerCertificate | undefined, expectedSiteId: string | undefined): PeerIdentityCheck | undefined {
  const named = serverCertificate?.siteIds ?? [];
  if (named.length === 0 && expectedSiteId === undefined) return undefined;
  return {
    verify(claimed) {
      if (named.length > 1) return `the remote site's certificate names several sites (${named.join(", ")}); it cannot identify one`;
      const certified = named[0];
      if (certified !== undefined && certified !== claimed) {
        return `the remote site announced itself as site ${claimed}, but its certificate names site ${certified}`;
      }
      if (expectedSiteId !== undefined && expectedSiteId !== claimed) {
        return `the remote site announced itself as site ${claimed}, but this link was issued by site ${expectedSiteId} (annotation skupper.io/remote-site-id)`;
      }
      return undefined;
    },
  };
}
