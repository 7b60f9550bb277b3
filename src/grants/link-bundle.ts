/**
 * A Link to a site and its Secret (a client certificate from the site's CA): what a grant
 * redemption hands the redeeming site, and what `skupper link generate` prints. Pure: it needs
 * the site CA and nothing of a platform, so the site's controller and, on Kubernetes, the CLI
 * (which reads the CA from its Secret) issue bundles the same way.
 */
import { Annotation, API_VERSION, DEFAULT_LINK_COST, ROUTER_GROUP, secretValue, SITE_CA, type Link, type Secret, type Site } from "../api/index.js";
import { SkupperError } from "../common/errors.js";
import { issueCertificate, issuerProblem, type Credentials } from "../certs/index.js";

export interface LinkBundleRequest {
  /** Name of the Link; the Secret is named `secretName`, else the same. */
  name: string;
  secretName?: string;
  /** Common name of the client certificate. */
  subject: string;
  host: string;
  port: number;
  /** This (the issuing) site, recorded on the Link for the connecting site. */
  siteId: string;
  siteName: string;
  /**
   * The connecting site, when known (a redemption names it): its certificate then carries this
   * id, and the link may announce no other. `skupper link generate` cannot know it.
   */
  clientSiteId?: string;
  cost?: number;
}

/** A Link to this site and its Secret: a client certificate from this site's CA. */
export async function issueLinkBundle(siteCa: Credentials, request: LinkBundleRequest): Promise<{ link: Link; secret: Secret }> {
  const secretName = request.secretName ?? request.name;
  const client = await issueCertificate(siteCa, {
    commonName: request.subject,
    usage: "client",
    ...(request.clientSiteId !== undefined ? { siteId: request.clientSiteId } : {}),
  });
  const secret: Secret = {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: secretName },
    type: "kubernetes.io/tls",
    data: {
      "tls.crt": Buffer.from(client.cert).toString("base64"),
      "tls.key": Buffer.from(client.key).toString("base64"),
      "ca.crt": Buffer.from(siteCa.cert).toString("base64"),
    },
  };
  const link: Link = {
    apiVersion: API_VERSION,
    kind: "Link",
    metadata: {
      name: request.name,
      annotations: { [Annotation.remoteSiteId]: request.siteId, [Annotation.remoteSiteName]: request.siteName },
    },
    spec: {
      endpoints: [{ name: "inter-router", host: request.host, port: String(request.port), group: ROUTER_GROUP }],
      tlsCredentials: secretName,
      ...(request.cost !== undefined ? { cost: request.cost } : {}),
    },
  };
  return { link, secret };
}

/** What `skupper link generate` may choose; the rest comes from the site. */
export interface GeneratedLinkOptions {
  /** Name of the Link (default `link-<site>`). */
  name?: string;
  /** Host the other site dials (default: the site's first advertised host). */
  host?: string;
  cost?: number;
  /** Name of the Secret (default: the Link's name). */
  tlsCredentials?: string;
}

/** The error of `link generate` on a site without link access, wherever the bundle is issued. */
export function linkAccessNotEnabled(): SkupperError {
  return new SkupperError("ERR_LINK_ACCESS", 'A link cannot be generated because link access is not enabled. Use "skupper site update --enable-link-access" to enable it.');
}

/**
 * `skupper link generate`: a bundle for a site that names no client (a certificate another
 * site can use as it is), with the defaults the command documents.
 */
export function issueGeneratedLink(
  siteCa: Credentials,
  options: GeneratedLinkOptions,
  site: { siteId: string; siteName: string; host: string; port: number },
): Promise<{ link: Link; secret: Secret }> {
  const name = options.name ?? `link-${site.siteName}`;
  return issueLinkBundle(siteCa, {
    name,
    ...(options.tlsCredentials !== undefined ? { secretName: options.tlsCredentials } : {}),
    subject: name,
    host: site.host,
    port: site.port,
    siteId: site.siteId,
    siteName: site.siteName,
    cost: options.cost ?? DEFAULT_LINK_COST,
  });
}

/** The Secret whose CA signs the site's link certificates: spec.defaultIssuer, else the site's own CA. */
export function siteIssuer(site: Site): string {
  return site.spec.defaultIssuer || SITE_CA;
}

/**
 * A CA the user gave the site (a Secret with tls.crt and tls.key), or why it cannot sign;
 * `field` is where the Secret was named (the Site's spec.defaultIssuer, a Certificate's spec.ca).
 */
export function userIssuer(name: string, secret: Secret | undefined, field = "spec.defaultIssuer"): Credentials | string {
  const fix = `give the Secret "${name}" the CA's certificate as tls.crt and its key as tls.key${field === "spec.defaultIssuer" ? ", or remove spec.defaultIssuer to use the site's own CA" : ""}`;
  if (!secret) return `the issuer Secret "${name}" (${field}) is not found; ${fix}`;
  const [cert, key] = [secretValue(secret, "tls.crt"), secretValue(secret, "tls.key")];
  if (!cert || !key) return `the issuer Secret "${name}" has no ${[!cert ? "tls.crt" : "", !key ? "tls.key" : ""].filter(Boolean).join(" and ")}; ${fix}`;
  const problem = issuerProblem({ cert, key });
  if (problem) return `the issuer Secret "${name}" cannot sign certificates: ${problem}`;
  return { ca: cert, cert, key };
}

/** The refusal of revoke-access on a site whose links a CA of the user's signs. */
export function revokeWithUserIssuer(site: Site): SkupperError {
  return new SkupperError(
    "ERR_USER_ISSUER",
    `Site "${site.metadata.name}" signs its links with the CA in Secret "${siteIssuer(site)}" (spec.defaultIssuer), which skupper does not replace. To revoke access, replace that CA (or remove spec.defaultIssuer to go back to the site's own CA) and delete the site's access grants.`,
  );
}
