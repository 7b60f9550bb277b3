export * from "./certificates.js";
export * from "./bundles.js";
export * from "./site-id.js";
