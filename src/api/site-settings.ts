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
