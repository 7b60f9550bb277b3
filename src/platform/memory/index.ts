/**
 * The platform in memory: the smallest implementation of the seam in ../types.ts, for unit
 * tests of the controller, with failures a test can inject and records it can assert on.
 */
export { MemoryCredentialStore, type CredentialFaultOptions, type CredentialOperation } from "./credential-store.js";
export type { FaultOptions } from "./faults.js";
export { MemoryResourceStore, type ResourceFaultOptions, type ResourceOperation, type ResourceOperationRecord } from "./resource-store.js";
export { memorySiteHost, type MemorySiteHost, type MemorySiteHostOptions } from "./site-host.js";
export { MemorySiteState, type SiteStateOperation } from "./site-state.js";
export { MemorySiteNetwork } from "./site-network.js";
