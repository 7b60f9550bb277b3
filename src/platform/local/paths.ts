import os from "node:os";
import path from "node:path";

/** `$SKUPPER_HOME`, else `$XDG_DATA_HOME/skupper`, else `~/.local/share/skupper`. */
export function skupperHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SKUPPER_HOME) return path.resolve(env.SKUPPER_HOME);
  const dataHome = env.XDG_DATA_HOME || path.join(os.homedir(), ".local", "share");
  return path.join(dataHome, "skupper");
}

/** Where everything of one site lives (see docs/storage.md). */
export class SitePaths {
  readonly root: string;
  readonly input: string;
  readonly inputResources: string;
  readonly runtime: string;
  readonly runtimeResources: string;
  readonly issuers: string;
  readonly certs: string;
  readonly logs: string;
  readonly logFile: string;
  readonly pidFile: string;
  /**
   * The pid file of a site process running in a container (podman, docker platforms): it holds a
   * pid of the container's pid namespace, so it is apart from `pidFile`, which holds host pids.
   */
  readonly containerPidFile: string;
  /** Which platform runs this namespace's site (`platform.yaml`, see platform-record.ts). */
  readonly platformFile: string;
  readonly stateFile: string;
  readonly networkStatusFile: string;
  /** The credential of the observer port (console, metrics) when it is not on loopback (docs/console.md). */
  readonly observerCredentialFile: string;
  /** Credentials of redemptions not yet written as resources: `<token>.yaml`. */
  readonly redemptions: string;
  /** Where the site process serves client requests, if the path is short enough (see requests.ts). */
  readonly socketFile: string;
  /** Held by CLI commands while they read, change and write input resources (see docs/storage.md). */
  readonly inputLock: string;

  constructor(
    readonly home: string,
    readonly namespace: string,
  ) {
    this.root = path.join(home, "namespaces", namespace);
    this.input = path.join(this.root, "input");
    this.inputResources = path.join(this.input, "resources");
    this.runtime = path.join(this.root, "runtime");
    this.runtimeResources = path.join(this.runtime, "resources");
    this.issuers = path.join(this.runtime, "issuers");
    this.certs = path.join(this.runtime, "certs");
    this.logs = path.join(this.runtime, "logs");
    this.logFile = path.join(this.logs, "site.log");
    this.pidFile = path.join(this.runtime, "site.pid");
    this.containerPidFile = path.join(this.runtime, "container-site.pid");
    this.platformFile = path.join(this.root, "platform.yaml");
    this.stateFile = path.join(this.runtime, "site-state.json");
    this.networkStatusFile = path.join(this.runtime, "network-status.json");
    this.observerCredentialFile = path.join(this.runtime, "observer-credential");
    this.redemptions = path.join(this.runtime, "redemptions");
    this.socketFile = path.join(this.runtime, "site.sock");
    this.inputLock = path.join(this.root, "input.lock");
  }

  issuer(name: string): string {
    return path.join(this.issuers, name);
  }

  cert(name: string): string {
    return path.join(this.certs, name);
  }
}

export { DEFAULT_NAMESPACE, validateNamespace } from "../../api/names.js";
