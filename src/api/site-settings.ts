/**
 * Keys of a Site's `spec.settings` this platform reads (documented in docs/hosts-and-ports.md),
 * and annotations on what a redemption creates: names clients write and read, so part of the API.
 */

export const SiteSetting = {
  linkPort: "link-port",
  grantServerPort: "grant-server-port",
  advertisedHosts: "advertised-hosts",
  bindHost: "bind-host",
} as const;

/** Annotations on the Link, Secret and AccessToken of a redemption. */
export const Annotation = {
  /** The AccessToken whose redemption created the resource. */
  accessToken: "skupper.io/access-token",
  remoteSiteId: "skupper.io/remote-site-id",
  remoteSiteName: "skupper.io/remote-site-name",
} as const;

/**
 * Names of the credentials a site keeps (see CredentialStore): Secrets of these names in the
 * site's namespace on Kubernetes, directories under `runtime/` locally. Written by the site's
 * controller and read by clients too (on Kubernetes `skupper link generate` issues a link from
 * the site CA itself), so they are part of the API.
 */
export const SITE_CA = "skupper-site-ca";
export const SITE_SERVER = "skupper-site-server";
export const GRANT_CA = "skupper-grant-server-ca";
export const GRANT_SERVER = "skupper-grant-server";
