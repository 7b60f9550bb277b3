/**
 * Stub so the CLI branch compiles: the local platform's facade is written on another branch,
 * which replaces this file when the branches are merged.
 */
import type { Platform } from "../types.js";

export function openLocalPlatform(_options: { home?: string; namespace: string }): Platform {
  throw new Error("stub");
}
