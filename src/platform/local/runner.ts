/** Starting and stopping the background site process of a namespace (used by the CLI): the local SiteRunner. */
import { spawn } from "node:child_process";
import { closeSync, openSync, promises as fs } from "node:fs";
import { fileURLToPath } from "node:url";
import { SiteNotRunningError, SkupperError } from "../../common/errors.js";
import { removeIfExists } from "../../common/files.js";
import { namespaceFlag } from "../../api/names.js";
import type { SiteRunner, SiteRunnerStatus } from "../types.js";
import { DIR_MODE, FILE_MODE } from "./files.js";
import type { SitePaths } from "./paths.js";
import { isSiteProcess, runningPid } from "./pidfile.js";

/** dist/src/platform/local/runner.js → dist/src/site/main.js */
const MAIN = fileURLToPath(new URL("../../site/main.js", import.meta.url));
const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 10_000;

/**
 * Extra Node.js options for the site process, from SKUPPER_SITE_NODE_ARGS (space-separated), for
 * options NODE_OPTIONS refuses, such as `--cpu-prof` (see docs/performance.md).
 */
function siteExecArgs(): string[] {
  return (process.env.SKUPPER_SITE_NODE_ARGS ?? "").split(/\s+/).filter((a) => a.startsWith("--"));
}

export async function siteProcessPid(paths: SitePaths): Promise<number | undefined> {
  return runningPid(paths.pidFile);
}

export interface StartResult {
  pid: number;
  /** False when a process was already running. */
  started: boolean;
}

/** Starts the site process in the background unless one runs; resolves once it holds its PID file. */
export async function startSiteProcess(paths: SitePaths): Promise<StartResult> {
  const existing = await runningPid(paths.pidFile);
  if (existing !== undefined) return { pid: existing, started: false };
  await fs.mkdir(paths.logs, { recursive: true, mode: DIR_MODE });
  const logFd = openSync(paths.logFile, "a", FILE_MODE);
  const logStart = (await fs.stat(paths.logFile)).size;
  const child = spawn(process.execPath, [...siteExecArgs(), MAIN, "--home", paths.home, "--namespace", paths.namespace], {
    detached: true,
    stdio: ["ignore", logFd, logFd],
    env: process.env,
  });
  closeSync(logFd);
  let exitCode: number | null | undefined;
  child.once("exit", (code) => {
    exitCode = code;
  });
  child.unref();
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const pid = await runningPid(paths.pidFile);
    if (pid !== undefined) return { pid, started: pid === child.pid };
    if (exitCode !== undefined) {
      const log = await readLogTail(paths.logFile, logStart);
      throw new SkupperError("ERR_SITE_START", `The site process exited during start-up (code ${exitCode}).${log ? `\n${log}` : ""}\nLog: ${paths.logFile}`);
    }
    await delay(20);
  }
  throw new SkupperError("ERR_SITE_START", `The site process did not start within ${START_TIMEOUT_MS / 1000} s; see ${paths.logFile}`);
}

/** Stops the site process (SIGTERM, then SIGKILL after a grace period). Returns the PID it stopped. */
export async function stopSiteProcess(paths: SitePaths): Promise<number | undefined> {
  const pid = await runningPid(paths.pidFile);
  if (pid === undefined) {
    await removeIfExists(paths.pidFile);
    return undefined;
  }
  process.kill(pid, "SIGTERM");
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (!isSiteProcess(pid)) {
      await removeIfExists(paths.pidFile);
      return pid;
    }
    await delay(25);
  }
  process.kill(pid, "SIGKILL");
  await removeIfExists(paths.pidFile);
  return pid;
}

export async function requireSiteProcess(paths: SitePaths): Promise<number> {
  const pid = await runningPid(paths.pidFile);
  if (pid === undefined) throw siteNotRunning(paths.namespace);
  return pid;
}

/** The error for anything that needs the site process of `namespace` while it does not run. */
export function siteNotRunning(namespace: string): SiteNotRunningError {
  const ns = namespaceFlag(namespace);
  return new SiteNotRunningError(`The site process of namespace "${namespace}" is not running. Start it with "skupper${ns} system start".`);
}

/** The local SiteRunner: a background process per namespace, its pid file the lock. */
export class LocalSiteRunner implements SiteRunner {
  constructor(readonly paths: SitePaths) {}

  async status(): Promise<SiteRunnerStatus> {
    const pid = await siteProcessPid(this.paths);
    return pid === undefined ? { running: false } : { running: true, id: String(pid) };
  }

  async start(): Promise<{ id: string; started: boolean }> {
    const { pid, started } = await startSiteProcess(this.paths);
    return { id: String(pid), started };
  }

  async stop(): Promise<{ id?: string }> {
    const pid = await stopSiteProcess(this.paths);
    return pid === undefined ? {} : { id: String(pid) };
  }

  describe(): { location: string; log: string } {
    return { location: this.paths.root, log: this.paths.logFile };
  }
}

async function readLogTail(file: string, from: number): Promise<string> {
  try {
    const text = (await fs.readFile(file, "utf8")).slice(from).trim();
    return text.split("\n").slice(-5).join("\n");
  } catch {
    return "";
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
