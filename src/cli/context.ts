/**
 * What every command needs: the namespace and the platform it acts through. The one place in
 * the CLI that names a platform implementation.
 */
import type { Command } from "commander";
import { DEFAULT_NAMESPACE, namespaceFlag, validateNamespace } from "../api/names.js";
import { InvalidInputError, SkupperError } from "../common/errors.js";
import { openLocalPlatform } from "../platform/local/index.js";
import type { Platform, PlatformName } from "../platform/types.js";

export const PLATFORMS = ["kubernetes", "podman", "docker", "linux"] as const satisfies readonly PlatformName[];

export interface CliContext {
  namespace: string;
  /** `-n <ns>` as it must be typed in hints, or "" for the default namespace. */
  nsFlag: string;
  platformName: PlatformName;
  platform: Platform;
}

export interface GlobalOptions {
  namespace?: string;
  platform?: string;
  context?: string;
  kubeconfig?: string;
}

export function contextOf(command: Command): CliContext {
  const options = command.optsWithGlobals<GlobalOptions>();
  const platformName = resolvePlatform(options.platform);
  for (const flag of ["context", "kubeconfig"] as const) {
    if (options[flag] !== undefined) process.stderr.write(`Warning: --${flag} flag is not supported on this platform\n`);
  }
  const namespace = validateNamespace(options.namespace ?? DEFAULT_NAMESPACE);
  return {
    namespace,
    nsFlag: namespaceFlag(namespace),
    platformName,
    platform: openLocalPlatform({ namespace }),
  };
}

export function resolvePlatform(flag: string | undefined): PlatformName {
  const value = flag || process.env.SKUPPER_PLATFORM || "linux";
  if (!(PLATFORMS as readonly string[]).includes(value)) {
    throw new InvalidInputError(`platform "${value}" not supported (choose one of: ${PLATFORMS.join(", ")})`);
  }
  if (value !== "linux") {
    throw new SkupperError(
      "ERR_PLATFORM",
      `The ${value} platform is not available in this version; use the linux platform (the default: unset SKUPPER_PLATFORM or pass --platform linux)`,
    );
  }
  return value;
}
