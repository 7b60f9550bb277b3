/**
 * The resources a bundle carries: every resource file of a directory (`--input DIR`, or the
 * namespace's `input/resources/`), checked as `skupper apply` checks a file, plus what a
 * bundle needs on top: exactly one Site, one namespace, and the Secret of every Link. They are
 * written into the bundle in the form the store writes them (`<Kind>-<name>.yaml`,
 * generation 1, no namespace), so the installer can copy them into the namespace's input.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import {
  desiredState,
  linkSecretName,
  MAX_FILE_BYTES,
  parseDocuments,
  prune,
  resourceKey,
  toYaml,
  validateResource,
  type Link,
  type Resource,
  type Site,
} from "../api/index.js";
import { errorMessage, InvalidInputError, SkupperError, ValidationError } from "../common/errors.js";
import { readTextLimited } from "../common/files.js";
import { resourceFileName } from "../platform/local/index.js";

/** The files of a directory that hold resources, as the site process reads `input/resources/`. */
const RESOURCE_FILE = /^[^.].*\.(ya?ml|json)$/;

/** Kinds whose resources hold credentials: whoever has the bundle can use them. */
const CREDENTIAL_KINDS: ReadonlySet<string> = new Set(["Secret", "AccessToken"]);

export interface BundleResources {
  site: Site;
  /** The resources in the form they are installed, each with its file name. */
  files: Array<{ name: string; text: string; resource: Resource }>;
  /** `Kind "name"` of each resource holding credentials (Secrets, AccessTokens). */
  credentials: string[];
}

export interface ResourceSource {
  dir: string;
  /** How messages name the directory: the path, or `namespace "west" (<path>)`. */
  label: string;
}

/**
 * Reads and checks the resources of `source` for a bundle of `namespace`. Throws (exit code 2)
 * with every problem found, naming file and field; nothing is written.
 */
export async function readBundleResources(source: ResourceSource, namespace: string): Promise<BundleResources> {
  const files = await resourceFiles(source);
  const problems: string[] = [];
  const resources: Resource[] = [];
  const origin = new Map<string, string>();
  for (const file of files) {
    const label = path.join(source.dir, file);
    let text: string | undefined;
    try {
      text = await readTextLimited(label, MAX_FILE_BYTES, { regularOnly: true });
    } catch (err) {
      if (!(err instanceof SkupperError)) throw new SkupperError("ERR_IO", `cannot read ${label}: ${errorMessage(err)}`);
      problems.push(err.message);
      continue;
    }
    if (text === undefined) continue; // removed meanwhile
    const parsed = parseDocuments(text, label);
    problems.push(...parsed.problems);
    for (const resource of parsed.resources) {
      const key = resourceKey(resource.kind, resource.metadata.name);
      const given = resource.metadata.namespace;
      if (given && given !== namespace) {
        problems.push(`${label}: ${resource.kind} "${resource.metadata.name}" names namespace "${given}" but the bundle is for namespace "${namespace}"; add "-n ${given}" or remove metadata.namespace`);
      } else if (origin.has(key)) {
        problems.push(`${label}: ${resource.kind} "${resource.metadata.name}" is also defined in ${origin.get(key)}; keep one`);
      } else {
        origin.set(key, label);
        resources.push(resource);
      }
    }
  }
  if (problems.length > 0) throw invalid(problems);
  if (resources.length === 0) throw new InvalidInputError(`${source.label} holds no resources, so there is no site to bundle`);
  const sites = resources.filter((r): r is Site => r.kind === "Site");
  if (sites.length === 0) {
    throw new InvalidInputError(
      `there is no Site among the resources of ${source.label}: a bundle installs a site, so it needs one (write one with "skupper site generate <name> > ${path.join(source.dir, "site.yaml")}")`,
    );
  }
  if (sites.length > 1) {
    throw new InvalidInputError(`${source.label} holds ${sites.length} Sites (${sites.map((s) => s.metadata.name).sort().join(", ")}): a bundle installs one site; keep one`);
  }
  const secrets = new Set(resources.filter((r) => r.kind === "Secret").map((r) => r.metadata.name));
  for (const link of resources.filter((r): r is Link => r.kind === "Link")) {
    const secret = linkSecretName(link);
    if (!secrets.has(secret)) {
      problems.push(
        `${origin.get(resourceKey("Link", link.metadata.name))}: Link "${link.metadata.name}" needs Secret "${secret}" (its TLS credentials), which is not among the resources; add it ("skupper link generate" on the other site prints both)`,
      );
    }
  }
  if (problems.length > 0) throw invalid(problems);
  const installed = resources.map(installedForm).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return {
    site: sites[0] as Site,
    files: installed,
    credentials: resources.filter((r) => CREDENTIAL_KINDS.has(r.kind)).map((r) => `${r.kind} "${r.metadata.name}"`),
  };
}

function invalid(problems: string[]): ValidationError {
  return new ValidationError([...problems, "No bundle was written."]);
}

async function resourceFiles(source: ResourceSource): Promise<string[]> {
  let entries;
  try {
    entries = await fs.readdir(source.dir, { withFileTypes: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new InvalidInputError(`${source.label} does not exist`);
    if (code === "ENOTDIR") throw new InvalidInputError(`${source.label} is not a directory; --input takes a directory of resource files (*.yaml, *.yml, *.json)`);
    throw new SkupperError("ERR_IO", `cannot read ${source.label}: ${errorMessage(err)}`);
  }
  const files = entries.filter((e) => !e.isDirectory() && RESOURCE_FILE.test(e.name)).map((e) => e.name);
  if (files.length === 0) throw new InvalidInputError(`${source.label} holds no resource files (*.yaml, *.yml, *.json), so there is no site to bundle`);
  return files.sort();
}

/**
 * The resource as the store writes a new one into input: desired state only (no status, uid,
 * namespace, …), generation 1.
 */
function installedForm(resource: Resource): { name: string; text: string; resource: Resource } {
  const { metadata, ...rest } = desiredState(resource);
  const where = `${resource.kind} "${resource.metadata.name}"`;
  const result = validateResource(prune({ ...rest, metadata: { ...metadata, generation: 1 } }), where);
  if (!result.ok) throw new ValidationError(result.problems);
  return { name: resourceFileName(resource.kind, resource.metadata.name), text: toYaml(result.resource), resource: result.resource };
}
