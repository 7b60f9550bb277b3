/**
 * The site process's PID file, which is also its lock: created exclusively by the process;
 * a file left by a process that died (kill -9) is recognised and replaced.
 */
import { promises as fs, readFileSync } from "node:fs";
import { removeIfExists } from "../../common/files.js";

/** Marker in the command line of a site process, to tell it from an unrelated process that reuses the PID. */
export const SITE_PROCESS_MARKER = "site/main.js";

export function isSiteProcess(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(SITE_PROCESS_MARKER);
  } catch {
    return true; // no /proc: trust kill(0)
  }
}

export async function readPid(file: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt((await fs.readFile(file, "utf8")).trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** PID of the running site process, if there is one. */
export async function runningPid(file: string): Promise<number | undefined> {
  const pid = await readPid(file);
  return pid !== undefined && isSiteProcess(pid) ? pid : undefined;
}

export class AlreadyRunningError extends Error {
  constructor(readonly pid: number) {
    super(`a site process is already running for this namespace (pid ${pid})`);
  }
}

/** Claims the PID file for this process. */
export async function acquirePidFile(file: string): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await fs.open(file, "wx", 0o600);
      await handle.writeFile(`${process.pid}\n`);
      await handle.sync();
      await handle.close();
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const pid = await readPid(file);
      if (pid !== undefined && pid !== process.pid && isSiteProcess(pid)) throw new AlreadyRunningError(pid);
      await removeIfExists(file);
    }
  }
  throw new Error(`could not claim ${file}`);
}

export async function releasePidFile(file: string): Promise<void> {
  const pid = await readPid(file);
  if (pid === process.pid) await removeIfExists(file);
}
