/**
 * The local platform ("linux"): a namespace is a directory under `$SKUPPER_HOME`, the site a
 * background process (see docs/storage.md). Two faces of it:
 *
 * - `openLocalPlatform`: what the CLI uses (resources, starting and stopping the site process,
 *   requests to it, the network status it published);
 * - `openLocalSiteHost`: what the site process uses (resources with a live watch and parsing off
 *   the main thread, credentials, state, the request socket).
 */
import { promises as fs } from "node:fs";
import { readNetworkStatus, type NetworkStatus } from "../../api/index.js";
import { MiB, readTextLimited } from "../../common/files.js";
import { logger } from "../../common/log.js";
import type { Platform, SiteHost, SiteRequestHandler } from "../types.js";
import { LocalCredentialStore } from "./credentials.js";
import { OffThreadParser } from "./parse-worker.js";
import { SitePaths, skupperHome, validateNamespace } from "./paths.js";
import { LocalRequestClient, serveSiteRequests, socketLocation, type RequestOptions } from "./requests.js";
import { LocalResourceStore } from "./resources.js";
import { LocalSiteRunner } from "./runner.js";
import { LocalSiteState } from "./state.js";

const log = logger("site");

export { DEFAULT_NAMESPACE, SitePaths, skupperHome, validateNamespace } from "./paths.js";
export {
  choosePlatform,
  LOCAL_PLATFORMS,
  readPlatformRecord,
  readPlatformRecordSync,
  removePlatformRecord,
  validateNetworkName,
  writePlatformRecord,
  type LocalPlatformName,
  type PlatformRecord,
} from "./platform-record.js";
export {
  checkResourceName,
  DIR_MODE,
  FILE_MODE,
  LocalStore,
  resourceFileName,
  resourceKey,
  type InputSnapshot,
  type LocalStoreOptions,
  type RuntimeEntry,
} from "./files.js";
export { DEFAULT_LOCK_TIMEOUT_MS, LockTimeoutError, withLockFile } from "./lock.js";
export { INLINE_PARSE_MAX_BYTES, OffThreadParser, PARSE_TIMEOUT_MS, WORKER_IDLE_MS } from "./parse-worker.js";
export { acquirePidFile, AlreadyRunningError, isSiteProcess, readPid, releasePidFile, runningPid, SITE_PROCESS_MARKER } from "./pidfile.js";
export {
  LocalSiteRunner,
  requireSiteProcess,
  siteNotRunning,
  siteProcessPid,
  startSiteProcess,
  stopSiteProcess,
  type StartResult,
} from "./runner.js";
export { canonicalJson, LocalResourceStore, type LocalResourceStoreOptions } from "./resources.js";
export { LocalCredentialStore } from "./credentials.js";
export { LocalSiteState, type LocalSiteStateOptions } from "./state.js";
export {
  ANSWER_TIMEOUT_MS,
  LocalRequestClient,
  MAX_REQUEST_BYTES,
  MAX_SOCKET_PATH_BYTES,
  readSiteRequest,
  REQUEST_DEADLINE_MS,
  requestSite,
  serveSiteRequests,
  socketLocation,
  type RequestChannelOptions,
  type RequestOptions,
  type ServeOptions,
  type SiteRequest,
  type SocketLocation,
} from "./requests.js";

/** The most of `runtime/network-status.json` a client reads: far above any real network's view. */
export const MAX_NETWORK_STATUS_BYTES = 16 * MiB;

export interface LocalPlatformOptions {
  /** `$SKUPPER_HOME` (default: skupperHome()). */
  home?: string;
  namespace: string;
  /** For tests: the request channel's temporary directory and timeout. */
  requests?: RequestOptions;
}

/** The local platform as the CLI sees it. */
export interface LocalPlatform extends Platform {
  readonly name: "linux";
  readonly paths: SitePaths;
  readonly resources: LocalResourceStore;
  readonly runner: LocalSiteRunner;
  readonly requests: LocalRequestClient;
}

export function openLocalPlatform(options: LocalPlatformOptions): LocalPlatform {
  const namespace = validateNamespace(options.namespace);
  const paths = new SitePaths(options.home ?? skupperHome(), namespace);
  const resources = new LocalResourceStore(paths);
  return {
    name: "linux",
    namespace,
    paths,
    resources,
    runner: new LocalSiteRunner(paths),
    requests: new LocalRequestClient(paths, options.requests),
    networkStatus: () => readNetworkStatusFile(paths),
    prepare: () => resources.files.ensureDirectories(),
    async removeSiteState({ all }: { all: boolean }): Promise<void> {
      const { file, privateDirectory } = socketLocation(paths, options.requests);
      if (privateDirectory) await fs.rm(file, { force: true });
      await fs.rm(paths.runtime, { recursive: true, force: true });
      await fs.rm(paths.platformFile, { force: true });
      if (all) await fs.rm(paths.input, { recursive: true, force: true });
    },
  };
}

/** The view the site process published, if there is one this version can read. */
export async function readNetworkStatusFile(paths: SitePaths): Promise<NetworkStatus | undefined> {
  let text: string | undefined;
  try {
    text = await readTextLimited(paths.networkStatusFile, MAX_NETWORK_STATUS_BYTES, { regularOnly: true });
  } catch {
    return undefined;
  }
  if (!text) return undefined;
  try {
    return readNetworkStatus(JSON.parse(text));
  } catch {
    return undefined;
  }
}

export interface LocalSiteHostOptions {
  home: string;
  namespace: string;
  /** For tests: the request channel's temporary directory. */
  requests?: RequestOptions;
}

/** The local platform as the site process sees it. */
export interface LocalSiteHost extends SiteHost {
  readonly name: "linux";
  readonly paths: SitePaths;
  readonly resources: LocalResourceStore;
  readonly credentials: LocalCredentialStore;
  readonly state: LocalSiteState;
  /** Creates the namespace's directories (owner-only). */
  prepare(): Promise<void>;
  /** Ends what the host itself runs (the parser's worker thread); call after the site stopped. */
  close(): Promise<void>;
}

export function openLocalSiteHost(options: LocalSiteHostOptions): LocalSiteHost {
  const namespace = validateNamespace(options.namespace);
  const paths = new SitePaths(options.home, namespace);
  // Input files are parsed in a worker thread: a slow file must not stall links and services.
  const parser = new OffThreadParser();
  let state: LocalSiteState | undefined;
  const resources = new LocalResourceStore(paths, {
    parse: (text, source) => parser.parse(text, source),
    onProblemsChanged: () => void state?.republish().catch((err: Error) => log.warn(`cannot publish the input problems: ${err.message}`)),
  });
  state = new LocalSiteState(paths, { problems: () => resources.problems() });
  return {
    name: "linux",
    namespace,
    paths,
    resources,
    credentials: new LocalCredentialStore(paths),
    state,
    serveRequests: (handler: SiteRequestHandler) => serveSiteRequests(paths, handler, options.requests),
    prepare: () => resources.files.ensureDirectories(),
    close: () => parser.close(),
  };
}
