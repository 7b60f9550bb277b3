export * from "./schemas.js";
export * from "./types.js";
export * from "./status.js";
export * from "./documents.js";
export * from "./defaults.js";
export * from "./network-status.js";
export * from "./names.js";
export * from "./site-settings.js";
