/**
 * The container SiteRunner: the site process of a namespace runs in a container of the project's
 * image on podman or docker, its namespace directory mounted at the same path, so the CLI reads
 * and writes the same files as on the linux platform. Its state comes from the engine, never
 * from a pid (the pid the site process records is one of the container's pid namespace).
 */
import { closeSync, openSync, promises as fs } from "node:fs";
import { SkupperError } from "../../../common/errors.js";
import { removeIfExists } from "../../../common/files.js";
import { DIR_MODE, FILE_MODE, readPid, readPlatformRecord, socketLocation, type RequestOptions, type SitePaths } from "../../local/index.js";
import type { SiteRunner, SiteRunnerStatus } from "../../types.js";
import { buildHint, EngineError, type ContainerInfo, type EngineClient } from "../engine/client.js";
import { APPLICATION, APPLICATION_LABEL, containerName, outsideNamespace, ROOT_LABEL, siteContainerSpec, STOP_GRACE_SECONDS, type PublishedPort } from "./spec.js";

/** A fresh container is up in 1–3 s; an engine under load (CI) may take much longer to create one. */
export const START_TIMEOUT_MS = 60_000;
const POLL_MS = 100;

export interface ContainerRunnerOptions {
  paths: SitePaths;
  client: EngineClient;
  image: string;
  /** Named-network mode (the namespace's record names a network): the ports to publish, as the site's resources say now. */
  ports?: () => Promise<PublishedPort[]>;
  requests?: RequestOptions;
  startTimeoutMs?: number;
}

export class ContainerSiteRunner implements SiteRunner {
  readonly name: string;

  constructor(private readonly options: ContainerRunnerOptions) {
    this.name = containerName(options.paths.namespace);
  }

  get paths(): SitePaths {
    return this.options.paths;
  }

  get client(): EngineClient {
    return this.options.client;
  }

  async status(): Promise<SiteRunnerStatus> {
    const info = await this.ours();
    return info?.State.Running ? { running: true, id: this.name } : { running: false };
  }

  /** The container as the engine reports it, for `system status`. */
  async inspect(): Promise<ContainerInfo | undefined> {
    return this.ours();
  }

  async start(): Promise<{ id: string; started: boolean }> {
    const { paths, client } = this.options;
    const existing = await this.ours();
    if (existing?.State.Running && !existing.State.Restarting) return { id: this.name, started: false };
    // One that exited (or keeps restarting): replaced by a fresh one, from the image as it is now.
    if (existing) await client.removeContainer(this.name);
    if ((await client.imageId(this.options.image)) === undefined) {
      throw new EngineError("ERR_IMAGE_MISSING", `${capitalize(client.describe())} has no image ${this.options.image}. ${buildHint(client.engine)}`);
    }
    await fs.mkdir(paths.logs, { recursive: true, mode: DIR_MODE });
    // The log is the user's file (0600), made before the container appends to it.
    closeSync(openSync(paths.logFile, "a", FILE_MODE));
    const logStart = (await fs.stat(paths.logFile)).size;
    await removeIfExists(paths.containerPidFile);
    const socketDir = socketLocation(paths, this.options.requests).privateDirectory;
    if (socketDir) await fs.mkdir(socketDir, { recursive: true, mode: DIR_MODE });
    const extra = socketDir ? [socketDir] : [];
    const outside = outsideNamespace(paths, paths.logFile);
    if (outside) extra.push(outside);
    // The network the namespace was created with (site create --container-network), else the host's.
    const network = (await readPlatformRecord(paths))?.network;
    if (network) await client.ensureNetwork(network, { [APPLICATION_LABEL]: APPLICATION });
    const spec = siteContainerSpec({
      paths,
      engine: client.engine,
      image: this.options.image,
      ...(network ? { network, ports: (await this.options.ports?.()) ?? [] } : {}),
      extraDirectories: extra,
    });
    await client.createContainer(this.name, spec);
    try {
      await client.startContainer(this.name);
      await this.untilUp(logStart);
    } catch (err) {
      // A container that did not come up must not keep restarting behind the user's back.
      await client.removeContainer(this.name).catch(() => undefined);
      throw err;
    }
    return { id: this.name, started: true };
  }

  /** Up = the container runs and its site process holds its pid file; exited = an error with the log's last lines. */
  private async untilUp(logStart: number): Promise<void> {
    const { paths } = this.options;
    const timeoutMs = this.options.startTimeoutMs ?? START_TIMEOUT_MS;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const info = await this.options.client.inspectContainer(this.name);
      if (!info) throw new SkupperError("ERR_SITE_START", `The site container ${this.name} disappeared during start-up (removed by someone else?).`);
      const failed = !info.State.Running || info.State.Restarting === true || (info.RestartCount ?? 0) > 0;
      if (failed) {
        const log = await readLogTail(paths.logFile, logStart);
        const engineError = info.State.Error ? ` The engine says: ${info.State.Error}` : "";
        throw new SkupperError(
          "ERR_SITE_START",
          `The site container ${this.name} exited during start-up (code ${info.State.ExitCode ?? "unknown"}).${engineError}${log ? `\n${log}` : ""}\nLog: ${paths.logFile}`,
        );
      }
      if ((await readPid(paths.containerPidFile)) !== undefined) return;
      if (Date.now() >= deadline) {
        throw new SkupperError("ERR_SITE_START", `The site container ${this.name} did not start its site process within ${timeoutMs / 1000} s; see ${paths.logFile}`);
      }
      await delay(POLL_MS);
    }
  }

  async stop(): Promise<{ id?: string }> {
    const existing = await this.ours();
    if (!existing) return {};
    await this.options.client.stopContainer(this.name, STOP_GRACE_SECONDS);
    await this.options.client.removeContainer(this.name);
    await removeIfExists(this.options.paths.containerPidFile);
    return existing.State.Running ? { id: this.name } : {};
  }

  describe(): { location: string; log: string } {
    return { location: this.options.paths.root, log: this.options.paths.logFile };
  }

  /** The container of this name, refusing one that serves another namespace directory. */
  private async ours(): Promise<ContainerInfo | undefined> {
    const info = await this.options.client.inspectContainer(this.name);
    if (!info) return undefined;
    const root = info.Config.Labels?.[ROOT_LABEL];
    if (root !== this.options.paths.root) {
      throw new SkupperError(
        "ERR_CONTAINER_CONFLICT",
        `The container ${this.name} on ${this.options.client.describe()} is not this namespace's site (it serves ${root ?? "something else"}, not ${this.options.paths.root}). Remove it, or use another namespace name.`,
      );
    }
    return info;
  }
}

async function readLogTail(file: string, from: number): Promise<string> {
  try {
    const text = (await fs.readFile(file, "utf8")).slice(from).trim();
    return text.split("\n").slice(-8).join("\n");
  } catch {
    return "";
  }
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
