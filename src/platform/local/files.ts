/**
 * The raw file layer of the local platform's resources (LocalResourceStore in resources.ts
 * builds the ResourceStore semantics on it): desired state in `input/resources/`, resources
 * with status in `runtime/resources/`. One resource per file named `<Kind>-<name>.yaml`; files a
 * user drops in by hand may hold several documents and are read as well.
 *
 * Every name is checked (Kubernetes name rules) before it becomes part of a path, every file is
 * size-checked before it is read, and a file that cannot be read or parsed is a problem in the
 * snapshot, never an exception that stops the others from being read.
 */
import { createHash } from "node:crypto";
import { promises as fs, mkdirSync, statSync, watch, type FSWatcher } from "node:fs";
import path from "node:path";
import {
  checkKind,
  checkResourceName,
  resourceKey,
  MAX_FILE_BYTES,
  parseDocuments,
  toYaml,
  type Kind,
  type ParseResult,
  type Resource,
  type ResourceByKind,
} from "../../api/index.js";
import { AlreadyExistsError, NotFoundError, errorMessage } from "../../common/errors.js";
import { createFileExclusive, readTextLimited, removeIfExists, writeFileAtomic } from "../../common/files.js";
import { logger } from "../../common/log.js";
import { withLockFile } from "./lock.js";
import type { SitePaths } from "./paths.js";

const log = logger("store");

/** Everything in a site directory may hold secrets (keys, token codes): owner-only. */
export const FILE_MODE = 0o600;
export const DIR_MODE = 0o700;

const RESOURCE_FILE = /\.(ya?ml|json)$/;

/** The longest file name most Linux filesystems accept (NAME_MAX, in bytes). */
const MAX_FILE_NAME_BYTES = 255;
/** Hex digits of the name's SHA-256 in the file name of a name too long to be used as it is. */
const NAME_HASH_LENGTH = 16;

export interface InputSnapshot {
  resources: Resource[];
  /** Files that failed to be read, parsed or validated, each problem naming file and field. */
  problems: string[];
  /** Which file each resource came from, keyed by `<Kind>/<name>`. */
  sources: Map<string, string>;
}

/**
 * `<Kind>-<name>.yaml`. A name too long for that to fit in 255 bytes (names may have 253
 * characters) is shortened and followed by `_` and a hash of the whole name: `_` never occurs
 * in a name, so such a file can never be another resource's. Names that fit keep the plain
 * form, so existing directories keep working.
 */
export function resourceFileName(kind: string, name: string): string {
  checkResourceName(kind, name);
  const plain = `${kind}-${name}.yaml`;
  if (Buffer.byteLength(plain) <= MAX_FILE_NAME_BYTES) return plain;
  const hash = createHash("sha256").update(name).digest("hex").slice(0, NAME_HASH_LENGTH);
  const room = MAX_FILE_NAME_BYTES - `${kind}-_${hash}.yaml`.length;
  return `${kind}-${name.slice(0, room)}_${hash}.yaml`;
}

/** A file of `runtime/resources/` as read: the resource in it, its text and when it was written. */
export interface RuntimeEntry {
  resource: Resource;
  text: string;
  file: string;
  mtimeMs: number;
}

export interface LocalStoreOptions {
  /**
   * Parses the files of input/resources (default: parseDocuments, on this thread). The site
   * process passes an OffThreadParser, so a slow file never stalls its event loop.
   */
  parse?: (text: string, source: string) => Promise<ParseResult>;
}

export class LocalStore {
  private readonly parse: (text: string, source: string) => Promise<ParseResult>;

  constructor(
    readonly paths: SitePaths,
    options: LocalStoreOptions = {},
  ) {
    this.parse = options.parse ?? (async (text, source) => parseDocuments(text, source));
  }

  async ensureDirectories(): Promise<void> {
    for (const dir of [this.paths.root, this.paths.input, this.paths.inputResources, this.paths.runtime, this.paths.runtimeResources, this.paths.logs]) {
      await fs.mkdir(dir, { recursive: true, mode: DIR_MODE });
    }
  }

  async siteDirectoryExists(): Promise<boolean> {
    try {
      return (await fs.stat(this.paths.root)).isDirectory();
    } catch {
      return false;
    }
  }

  /**
   * Runs `fn` holding the namespace's input lock: for read-modify-write of input resources by
   * CLI commands (e.g. generation increments), which would otherwise lose each other's changes.
   * Waits at most 10 s for another holder; a lock left by a dead process is taken over.
   */
  async withInputLock<T>(fn: () => Promise<T>, timeoutMs?: number): Promise<T> {
    // The lock lives in the namespace directory, which gets its owner-only mode if created here.
    await fs.mkdir(this.paths.root, { recursive: true, mode: DIR_MODE });
    return withLockFile(
      this.paths.inputLock,
      { what: `The resources of namespace "${this.paths.namespace}"`, ...(timeoutMs !== undefined ? { timeoutMs } : {}) },
      fn,
    );
  }

  // ---- input (desired state) ----

  async readInput(): Promise<InputSnapshot> {
    const snapshot: InputSnapshot = { resources: [], problems: [], sources: new Map() };
    let files: string[];
    try {
      files = await listResourceFiles(this.paths.inputResources);
    } catch (err) {
      snapshot.problems.push(`${path.relative(this.paths.root, this.paths.inputResources)}: cannot be listed: ${errorMessage(err)}`);
      return snapshot;
    }
    for (const file of files) {
      const relative = path.relative(this.paths.root, file);
      let text: string | undefined;
      try {
        text = await readTextLimited(file, MAX_FILE_BYTES, { label: relative, regularOnly: true });
      } catch (err) {
        snapshot.problems.push(`${relative}: cannot be read, so it is skipped: ${errorMessage(err).replace(`${relative} `, "it ")}`);
        continue;
      }
      if (text === undefined) continue; // removed while we listed
      const { resources, problems } = await this.parse(text, relative);
      snapshot.problems.push(...problems);
      for (const resource of resources) {
        const key = resourceKey(resource.kind, resource.metadata.name);
        const earlier = snapshot.sources.get(key);
        if (earlier) {
          snapshot.problems.push(`${relative}: ${resource.kind} "${resource.metadata.name}" is already defined in ${path.relative(this.paths.root, earlier)}; this copy is ignored`);
          continue;
        }
        snapshot.sources.set(key, file);
        snapshot.resources.push(resource);
      }
    }
    return snapshot;
  }

  async getInput<K extends Kind>(kind: K, name: string): Promise<ResourceByKind[K] | undefined> {
    return (await this.locateInput(kind, name))?.resource;
  }

  /**
   * An input resource and the file it is in: its own `<Kind>-<name>.yaml` (`own`), or a file a
   * user wrote by hand.
   */
  async locateInput<K extends Kind>(kind: K, name: string): Promise<{ resource: ResourceByKind[K]; file: string; own: boolean } | undefined> {
    const file = this.inputFile(kind, name);
    const direct = await this.readOne(file, kind, name);
    if (direct) return { resource: direct, file, own: true };
    const snapshot = await this.readInput();
    const resource = snapshot.resources.find((r) => r.kind === kind && r.metadata.name === name) as ResourceByKind[K] | undefined;
    const source = snapshot.sources.get(resourceKey(kind, name));
    return resource && source ? { resource, file: source, own: false } : undefined;
  }

  async listInput<K extends Kind>(kind: K): Promise<Array<ResourceByKind[K]>> {
    const snapshot = await this.readInput();
    return snapshot.resources.filter((r): r is ResourceByKind[K] => r.kind === kind);
  }

  /** Writes (creates or replaces) a resource in input. Status is never stored in input. */
  async writeInput(resource: Resource): Promise<string> {
    const file = this.inputFile(resource.kind, resource.metadata.name);
    await fs.mkdir(this.paths.inputResources, { recursive: true, mode: DIR_MODE });
    await writeFileAtomic(file, toYaml(withoutStatus(resource)), { mode: FILE_MODE });
    return file;
  }

  /**
   * Creates a resource; fails if one of that kind and name exists, in its own file or in a
   * hand-written one (`whenAbsent` runs after that check, before the file is created). Atomic: of several processes creating the same resource at once, exactly
   * one succeeds and the others get AlreadyExistsError.
   */
  async createInput(resource: Resource, options: { whenAbsent?: () => Promise<void> } = {}): Promise<string> {
    const { kind, metadata } = resource;
    const file = this.inputFile(kind, metadata.name);
    const exists = () => new AlreadyExistsError(`${kind} "${metadata.name}" already exists in namespace "${this.paths.namespace}"`);
    if (await this.getInput(kind, metadata.name)) throw exists();
    await options.whenAbsent?.();
    await fs.mkdir(this.paths.inputResources, { recursive: true, mode: DIR_MODE });
    if (!(await createFileExclusive(file, toYaml(withoutStatus(resource)), { mode: FILE_MODE }))) throw exists();
    return file;
  }

  /**
   * Deletes a resource from input. A resource that shares a hand-written file with others is not
   * cut out of it: that is the user's file, so we say where it is instead.
   */
  async deleteInput(kind: Kind, name: string): Promise<boolean> {
    const file = this.inputFile(kind, name);
    if (await removeIfExists(file)) return true;
    const snapshot = await this.readInput();
    const source = snapshot.sources.get(resourceKey(kind, name));
    if (!source) return false;
    const text = (await readTextLimited(source, MAX_FILE_BYTES, { regularOnly: true })) ?? "";
    const { resources } = parseDocuments(text, source);
    if (resources.length <= 1) {
      await removeIfExists(source);
      return true;
    }
    throw new NotFoundError(
      `${kind} "${name}" is defined in ${source} together with other resources; remove it from that file by hand`,
    );
  }

  // ---- runtime (resources with status, written by the site process) ----

  async getRuntime<K extends Kind>(kind: K, name: string): Promise<ResourceByKind[K] | undefined> {
    return this.readOne(this.runtimeFile(kind, name), kind, name);
  }

  async listRuntime<K extends Kind>(kind: K): Promise<Array<ResourceByKind[K]>> {
    checkKind(kind);
    const out: Array<ResourceByKind[K]> = [];
    for (const file of await listResourceFiles(this.paths.runtimeResources)) {
      if (!path.basename(file).startsWith(`${kind}-`)) continue;
      const text = await readBounded(file);
      if (text === undefined) continue;
      const { resources } = parseDocuments(text, file);
      for (const r of resources) if (r.kind === kind) out.push(r as ResourceByKind[K]);
    }
    return out;
  }

  async writeRuntime(resource: Resource): Promise<void> {
    await this.writeRuntimeText(resource.kind, resource.metadata.name, toYaml(resource));
  }

  /** Writes `text` (the YAML of the resource `kind`/`name` with its status) to its runtime file. */
  async writeRuntimeText(kind: Kind, name: string, text: string): Promise<void> {
    const file = this.runtimeFile(kind, name);
    await fs.mkdir(this.paths.runtimeResources, { recursive: true, mode: DIR_MODE });
    await writeFileAtomic(file, text, { mode: FILE_MODE });
  }

  /** The runtime file of one resource, with its text and mtime; undefined if missing or unusable. */
  async readRuntimeEntry(kind: Kind, name: string): Promise<RuntimeEntry | undefined> {
    const entry = await this.readRuntimeFile(this.runtimeFile(kind, name));
    return entry && entry.resource.kind === kind && entry.resource.metadata.name === name ? entry : undefined;
  }

  /** Every usable runtime file (of `kind`, if given). A file that is unusable is as good as absent. */
  async readRuntimeEntries(kind?: Kind): Promise<RuntimeEntry[]> {
    if (kind !== undefined) checkKind(kind);
    const out: RuntimeEntry[] = [];
    for (const file of await listResourceFiles(this.paths.runtimeResources)) {
      if (kind !== undefined && !path.basename(file).startsWith(`${kind}-`)) continue;
      const entry = await this.readRuntimeFile(file);
      if (entry && (kind === undefined || entry.resource.kind === kind)) out.push(entry);
    }
    return out;
  }

  /** Names of the files in runtime/resources (one readdir). */
  async runtimeFileNames(): Promise<Set<string>> {
    try {
      return new Set(await fs.readdir(this.paths.runtimeResources));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return new Set();
      throw err;
    }
  }

  async deleteRuntime(kind: Kind, name: string): Promise<void> {
    await removeIfExists(this.runtimeFile(kind, name));
  }

  /**
   * Calls `onChange` (debounced) whenever a file in input/resources changes. Returns a function
   * that stops watching. The watch survives its own failures: after an error, or when the
   * directory is removed (and perhaps re-created), the directory is created if need be and
   * watched again (retrying with back-off), the change is logged, and `onChange` is called since
   * anything may have changed meanwhile. `watchDirectory` is `fs.watch` except in tests.
   */
  watchInput(onChange: () => void, debounceMs = 30, watchDirectory: typeof watch = watch): () => void {
    const dir = this.paths.inputResources;
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    let retryTimer: NodeJS.Timeout | undefined;
    let retryMs = 100;
    let watcher: FSWatcher | undefined;
    let watchedInode: number | undefined;
    const fire = () => {
      if (stopped) return;
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => {
        timer = undefined;
        onChange();
      }, debounceMs);
    };
    const currentInode = (): number | undefined => {
      try {
        return statSync(dir).ino;
      } catch {
        return undefined;
      }
    };
    const restart = (reason: string) => {
      if (stopped || retryTimer) return;
      watcher?.close();
      watcher = undefined;
      log.warn(`stopped watching ${dir}: ${reason}; watching it again`);
      fire();
      retryTimer = setTimeout(() => {
        retryTimer = undefined;
        open();
      }, retryMs);
      retryMs = Math.min(retryMs * 2, 5000);
    };
    /** The watch is bound to the directory's inode: a removed or replaced directory ends it silently. */
    const checkDirectory = () => {
      if (stopped || !watcher) return;
      const inode = currentInode();
      if (inode !== watchedInode) restart(inode === undefined ? "the directory was removed" : "the directory was replaced");
    };
    const open = () => {
      if (stopped) return;
      try {
        mkdirSync(dir, { recursive: true, mode: DIR_MODE });
        watchedInode = currentInode();
        watcher = watchDirectory(dir, { persistent: true }, (_event, file) => {
          const name = file ? String(file) : "";
          if (!name || name === path.basename(dir)) checkDirectory();
          if (!name.startsWith(".")) fire();
        });
        watcher.on("error", (err) => restart(errorMessage(err)));
        if (retryMs > 100) {
          log.info(`watching ${dir} again`);
          fire();
        }
        retryMs = 100;
      } catch (err) {
        watcher = undefined;
        restart(errorMessage(err));
      }
    };
    open();
    // A safety net for changes no event reports (the directory removed with its parent, say).
    const check = setInterval(checkDirectory, 1000);
    check.unref();
    return () => {
      stopped = true;
      clearInterval(check);
      if (timer) clearTimeout(timer);
      if (retryTimer) clearTimeout(retryTimer);
      watcher?.close();
      watcher = undefined;
    };
  }

  /** `input/resources/<Kind>-<name>.yaml` (the name is checked first). */
  inputFile(kind: string, name: string): string {
    return path.join(this.paths.inputResources, resourceFileName(kind, name));
  }

  /** `runtime/resources/<Kind>-<name>.yaml` (the name is checked first). */
  runtimeFile(kind: string, name: string): string {
    return path.join(this.paths.runtimeResources, resourceFileName(kind, name));
  }

  private async readRuntimeFile(file: string): Promise<RuntimeEntry | undefined> {
    const text = await readBounded(file);
    if (text === undefined) return undefined;
    let mtimeMs: number;
    try {
      mtimeMs = (await fs.stat(file)).mtimeMs;
    } catch {
      return undefined; // removed meanwhile
    }
    const { resources } = await this.parse(text, path.relative(this.paths.root, file));
    const resource = resources.length === 1 ? resources[0] : undefined;
    return resource ? { resource, text, file, mtimeMs } : undefined;
  }

  private async readOne<K extends Kind>(file: string, kind: K, name: string): Promise<ResourceByKind[K] | undefined> {
    const text = await readBounded(file);
    if (text === undefined) return undefined;
    const { resources } = await this.parse(text, path.relative(this.paths.root, file));
    return resources.find((r) => r.kind === kind && r.metadata.name === name) as ResourceByKind[K] | undefined;
  }
}

function withoutStatus(resource: Resource): Omit<Resource, "status"> {
  const { status: _status, ...desired } = resource as Resource & { status?: unknown };
  return desired;
}

/**
 * A resource file's text, or undefined if it is missing, too large, not a regular file or
 * unreadable: such a file is as good as absent here (readInput reports it as a problem).
 */
async function readBounded(file: string): Promise<string | undefined> {
  try {
    return await readTextLimited(file, MAX_FILE_BYTES, { regularOnly: true });
  } catch {
    return undefined;
  }
}

async function listResourceFiles(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  return names
    .filter((n) => RESOURCE_FILE.test(n) && !n.startsWith("."))
    .sort()
    .map((n) => path.join(dir, n));
}

export { checkResourceName, resourceKey } from "../../api/names.js";
