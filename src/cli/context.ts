/** What every command needs: namespace, platform, the site's files. */
import type { Command } from "commander";
import { InvalidInputError, SkupperError } from "../common/errors.js";
import { DEFAULT_NAMESPACE, LocalStore, SitePaths, skupperHome, validateNamespace } from "../store/index.js";

export const PLATFORMS = ["kubernetes", "podman", "docker", "linux"] as const;
export type Platform = (typeof PLATFORMS)[number];

export interface CliContext {
  namespace: string;
  platform: Platform;
  paths: SitePaths;
  store: LocalStore;
  /** `-n <ns>` as it must be typed in hints, or "" for the default namespace. */
  nsFlag: string;
}

export interface GlobalOptions {
  namespace?: string;
  platform?: string;
  context?: string;
  kubeconfig?: string;
}

export function contextOf(command: Command): CliContext {
  const options = command.optsWithGlobals<GlobalOptions>();
  const platform = resolvePlatform(options.platform);
  for (const flag of ["context", "kubeconfig"] as const) {
    if (options[flag] !== undefined) process.stderr.write(`Warning: --${flag} flag is not supported on this platform\n`);
  }
  const namespace = validateNamespace(options.namespace ?? DEFAULT_NAMESPACE);
  const paths = new SitePaths(skupperHome(), namespace);
  return {
    namespace,
    platform,
    paths,
    store: new LocalStore(paths),
    nsFlag: namespace === DEFAULT_NAMESPACE ? "" : ` -n ${namespace}`,
  };
}

export function resolvePlatform(flag: string | undefined): Platform {
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
