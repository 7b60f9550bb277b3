/**
 * Where the parts of a dump come from on each platform:
 *
 * - linux, podman, docker: the namespace directory (the site log, the key and credential files
 *   to check the dump against, certificate summaries) and, for the container platforms, the
 *   engine's version;
 * - kubernetes: the API server (the site pods' logs, the cluster's version).
 *
 * Metrics are fetched from the site's observer port when its Site sets one (`observer-port`).
 */
import { X509Certificate } from "node:crypto";
import { promises as fs, type Dirent } from "node:fs";
import path from "node:path";
import type { KubeConfig } from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";
import type { Site } from "../api/index.js";
import { errorMessage } from "../common/errors.js";
import { MiB } from "../common/files.js";
import type { SitePaths } from "../platform/local/index.js";
import type { Platform, PlatformName } from "../platform/types.js";
import type { DumpFile, DumpSources, KnownSecret } from "./dump.js";
import { secretsIn } from "./redact.js";

/** The most of each log a dump holds: its end. */
export const LOG_TAIL_BYTES = 8 * MiB;
/** Files of the namespace directory larger than this are not read for secrets (keys and resources are far smaller). */
const SECRET_FILE_MAX_BYTES = 1 * MiB;
const METRICS_TIMEOUT_MS = 3_000;
const METRICS_MAX_BYTES = 16 * MiB;
/** The Site settings of the observer port (console and metrics), as the site process reads them. */
export const OBSERVER_PORT_SETTING = "observer-port";
export const OBSERVER_HOST_SETTING = "observer-host";
/** The observer port's credential, under `runtime/`, when it listens beyond loopback. */
const OBSERVER_CREDENTIAL_FILE = "observer-credential";

interface Common {
  namespace: string;
  platformName: PlatformName;
  platform: Platform;
  systemStatus(): Promise<string>;
}

/** linux, podman, docker: the namespace directory is here. */
export function localSources(common: Common & { paths: SitePaths; engineVersion?: () => Promise<Record<string, unknown>> }): DumpSources {
  const { paths } = common;
  return {
    ...common,
    versions: async () => (common.engineVersion ? { engine: await common.engineVersion() } : {}),
    logs: () => localLogs(paths.logs),
    metrics: (site) => fetchMetrics(site, async () => (await readSmall(path.join(paths.runtime, OBSERVER_CREDENTIAL_FILE)))?.trim()),
    knownSecrets: () => secretsUnder(paths.root, [paths.logs]),
    certificates: () => certificateSummaries([paths.issuers, paths.certs]),
  };
}

/** kubernetes: through the API server, with the user's credentials. */
export function kubernetesSources(common: Common & { config: KubeConfig; contextName: string; pods: () => Promise<string[]> }): DumpSources {
  return {
    ...common,
    async versions() {
      // The client is imported where used, as the kubernetes platform is, not by every CLI command.
      const { VersionApi } = await import("@kubernetes/client-node");
      const info = await common.config.makeApiClient(VersionApi).getCode();
      return { kubernetes: { context: common.contextName, server: info.gitVersion, platform: info.platform } };
    },
    logs: () => podLogs(common.config, common.namespace, common.pods),
    async metrics(site) {
      const port = site?.spec.settings?.[OBSERVER_PORT_SETTING];
      if (!port) return { note: `metrics were not enabled: Site${site ? ` "${site.metadata.name}"` : ""} does not set ${OBSERVER_PORT_SETTING}` };
      return {
        note: `the site serves metrics on port ${port} inside its pod, which this command does not reach; run "kubectl -n ${common.namespace} port-forward deployment/skupper-router ${port}" and fetch http://127.0.0.1:${port}/metrics`,
      };
    },
    // The Secrets of the namespace are among the resources, whose secrets are collected as they are read.
    knownSecrets: async () => [],
  };
}

// ---- logs ----

/** The end of every file in the logs directory, from a line start. */
async function localLogs(dir: string): Promise<DumpFile[]> {
  const out: DumpFile[] = [];
  let entries: Dirent[];
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch (err) {
    throw new Error(`cannot read the log directory ${dir}: ${errorMessage(err)}`);
  }
  for (const entry of entries.filter((e) => e.isFile()).sort((a, b) => a.name.localeCompare(b.name))) {
    out.push({ path: entry.name, text: await tail(path.join(dir, entry.name), LOG_TAIL_BYTES) });
  }
  if (out.length === 0) throw new Error(`there is no log in ${dir} (the site has not been started)`);
  return out;
}

async function tail(file: string, maxBytes: number): Promise<string> {
  const handle = await fs.open(file, "r");
  try {
    const { size } = await handle.stat();
    const start = Math.max(0, size - maxBytes);
    const buffer = Buffer.alloc(size - start);
    await handle.read(buffer, 0, buffer.length, start);
    let text = buffer.toString("utf8");
    if (start > 0) {
      const newline = text.indexOf("\n");
      text = `[the first ${start + newline + 1} bytes of the log are left out]\n${text.slice(newline + 1)}`;
    }
    return text;
  } finally {
    await handle.close();
  }
}

async function podLogs(config: KubeConfig, namespace: string, pods: () => Promise<string[]>): Promise<DumpFile[]> {
  const { CoreV1Api } = await import("@kubernetes/client-node");
  const core = config.makeApiClient(CoreV1Api);
  const names = (await pods()).slice(0, 5);
  if (names.length === 0) throw new Error(`the site has no pod in namespace "${namespace}"`);
  const out: DumpFile[] = [];
  for (const name of names) {
    const text = await core.readNamespacedPodLog({ name, namespace, limitBytes: LOG_TAIL_BYTES, tailLines: 100_000 });
    out.push({ path: `${name}.log`, text: String(text) });
    try {
      // The container's previous run, if it restarted: often where a crash is told.
      const previous = await core.readNamespacedPodLog({ name, namespace, previous: true, limitBytes: LOG_TAIL_BYTES, tailLines: 100_000 });
      if (previous) out.push({ path: `${name}.previous.log`, text: String(previous) });
    } catch {
      // No previous run.
    }
  }
  return out;
}

// ---- metrics ----

/** `GET http://<observer-host>:<observer-port>/metrics`, with the observer credential when there is one. */
async function fetchMetrics(site: Site | undefined, credential: () => Promise<string | undefined>): Promise<{ text: string } | { note: string }> {
  const port = site?.spec.settings?.[OBSERVER_PORT_SETTING];
  if (!port) return { note: `metrics were not enabled: Site${site ? ` "${site.metadata.name}"` : ""} does not set ${OBSERVER_PORT_SETTING}` };
  const configured = site?.spec.settings?.[OBSERVER_HOST_SETTING] || "127.0.0.1";
  const bare = configured.replace(/^\[(.*)\]$/, "$1");
  const host = bare === "0.0.0.0" ? "127.0.0.1" : bare === "::" ? "::1" : bare;
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}/metrics`;
  const token = await credential();
  const answer = await fetch(url, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
    signal: AbortSignal.timeout(METRICS_TIMEOUT_MS),
  }).catch((err: Error) => {
    throw new Error(`cannot fetch ${url}: ${err.cause instanceof Error ? err.cause.message : err.message}`);
  });
  if (!answer.ok) throw new Error(`${url} answered HTTP ${answer.status}`);
  const text = await answer.text();
  return { text: text.length > METRICS_MAX_BYTES ? `${text.slice(0, METRICS_MAX_BYTES)}\n# [cut at ${METRICS_MAX_BYTES} bytes]\n` : text };
}

// ---- the site's own secrets ----

/**
 * Every secret in the files under `root` (not under `skip`): PEM private keys, Secret data and
 * codes in resource files (by the redaction rules), and the observer credential.
 */
export async function secretsUnder(root: string, skip: readonly string[] = []): Promise<KnownSecret[]> {
  const out: KnownSecret[] = [];
  for (const file of await filesUnder(root, new Set(skip.map((s) => path.resolve(s))))) {
    const text = await readSmall(file);
    if (text === undefined) continue;
    if (path.basename(file) === OBSERVER_CREDENTIAL_FILE) out.push({ value: text.trim(), base64Value: false });
    if (/\.(ya?ml|json)$/.test(file)) {
      try {
        for (const doc of parseAllDocuments(text)) {
          if ("errors" in doc && doc.errors.length > 0) continue;
          out.push(...secretsIn(doc.toJS()));
        }
      } catch {
        // Not parseable: the key search below still applies.
      }
    }
    // PEM private keys anywhere (tls.key and any other file).
    out.push(...secretsIn(text));
  }
  return out;
}

async function filesUnder(dir: string, skip: ReadonlySet<string>): Promise<string[]> {
  if (skip.has(path.resolve(dir))) return [];
  let entries: Dirent[];
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(full, skip)));
    else if (entry.isFile()) out.push(full);
  }
  return out;
}

/** The text of a regular file of at most SECRET_FILE_MAX_BYTES, else undefined. */
async function readSmall(file: string): Promise<string | undefined> {
  try {
    const stat = await fs.stat(file);
    if (!stat.isFile() || stat.size > SECRET_FILE_MAX_BYTES) return undefined;
    return await fs.readFile(file, "utf8");
  } catch {
    return undefined;
  }
}

// ---- certificates ----

/** Per credential directory: what its certificates say (never the key: only whether there is one). */
async function certificateSummaries(dirs: readonly string[]): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const dir of dirs) {
    let names: string[];
    try {
      names = (await fs.readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
    } catch {
      continue;
    }
    for (const name of names.sort()) {
      const entry: Record<string, unknown> = {};
      for (const file of ["tls.crt", "ca.crt"]) {
        const pem = await readSmall(path.join(dir, name, file));
        if (pem) entry[file] = describeCertificate(pem);
      }
      entry.hasPrivateKey = (await readSmall(path.join(dir, name, "tls.key"))) !== undefined;
      out[`${path.basename(dir)}/${name}`] = entry;
    }
  }
  return out;
}

export function describeCertificate(pem: string): unknown {
  try {
    const cert = new X509Certificate(pem);
    return {
      subject: cert.subject.split("\n").join(", "),
      issuer: cert.issuer.split("\n").join(", "),
      serialNumber: cert.serialNumber,
      notBefore: new Date(cert.validFrom).toISOString(),
      notAfter: new Date(cert.validTo).toISOString(),
      ...(cert.subjectAltName ? { subjectAltName: cert.subjectAltName } : {}),
      ca: cert.ca,
      fingerprint256: cert.fingerprint256,
    };
  } catch (err) {
    return { problem: `not a certificate this version can read: ${errorMessage(err)}` };
  }
}
