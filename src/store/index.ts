export * from "./paths.js";
export * from "./local-store.js";
