export * from "./errors.js";
export * from "./duration.js";
export * from "./files.js";
export * from "./backoff.js";
export * from "./log.js";
export * from "./version.js";
export * from "./connection-limiter.js";
export * from "./pem.js";
