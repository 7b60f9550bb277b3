export * from "./paths.js";
export * from "./local-store.js";
export { OffThreadParser } from "./parse-worker.js";
