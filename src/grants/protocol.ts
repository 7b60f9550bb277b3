/**
 * The redemption protocol (docs/grant-protocol.md): an HTTPS POST of the token's code to the
 * token's URL. Header and status conventions are shared by the server and the client here.
 */

/** Request headers. `name` and `subject` are the original system's; the others are ours. */
export const Header = {
  name: "name",
  subject: "subject",
  siteId: "skupper-site-id",
  siteName: "skupper-site-name",
  /** Response: machine-readable reason of a refusal. */
  error: "skupper-error",
  /** Response: identity of the issuing site (on refusals that concern it). */
  issuerSiteId: "skupper-issuer-site-id",
  issuerSiteName: "skupper-issuer-site-name",
} as const;

/** Annotations of the Links in a redemption response: who issued them. */
export const ResponseAnnotation = {
  remoteSiteId: "skupper.io/remote-site-id",
  remoteSiteName: "skupper.io/remote-site-name",
} as const;

/** Why a redemption was refused. Each has its own status code and sentence. */
export type RefusalReason = "unknown" | "expired" | "exhausted" | "refused" | "self" | "invalid";

export const REFUSAL_STATUS: Record<RefusalReason, number> = {
  unknown: 404,
  expired: 410,
  exhausted: 410,
  refused: 403,
  self: 409,
  invalid: 400,
};

/** Largest request body accepted; a code is 24 characters. */
export const MAX_BODY_BYTES = 4096;

/** Largest request head (request line and headers) the grant server reads; more is answered 431. */
export const MAX_HEADER_BYTES = 8192;

/** Largest response the redeeming client reads; a Secret and a few Links take about 4 KiB. */
export const MAX_RESPONSE_BYTES = 64 * 1024;

/** Most Links one redemption may return (one per router group of the issuing site). */
export const MAX_LINKS_PER_REDEMPTION = 8;
