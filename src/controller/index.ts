export { SiteController, SITE_CA, SITE_SERVER, GRANT_CA, GRANT_SERVER } from "./controller.js";
export type { ControllerOptions, NetworkStatusFile } from "./controller.js";
export { planAccess, detectHosts, SiteSetting, splitHosts, formatHostPort } from "./access.js";
export type { AccessPlan } from "./access.js";
export { Annotation } from "./tokens.js";
export { randomCode } from "./grants.js";
export { issueLinkBundle, secretCredentials } from "./links.js";
export type { LinkBundleRequest } from "./links.js";
