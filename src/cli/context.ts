/**
 * What every command needs: the namespace and the platform it acts through. The one place in
 * the CLI that names a platform implementation.
 */
import type { Command } from "commander";
import { DEFAULT_NAMESPACE, namespaceFlag, validateNamespace } from "../api/names.js";
import { parseDuration } from "../common/duration.js";
import { InvalidInputError, SkupperError } from "../common/errors.js";
import { openContainerPlatform } from "../platform/containers/index.js";
import {
  choosePlatform,
  openLocalPlatform,
  readPlatformRecord,
  readPlatformRecordSync,
  SitePaths,
  skupperHome,
  validateNetworkName,
  writePlatformRecord,
  type LocalPlatformName,
} from "../platform/local/index.js";
import type { Platform, PlatformName } from "../platform/types.js";

/** How Skupper is installed in a cluster, for messages. */
export { INSTALL_COMMAND as KUBERNETES_INSTALL_COMMAND } from "../platform/kubernetes/names.js";

type KubernetesModule = typeof import("../platform/kubernetes/index.js");
/** Loaded by preparePlatform, for commands on the kubernetes platform only. */
let kubernetes: KubernetesModule | undefined;

export const PLATFORMS = ["kubernetes", "podman", "docker", "linux"] as const satisfies readonly PlatformName[];
/** The platforms this version implements; the default first. */
export const AVAILABLE_PLATFORMS = ["linux", "kubernetes", "podman", "docker"] as const satisfies readonly PlatformName[];

export interface CliContext {
  namespace: string;
  /**
   * The global options as a command in a hint must repeat them to act on the same site
   * (` -n west`, and on Kubernetes ` --context c` or ` --platform kubernetes` when they were
   * given as flags), or "" when the defaults do.
   */
  nsFlag: string;
  platformName: PlatformName;
  platform: Platform;
  /**
   * The platform runs the site for as long as the namespace has a Site (Kubernetes: the
   * cluster controller runs its pod); the CLI never starts or stops it.
   */
  managedSite: boolean;
  /** What runs the site: a host process (linux), a container (podman, docker), a pod (kubernetes). */
  siteRunsIn: "process" | "container" | "pod";
  /**
   * Local files only (linux, podman, docker): records the namespace's platform (and, on podman or
   * docker, the engine network its container joins) unless one is recorded; refuses a different network.
   */
  recordPlatform?: (options?: { network?: string }) => Promise<void>;
  /** What to tell a user who needs the running site while it does not run. */
  notRunning: string;
  /** The label selector of a workload (`deployment/NAME`), on platforms that have workloads. */
  workloadSelector?: (workload: string) => Promise<string>;
}

export interface GlobalOptions {
  namespace?: string;
  platform?: string;
  context?: string;
  kubeconfig?: string;
  /** The command's own `--timeout`, when it has one: waits for the site's pod are bounded by it. */
  timeout?: string;
}

/**
 * The options of a command and its ancestors; of a global option given at several levels
 * (`skupper -n a site create x -n b`), the one nearest to the command wins, and a value given
 * anywhere wins over a default.
 */
export function optionsOf(command: Command): GlobalOptions {
  const chain: Command[] = [];
  for (let c: Command | null = command; c; c = c.parent) chain.unshift(c);
  const merged: Record<string, unknown> = {};
  for (const c of chain) {
    for (const [key, value] of Object.entries(c.opts())) {
      if (value === undefined || (key in merged && c.getOptionValueSource(key) === "default")) continue;
      merged[key] = value;
    }
  }
  return merged as GlobalOptions;
}

/**
 * Loads what the command's platform needs before its action runs (main.ts calls it for every
 * command), so that contextOf stays synchronous: the Kubernetes client takes 0.6 s and 27 MB to
 * load, which commands on the other platforms do not pay.
 */
export async function preparePlatform(command: Command): Promise<void> {
  let platformName: PlatformName;
  try {
    platformName = resolvePlatform(optionsOf(command).platform);
  } catch {
    return; // contextOf reports it, for the commands that act on a platform
  }
  if (platformName === "kubernetes") kubernetes ??= await import("../platform/kubernetes/index.js");
}

export function contextOf(command: Command): CliContext {
  const options = optionsOf(command);
  const platformName = resolvePlatform(options.platform);
  if (platformName === "kubernetes") return kubernetesContext(options);
  for (const flag of ["context", "kubeconfig"] as const) {
    if (options[flag] !== undefined) process.stderr.write(`Warning: --${flag} flag is not supported on this platform\n`);
  }
  const namespace = validateNamespace(options.namespace ?? DEFAULT_NAMESPACE);
  const nsFlag = namespaceFlag(namespace);
  // The namespace's recorded platform wins; asking for another one is refused.
  const paths = new SitePaths(skupperHome(), namespace);
  const asked = options.platform || process.env.SKUPPER_PLATFORM ? (platformName as LocalPlatformName) : undefined;
  const chosen = choosePlatform(readPlatformRecordSync(paths), asked);
  const inContainer = chosen !== "linux";
  return {
    namespace,
    nsFlag,
    platformName: chosen,
    platform: inContainer ? openContainerPlatform({ engine: chosen, namespace }) : openLocalPlatform({ namespace }),
    managedSite: false,
    siteRunsIn: inContainer ? "container" : "process",
    notRunning: `The site ${inContainer ? "container" : "process"} of namespace "${namespace}" is not running. Start it with "skupper${nsFlag} system start".`,
    recordPlatform: async ({ network } = {}) => {
      if (network !== undefined) validateNetworkName(network);
      if (network !== undefined && !inContainer) {
        throw new InvalidInputError(`--container-network is for the podman and docker platforms; namespace "${namespace}" uses the ${chosen} platform`);
      }
      const recorded = await readPlatformRecord(paths);
      if (!recorded) {
        await writePlatformRecord(paths, { platform: chosen, ...(network ? { network } : {}) });
        return;
      }
      if (network !== undefined && network !== recorded.network) {
        throw new InvalidInputError(
          `namespace "${namespace}" uses ${recorded.network ? `the container network "${recorded.network}"` : "the host's network"}; it cannot change while the namespace has its site (delete the site first)`,
          "ERR_PLATFORM",
        );
      }
    },
  };
}

function kubernetesContext(options: GlobalOptions): CliContext {
  if (!kubernetes) throw new Error("internal error: the kubernetes platform was not loaded (preparePlatform was not called before the command)");
  const { DEFAULT_SITE_TIMEOUT_MS, notRunningMessage, openKubernetesPlatform } = kubernetes;
  const commandTimeoutMs = options.timeout !== undefined ? parseDuration(options.timeout) : undefined;
  const platform = openKubernetesPlatform({
    ...(options.namespace !== undefined ? { namespace: validateNamespace(options.namespace) } : {}),
    ...(options.kubeconfig ? { kubeconfig: options.kubeconfig } : {}),
    ...(options.context ? { context: options.context } : {}),
    runner: {
      timeoutMs: Math.min(DEFAULT_SITE_TIMEOUT_MS, commandTimeoutMs ?? DEFAULT_SITE_TIMEOUT_MS),
      progress: (line) => process.stderr.write(`${line}\n`),
    },
  });
  const flags = [
    ...(options.platform ? ["--platform kubernetes"] : []),
    ...(options.kubeconfig ? [`--kubeconfig ${options.kubeconfig}`] : []),
    ...(options.context ? [`--context ${options.context}`] : []),
    ...(platform.namespace !== platform.defaultNamespace ? [`-n ${platform.namespace}`] : []),
  ];
  return {
    namespace: platform.namespace,
    nsFlag: flags.map((flag) => ` ${flag}`).join(""),
    platformName: "kubernetes",
    platform,
    managedSite: true,
    siteRunsIn: "pod",
    notRunning: notRunningMessage(platform.namespace),
    workloadSelector: (workload) => platform.workloads.workloadSelector(workload),
  };
}

/** The platform from `--platform`, else `SKUPPER_PLATFORM`, else linux. */
export function resolvePlatform(flag: string | undefined): PlatformName {
  const value = flag || process.env.SKUPPER_PLATFORM || "linux";
  if (!(PLATFORMS as readonly string[]).includes(value)) {
    throw new InvalidInputError(`platform "${value}" not supported (choose one of: ${PLATFORMS.join(", ")})`);
  }
  if (!(AVAILABLE_PLATFORMS as readonly string[]).includes(value)) {
    throw new SkupperError(
      "ERR_PLATFORM",
      `The ${value} platform is not available in this version; use the linux platform (the default: unset SKUPPER_PLATFORM or pass --platform linux) or kubernetes`,
    );
  }
  return value as PlatformName;
}
