/**
 * A lock file shared by processes: the CLI commands that read, change and write input resources
 * of one namespace hold it, so concurrent commands never lose each other's changes.
 *
 * The lock is a file created atomically with the holder's pid in it (temp file, then link(2),
 * so it never exists half-written). A lock whose holder pid is dead is taken over; a live
 * holder is waited for, for a bounded time, and then named in the error.
 */
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";
import { SkupperError } from "../../common/errors.js";
import { createFileExclusive, processAlive } from "../../common/files.js";

export const DEFAULT_LOCK_TIMEOUT_MS = 10_000;

export interface LockOptions {
  /** How long to wait for a live holder. */
  timeoutMs?: number;
  /** What is locked, for the error message, e.g. `the resources of namespace "west"`. */
  what: string;
}

interface Holder {
  pid: number;
  token: string;
}

export class LockTimeoutError extends SkupperError {
  constructor(message: string) {
    super("ERR_LOCKED", message, 1);
  }
}

/** Runs `fn` while holding `lockFile`. */
export async function withLockFile<T>(lockFile: string, options: LockOptions, fn: () => Promise<T>): Promise<T> {
  const token = `${process.pid} ${randomBytes(8).toString("hex")}`;
  await acquire(lockFile, token, options);
  try {
    return await fn();
  } finally {
    await release(lockFile, token);
  }
}

async function acquire(lockFile: string, token: string, options: LockOptions): Promise<void> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  let pause = 2;
  for (;;) {
    if (await createFileExclusive(lockFile, `${token}\n`, { mode: 0o600 })) return;
    const holder = await readHolder(lockFile);
    if (holder && !processAlive(holder.pid)) {
      await breakStaleLock(lockFile, holder);
      continue;
    }
    if (Date.now() >= deadline) {
      throw new LockTimeoutError(
        `${options.what} ${holder ? `are being changed by another skupper command (pid ${holder.pid})` : "are locked"}, ` +
          `which did not finish within ${Math.round(timeoutMs / 1000)} s; try again, or if no skupper command is running, remove ${lockFile}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, pause + Math.random() * pause));
    pause = Math.min(pause * 2, 40);
  }
}

async function readHolder(file: string): Promise<Holder | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch {
    return undefined;
  }
  const token = text.trim();
  const pid = Number(token.split(" ")[0]);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  return { pid, token };
}

/**
 * Takes a dead holder's lock away: moves it aside (only one of several racing processes can move
 * a given file) and checks what was moved. If it was not the dead holder's lock after all, but a
 * live process's that got there first, it is put back.
 */
async function breakStaleLock(lockFile: string, stale: Holder): Promise<void> {
  const aside = path.join(path.dirname(lockFile), `.${path.basename(lockFile)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    await fs.rename(lockFile, aside);
  } catch {
    return; // gone already: someone else took it over or released it
  }
  const moved = await readHolder(aside);
  if (moved && moved.token !== stale.token && processAlive(moved.pid)) {
    await fs.link(aside, lockFile).catch(() => undefined);
  }
  await fs.rm(aside, { force: true });
}

async function release(lockFile: string, token: string): Promise<void> {
  const holder = await readHolder(lockFile);
  if (holder?.token === token) await fs.rm(lockFile, { force: true });
}
