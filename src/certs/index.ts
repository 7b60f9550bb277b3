export * from "./certificates.js";
export * from "./bundles.js";
