/**
 * Resources of one site on the local platform: desired state in `input/resources/`, resources
 * with status in `runtime/resources/`. One resource per file named `<Kind>-<name>.yaml`; files a
 * user drops in by hand may hold several documents and are read as well.
 */
import { promises as fs, watch, type FSWatcher } from "node:fs";
import path from "node:path";
import { parseDocuments, toYaml, type Kind, type Resource, type ResourceByKind } from "../api/index.js";
import { AlreadyExistsError, NotFoundError } from "../common/errors.js";
import { readFileIfExists, removeIfExists, writeFileAtomic } from "../common/files.js";
import type { SitePaths } from "./paths.js";

/** Everything in a site directory may hold secrets (keys, token codes): owner-only. */
export const FILE_MODE = 0o600;
export const DIR_MODE = 0o700;

const RESOURCE_FILE = /\.(ya?ml|json)$/;

export interface InputSnapshot {
  resources: Resource[];
  /** Files that failed to parse or validate, each problem naming file and field. */
  problems: string[];
  /** Which file each resource came from, keyed by `<Kind>/<name>`. */
  sources: Map<string, string>;
}

export function resourceKey(kind: string, name: string): string {
  return `${kind}/${name}`;
}

export function resourceFileName(kind: string, name: string): string {
  return `${kind}-${name}.yaml`;
}

export class LocalStore {
  constructor(readonly paths: SitePaths) {}

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

  // ---- input (desired state) ----

  async readInput(): Promise<InputSnapshot> {
    const snapshot: InputSnapshot = { resources: [], problems: [], sources: new Map() };
    for (const file of await listResourceFiles(this.paths.inputResources)) {
      const text = await readFileIfExists(file);
      if (text === undefined) continue; // removed while we listed
      const { resources, problems } = parseDocuments(text, path.relative(this.paths.root, file));
      snapshot.problems.push(...problems);
      for (const resource of resources) {
        const key = resourceKey(resource.kind, resource.metadata.name);
        const earlier = snapshot.sources.get(key);
        if (earlier) {
          snapshot.problems.push(`${path.relative(this.paths.root, file)}: ${resource.kind} "${resource.metadata.name}" is already defined in ${path.relative(this.paths.root, earlier)}; this copy is ignored`);
          continue;
        }
        snapshot.sources.set(key, file);
        snapshot.resources.push(resource);
      }
    }
    return snapshot;
  }

  async getInput<K extends Kind>(kind: K, name: string): Promise<ResourceByKind[K] | undefined> {
    const direct = await this.readOne(path.join(this.paths.inputResources, resourceFileName(kind, name)), kind, name);
    if (direct) return direct;
    const snapshot = await this.readInput();
    return snapshot.resources.find((r) => r.kind === kind && r.metadata.name === name) as ResourceByKind[K] | undefined;
  }

  async listInput<K extends Kind>(kind: K): Promise<Array<ResourceByKind[K]>> {
    const snapshot = await this.readInput();
    return snapshot.resources.filter((r): r is ResourceByKind[K] => r.kind === kind);
  }

  /** Writes (creates or replaces) a resource in input. Status is never stored in input. */
  async writeInput(resource: Resource): Promise<string> {
    const file = path.join(this.paths.inputResources, resourceFileName(resource.kind, resource.metadata.name));
    const { status: _status, ...desired } = resource as Resource & { status?: unknown };
    await fs.mkdir(this.paths.inputResources, { recursive: true, mode: DIR_MODE });
    await writeFileAtomic(file, toYaml(desired), { mode: FILE_MODE });
    return file;
  }

  /** Creates a resource; fails if one of that kind and name exists. */
  async createInput(resource: Resource): Promise<string> {
    if (await this.getInput(resource.kind, resource.metadata.name)) {
      throw new AlreadyExistsError(`${resource.kind} "${resource.metadata.name}" already exists in namespace "${this.paths.namespace}"`);
    }
    return this.writeInput(resource);
  }

  /**
   * Deletes a resource from input. A resource that shares a hand-written file with others is not
   * cut out of it: that is the user's file, so we say where it is instead.
   */
  async deleteInput(kind: Kind, name: string): Promise<boolean> {
    const file = path.join(this.paths.inputResources, resourceFileName(kind, name));
    if (await removeIfExists(file)) return true;
    const snapshot = await this.readInput();
    const source = snapshot.sources.get(resourceKey(kind, name));
    if (!source) return false;
    const text = (await readFileIfExists(source)) ?? "";
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
    return this.readOne(path.join(this.paths.runtimeResources, resourceFileName(kind, name)), kind, name);
  }

  async listRuntime<K extends Kind>(kind: K): Promise<Array<ResourceByKind[K]>> {
    const out: Array<ResourceByKind[K]> = [];
    for (const file of await listResourceFiles(this.paths.runtimeResources)) {
      if (!path.basename(file).startsWith(`${kind}-`)) continue;
      const text = await readFileIfExists(file);
      if (text === undefined) continue;
      const { resources } = parseDocuments(text, file);
      for (const r of resources) if (r.kind === kind) out.push(r as ResourceByKind[K]);
    }
    return out;
  }

  async writeRuntime(resource: Resource): Promise<void> {
    const file = path.join(this.paths.runtimeResources, resourceFileName(resource.kind, resource.metadata.name));
    await fs.mkdir(this.paths.runtimeResources, { recursive: true, mode: DIR_MODE });
    await writeFileAtomic(file, toYaml(resource), { mode: FILE_MODE });
  }

  async deleteRuntime(kind: Kind, name: string): Promise<void> {
    await removeIfExists(path.join(this.paths.runtimeResources, resourceFileName(kind, name)));
  }

  /**
   * Calls `onChange` (debounced) whenever a file in input/resources changes. Returns a function
   * that stops watching.
   */
  watchInput(onChange: () => void, debounceMs = 30): () => void {
    let timer: NodeJS.Timeout | undefined;
    const fire = () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => {
        timer = undefined;
        onChange();
      }, debounceMs);
    };
    let watcher: FSWatcher | undefined = watch(this.paths.inputResources, { persistent: true }, (_event, file) => {
      if (!file || !String(file).startsWith(".")) fire();
    });
    watcher.on("error", () => fire());
    return () => {
      if (timer) clearTimeout(timer);
      watcher?.close();
      watcher = undefined;
    };
  }

  private async readOne<K extends Kind>(file: string, kind: K, name: string): Promise<ResourceByKind[K] | undefined> {
    const text = await readFileIfExists(file);
    if (text === undefined) return undefined;
    const { resources } = parseDocuments(text, file);
    return resources.find((r) => r.kind === kind && r.metadata.name === name) as ResourceByKind[K] | undefined;
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
