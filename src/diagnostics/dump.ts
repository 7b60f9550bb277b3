/**
 * `skupper debug dump`: what goes into the archive and how it is made safe to share. The parts
 * that depend on where the site runs (logs, versions of the engine or cluster, the site's own
 * secret files, metrics) come from a DumpSources the CLI builds for its platform (sources.ts);
 * everything else is read through the platform seam. A part that cannot be collected is named in
 * `problems.txt` with the reason: a dump never fails because one part is missing.
 */
import os from "node:os";
import { gzipSync } from "node:zlib";
import { KINDS, toYaml, type Kind, type NetworkStatus, type Resource, type Site } from "../api/index.js";
import { errorMessage } from "../common/errors.js";
import { version } from "../common/version.js";
import type { Platform, PlatformName } from "../platform/types.js";
import { findLeaks, redact, redactText, secretNeedles, secretsIn, type Leak } from "./redact.js";
import { parentDirectories, tar } from "./tar.js";

/** One file of the dump, its path relative to the archive's top directory. */
export interface DumpFile {
  path: string;
  text: string;
}

/** A secret the site holds, to be looked for in the assembled dump. */
export interface KnownSecret {
  value: string;
  /** The value is base64 (Secret data): its decoded form is looked for too. */
  base64Value: boolean;
}

/** What only the platform knows how to get; every method may throw (the part is then reported missing). */
export interface DumpSources {
  namespace: string;
  platformName: PlatformName;
  platform: Platform;
  /** Versions of what runs the site: the container engine, the cluster. */
  versions(): Promise<Record<string, unknown>>;
  /** What `skupper system status` prints for the namespace. */
  systemStatus(): Promise<string>;
  /** The site's recent logs: file names under `logs/` and their text. */
  logs(): Promise<DumpFile[]>;
  /** The site's metrics, or a sentence saying why there are none. */
  metrics(site: Site | undefined): Promise<{ text: string } | { note: string }>;
  /** Secrets the site keeps outside its resources (key files, credentials). */
  knownSecrets(): Promise<KnownSecret[]>;
  /** Summaries (never keys) of the certificates the site keeps, if the platform can read them. */
  certificates?(): Promise<unknown>;
}

export interface DumpOptions {
  /** The longest one part may take (default 20 s): a hung API server or engine costs one part, not the dump. */
  partTimeoutMs?: number;
  now?: Date;
}

export interface Dump {
  files: DumpFile[];
  problems: string[];
  /** Occurrences of known secrets found (and replaced) in the collected text: should be 0. */
  secretsCaught: number;
  /** Every form of every secret the site holds, for the last check before writing (`archive`). */
  needles: string[];
}

/** Collects every part; never throws for a missing part. The files are already redacted. */
export async function collectDump(sources: DumpSources, options: DumpOptions = {}): Promise<Dump> {
  const timeoutMs = options.partTimeoutMs ?? 20_000;
  const now = options.now ?? new Date();
  const problems: string[] = [];
  const files: DumpFile[] = [];
  const secrets: KnownSecret[] = [];
  const part = async <T>(name: string, work: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await withTimeout(work(), timeoutMs);
    } catch (err) {
      problems.push(`${name}: ${errorMessage(err)}`);
      return undefined;
    }
  };

  // Resources, each kind apart: a kind the platform cannot list (a CRD missing) is one problem.
  const resources: Resource[] = [];
  for (const kind of KINDS) {
    const list = await part(`resources of kind ${kind}`, () => sources.platform.resources.list(kind as Kind));
    for (const resource of list ?? []) {
      resources.push(resource);
      secrets.push(...secretsIn(resource).map((s) => ({ value: s.value, base64Value: s.base64Value })));
      files.push({ path: `resources/${fileSafe(`${resource.kind}-${resource.metadata.name}`)}.yaml`, text: yamlText(redact(resource)) });
    }
  }
  const sites = resources.filter((r): r is Site => r.kind === "Site");
  const site = sites.find((s) => !s.metadata.deletionTimestamp) ?? sites[0];
  if (!site) problems.push(`site: there is no Site in namespace "${sources.namespace}"`);

  const known = await part("the site's secret files (for the final check)", () => sources.knownSecrets());
  secrets.push(...(known ?? []));

  const view = await part("network status", () => sources.platform.networkStatus());
  if (view) files.push({ path: "network-status.json", text: `${JSON.stringify(redact(view), null, 2)}\n` });
  else if (!problems.some((p) => p.startsWith("network status:"))) {
    problems.push("network status: the site has not published one (it is not running, or has not started yet)");
  }

  const runner = await part("site runner status", () => sources.platform.runner.status());
  const platformVersions = await part("platform versions", () => sources.versions());
  files.push({ path: "versions.yaml", text: yamlText(versions(sources, now, view, platformVersions ?? {}, runner?.running)) });

  const status = await part("system status", () => sources.systemStatus());
  if (status !== undefined) files.push({ path: "system-status.txt", text: status });

  const logs = await part("logs", () => sources.logs());
  for (const log of logs ?? []) files.push({ path: `logs/${log.path}`, text: log.text });

  const metrics = await part("metrics", () => sources.metrics(site));
  if (metrics) files.push({ path: "metrics.txt", text: "text" in metrics ? metrics.text : `# ${metrics.note}\n` });

  if (sources.certificates) {
    const certificates = await part("certificates", () => sources.certificates!());
    if (certificates !== undefined) files.push({ path: "certificates.yaml", text: yamlText(redact(certificates), "# The site keeps no certificates (yet).\n") });
  }

  files.push({ path: "problems.txt", text: problems.length === 0 ? "Nothing was left out.\n" : `${problems.map((p) => `- ${p}`).join("\n")}\n` });

  // Defence in depth: every file, whatever its source, passes the text rules and the search for
  // the site's own secrets in each form they could take.
  const needles = needlesOf(secrets);
  let secretsCaught = 0;
  const safe = files.map((file) => {
    const { text, found } = redactText(file.text, needles);
    secretsCaught += found;
    return { path: file.path, text };
  });
  if (secretsCaught > 0) {
    const note = `- the final check found ${secretsCaught} occurrence(s) of the site's secret values that the rules above missed; they were replaced with "<redacted: secret value>"\n`;
    const index = safe.findIndex((f) => f.path === "problems.txt");
    const current = safe[index] as DumpFile;
    safe[index] = { path: current.path, text: problems.length === 0 ? note : current.text + note };
  }
  return { files: safe, problems, secretsCaught, needles };
}

/** Longest values first, so a secret is replaced whole before any part of it is. */
export function needlesOf(secrets: readonly KnownSecret[]): string[] {
  const all = new Set<string>();
  for (const secret of secrets) for (const needle of secretNeedles(secret.value, { base64Value: secret.base64Value })) all.add(needle);
  return [...all].sort((a, b) => b.length - a.length);
}

/** Thrown instead of writing a dump that still holds a secret. */
export class DumpLeakError extends Error {
  constructor(readonly leaks: Leak[]) {
    super(`the dump was not written: it would contain ${leaks.map((l) => `${l.what} in ${l.file}`).join(", ")}`);
  }
}

/**
 * The gzipped tarball of `files` under `top/`, after the last check: if any file still holds a
 * private key or a known secret, nothing is made (DumpLeakError).
 */
export function archive(top: string, files: readonly DumpFile[], needles: readonly string[], now = new Date()): Buffer {
  const leaks = findLeaks(files, needles);
  if (leaks.length > 0) throw new DumpLeakError(leaks);
  const mtime = Math.floor(now.getTime() / 1000);
  const paths = files.map((f) => `${top}/${f.path}`);
  const entries = [
    ...parentDirectories(paths).map((path) => ({ path, mtime })),
    ...files.map((f, i) => ({ path: paths[i] as string, data: Buffer.from(f.text, "utf8"), mtime })),
  ];
  return gzipSync(tar(entries));
}

function versions(sources: DumpSources, now: Date, view: NetworkStatus | undefined, platform: Record<string, unknown>, running: boolean | undefined): unknown {
  return {
    dumpTime: now.toISOString(),
    cli: version(),
    node: process.version,
    os: { platform: os.platform(), release: os.release(), version: os.version(), arch: os.arch() },
    platform: sources.platformName,
    namespace: sources.namespace,
    site: view
      ? { name: view.siteName, id: view.siteId, version: view.version || "unknown", running: running ?? "unknown" }
      : { running: running ?? "unknown", version: "unknown (no network status)" },
    ...platform,
  };
}

/** YAML of `value`; `empty` when nothing is left of it (toYaml prunes empty fields). */
function yamlText(value: unknown, empty = "{}\n"): string {
  return (toYaml(value) as string | undefined) ?? empty;
}

/** A resource name as one path component (names are DNS labels already; this is for hand-written files). */
function fileSafe(name: string): string {
  return name.replace(/[/\\\0]/g, "_").slice(0, 240);
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${Math.round(ms / 1000)} s`)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
