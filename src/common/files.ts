import { randomBytes } from "node:crypto";
import { promises as fs, constants as fsConstants, type Dirent } from "node:fs";
import path from "node:path";
import { SkupperError } from "./errors.js";

export interface WriteOptions {
  /** File mode; secrets and keys use 0o600. */
  mode?: number;
}

export const KiB = 1024;
export const MiB = 1024 * KiB;

/** "1 MiB", "3.5 MiB", "512 KiB", "17 bytes": sizes in messages. */
export function formatBytes(bytes: number): string {
  if (bytes >= MiB) return `${Number((bytes / MiB).toFixed(1))} MiB`;
  if (bytes >= KiB) return `${Number((bytes / KiB).toFixed(1))} KiB`;
  return `${bytes} bytes`;
}

/**
 * A file (or standard input) larger than a limit: refused before it is read, so a huge or endless
 * input never costs memory or time. Invalid input, so exit code 2.
 */
export class FileTooLargeError extends SkupperError {
  constructor(
    readonly label: string,
    readonly limit: number,
    size: number | undefined,
  ) {
    super(
      "ERR_TOO_LARGE",
      `${label} is ${size === undefined ? `larger than ${formatBytes(limit)}` : formatBytes(size)}; at most ${formatBytes(limit)} is accepted`,
      2,
    );
  }
}

/**
 * The name of a temporary file for `file`: a dot-file (ignored by every reader) in the same
 * directory, holding the writer's pid so that start-up cleanup never removes the temp file of a
 * live writer. The target's name is shortened so the temp name always fits NAME_MAX.
 */
export function tempFileName(file: string): string {
  const base = path.basename(file).slice(0, 200);
  return path.join(path.dirname(file), `.${base}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
}

/** `.<name>.<pid>.<12 hex>.tmp` (current) and `.<name>.<12 hex>.tmp` (before pids were recorded). */
const TEMP_WITH_PID = /^\..+\.(\d+)\.[0-9a-f]{12}\.tmp$/;
const TEMP_ANY = /^\..+\.[0-9a-f]{12}\.tmp$/;

/** Writes `data` to a new temp file next to `file`, synced to disk. Returns its path. */
async function writeTemp(file: string, data: string | Uint8Array, mode: number): Promise<string> {
  const temp = tempFileName(file);
  const handle = await fs.open(temp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, mode);
  try {
    await handle.writeFile(data);
    await handle.chmod(mode);
    await handle.sync();
  } catch (err) {
    await handle.close();
    await fs.rm(temp, { force: true });
    throw err;
  }
  await handle.close();
  return temp;
}

/**
 * Writes a file so that readers see either the old or the new content, never a torn one:
 * temp file in the same directory, fsync, rename, fsync of the directory.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array, options: WriteOptions = {}): Promise<void> {
  const dir = path.dirname(file);
  await fs.mkdir(dir, { recursive: true });
  const temp = await writeTemp(file, data, options.mode ?? 0o644);
  try {
    await fs.rename(temp, file);
  } catch (err) {
    await fs.rm(temp, { force: true });
    throw err;
  }
  await syncDirectory(dir);
}

/**
 * Creates `file` with `data` only if it does not exist, atomically: of several writers racing
 * for one name exactly one succeeds, and no reader ever sees a partial file (temp file, fsync,
 * then link(2), which fails if the name exists). Returns false if the file already existed.
 */
export async function createFileExclusive(file: string, data: string | Uint8Array, options: WriteOptions = {}): Promise<boolean> {
  const dir = path.dirname(file);
  await fs.mkdir(dir, { recursive: true });
  const mode = options.mode ?? 0o644;
  const temp = await writeTemp(file, data, mode);
  try {
    await fs.link(temp, file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EEXIST") return false;
    if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP") throw err;
    // A filesystem without hard links: an exclusive create is still exclusive, if not all-or-nothing.
    try {
      await fs.writeFile(file, data, { flag: "wx", mode });
    } catch (inner) {
      if ((inner as NodeJS.ErrnoException).code === "EEXIST") return false;
      throw inner;
    }
  } finally {
    await fs.rm(temp, { force: true });
  }
  await syncDirectory(dir);
  return true;
}

async function syncDirectory(dir: string): Promise<void> {
  let handle;
  try {
    handle = await fs.open(dir, fsConstants.O_RDONLY);
    await handle.sync();
  } catch {
    // Some filesystems refuse fsync on directories; the rename itself is still atomic.
  } finally {
    await handle?.close();
  }
}

export interface ReadLimitOptions {
  /** Name used in messages (default: the path). */
  label?: string;
  /**
   * Refuse anything but a regular file (a FIFO, a device, a directory): for files nobody passed
   * on purpose, such as those in a watched directory, where opening a FIFO would block forever.
   */
  regularOnly?: boolean;
}

/** A path that is not a regular file where only regular files are read. */
export class NotRegularFileError extends SkupperError {
  constructor(label: string) {
    super("ERR_NOT_REGULAR_FILE", `${label} is not a regular file`, 2);
  }
}

/**
 * Reads a text file (or standard input, "-") of at most `maxBytes`. A regular file's size is
 * checked before anything is read; a pipe or device is read only up to the limit. Returns
 * undefined if the file does not exist; throws FileTooLargeError (exit 2) beyond the limit.
 */
export async function readTextLimited(file: string, maxBytes: number, options: ReadLimitOptions = {}): Promise<string | undefined> {
  const label = options.label ?? file;
  if (file === "-") return readStreamLimited(process.stdin, maxBytes, label);
  let handle;
  try {
    // O_NONBLOCK so that opening a FIFO nobody writes to returns at once (and is then refused).
    handle = await fs.open(file, fsConstants.O_RDONLY | (options.regularOnly ? fsConstants.O_NONBLOCK : 0));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  try {
    const stat = await handle.stat();
    if (stat.isFile()) {
      if (stat.size > maxBytes) throw new FileTooLargeError(label, maxBytes, stat.size);
      const text = await handle.readFile("utf8");
      // The file may have grown between stat and read.
      if (Buffer.byteLength(text) > maxBytes) throw new FileTooLargeError(label, maxBytes, Buffer.byteLength(text));
      return text;
    }
    if (options.regularOnly || stat.isDirectory()) throw new NotRegularFileError(label);
    return await readStreamLimited(handle.createReadStream({ autoClose: false }), maxBytes, label);
  } finally {
    await handle.close();
  }
}

async function readStreamLimited(stream: NodeJS.ReadableStream & { destroy?: () => void }, maxBytes: number, label: string): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    const buffer = typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer);
    total += buffer.length;
    if (total > maxBytes) {
      stream.destroy?.();
      throw new FileTooLargeError(label, maxBytes, undefined);
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

export async function readFileIfExists(file: string, maxBytes?: number): Promise<string | undefined> {
  if (maxBytes !== undefined) return readTextLimited(file, maxBytes, { regularOnly: true });
  try {
    return await fs.readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

export async function removeIfExists(file: string): Promise<boolean> {
  try {
    await fs.rm(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
}

export async function pathExists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch {
    return false;
  }
}

/** True if a process with this pid exists (it may belong to another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** A temp file older than this is left over whatever its pid says: no write takes this long. */
const TEMP_MAX_AGE_MS = 10 * 60_000;

/**
 * Removes temp files that a crashed writer left under `dir` (recursively): those whose writer
 * pid is no longer alive, those from before pids were recorded, and any older than ten minutes.
 * A temp file of a live writer (e.g. a CLI command writing right now) is left alone. Returns
 * the files removed. With `pidsVisible: false` (a site process in a container, which cannot see
 * the host's processes) only age counts: a live writer on the host is never taken for a dead one.
 */
export async function removeStaleTempFiles(dir: string, now = Date.now(), options: { pidsVisible?: boolean } = {}): Promise<string[]> {
  const pidsVisible = options.pidsVisible ?? true;
  const removed: string[] = [];
  let entries: Dirent[];
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch {
    return removed;
  }
  for (const entry of entries) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      removed.push(...(await removeStaleTempFiles(file, now, options)));
      continue;
    }
    if (!entry.isFile() || !TEMP_ANY.test(entry.name)) continue;
    const pid = TEMP_WITH_PID.exec(entry.name)?.[1];
    let stale = pidsVisible && (pid === undefined || !processAlive(Number(pid)));
    if (!stale) {
      try {
        stale = now - (await fs.stat(file)).mtimeMs > TEMP_MAX_AGE_MS;
      } catch {
        continue;
      }
    }
    if (stale && (await removeIfExists(file).catch(() => false))) removed.push(file);
  }
  return removed;
}
