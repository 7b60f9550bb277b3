export * from "./paths.js";
export * from "./local-store.js";
export { INLINE_PARSE_MAX_BYTES, OffThreadParser } from "./parse-worker.js";
