/**
 * The container a site runs in: its name, labels and the create request for the engine. Pure
 * functions, so what we ask of the engine can be read (and tested) in one place. See
 * docs/containers.md.
 */
import os from "node:os";
import path from "node:path";
import { version } from "../../../common/version.js";
import type { SitePaths } from "../../local/index.js";
import type { ContainerCreateSpec } from "../engine/client.js";
import type { EngineName } from "../engine/endpoint.js";

export const APPLICATION_LABEL = "application";
export const APPLICATION = "skupper-ts";
export const NAMESPACE_LABEL = "skupper.io/namespace";
export const PLATFORM_LABEL = "skupper.io/platform";
/** The namespace directory the container serves: two homes may use one namespace name. */
export const ROOT_LABEL = "skupper.io/namespace-root";
/** The site process's entry point in the image (deploy/image/Containerfile puts the app at /app). */
export const SITE_MAIN = "/app/dist/src/site/main.js";
/** Seconds between SIGTERM and SIGKILL when a site container is stopped. */
export const STOP_GRACE_SECONDS = 10;

/** The image the site runs from: SKUPPER_IMAGE, else the tag scripts/build-image.sh makes. */
export function siteImage(env: NodeJS.ProcessEnv = process.env): string {
  return env.SKUPPER_IMAGE || `localhost/skupper-ts:${version()}`;
}

/** One container per namespace on an engine: `skupper-<namespace>`. */
export function containerName(namespace: string): string {
  return `skupper-${namespace}`;
}

export function siteLabels(paths: SitePaths, engine: EngineName): Record<string, string> {
  return { [APPLICATION_LABEL]: APPLICATION, [NAMESPACE_LABEL]: paths.namespace, [PLATFORM_LABEL]: engine, [ROOT_LABEL]: paths.root };
}

/** A port the engine publishes on the host (named-network mode only). */
export interface PublishedPort {
  port: number;
  /** "" for every address of the host, or one address. */
  hostIp: string;
}

export interface SiteContainerOptions {
  paths: SitePaths;
  engine: EngineName;
  image: string;
  /** A user-defined engine network; undefined = the host's network. */
  network?: string;
  /** Named-network mode: the ports to publish on the host. */
  ports?: PublishedPort[];
  /** A directory outside the namespace the site's socket goes in (a long namespace path), mounted too. */
  extraDirectories?: string[];
  uid?: number;
  gid?: number;
  env?: NodeJS.ProcessEnv;
}

/** Variables of the CLI's environment the site process inside does not get (the runner sets its own). */
const NOT_PASSED = new Set(["SKUPPER_HOME", "SKUPPER_PLATFORM", "SKUPPER_IMAGE", "SKUPPER_NAMESPACE", "SKUPPER_CONTAINER_NETWORK"]);

/**
 * The create request. The command is dash (the image's /bin/sh) appending the site process's
 * output to the log file the linux platform uses, then exec'ing node, so node is the process the
 * init (`--init`) forwards signals to. The entry point is passed in a variable, not on the command
 * line: the init's command line must not look like a site process to the pid file check.
 */
export function siteContainerSpec(options: SiteContainerOptions): ContainerCreateSpec {
  const { paths, engine } = options;
  const env = options.env ?? process.env;
  const uid = options.uid ?? process.getuid?.() ?? 0;
  const gid = options.gid ?? process.getgid?.() ?? 0;
  const passed = Object.entries(env)
    .filter(([key, value]) => key.startsWith("SKUPPER_") && !NOT_PASSED.has(key) && value !== undefined)
    .map(([key, value]) => `${key}=${value}`);
  const script = 'exec node "$SKUPPER_SITE_MAIN" --platform "$1" --home "$2" --namespace "$3" >>"$4" 2>&1';
  const binds = [paths.root, ...(options.extraDirectories ?? [])].map((dir) => `${dir}:${dir}:rw`);
  const spec: ContainerCreateSpec = {
    Image: options.image,
    Entrypoint: ["/bin/sh", "-c"],
    Cmd: [script, "skupper-site", engine, paths.home, paths.namespace, paths.logFile],
    User: `${uid}:${gid}`,
    WorkingDir: "/app",
    Env: [`SKUPPER_SITE_MAIN=${SITE_MAIN}`, "HOME=/tmp", ...passed.sort()],
    Labels: siteLabels(paths, engine),
    StopTimeout: STOP_GRACE_SECONDS,
    HostConfig: {
      Binds: binds,
      NetworkMode: options.network ?? "host",
      Init: true,
      RestartPolicy: { Name: "unless-stopped" },
    },
  };
  // Rootless podman maps the user to a subordinate uid unless told to keep the id: files must stay the user's.
  if (engine === "podman" && uid !== 0) spec.HostConfig.UsernsMode = "keep-id";
  if (options.network) {
    // The site advertises this host (its name), whose published ports lead to the container.
    spec.Hostname = os.hostname();
    spec.ExposedPorts = {};
    spec.HostConfig.PortBindings = {};
    for (const { port, hostIp } of options.ports ?? []) {
      spec.ExposedPorts[`${port}/tcp`] = {};
      spec.HostConfig.PortBindings[`${port}/tcp`] = [{ HostIp: hostIp, HostPort: String(port) }];
    }
    // Host services for connectors: podman names the host host.containers.internal by itself.
    if (engine === "docker") spec.HostConfig.ExtraHosts = ["host.docker.internal:host-gateway", "host.containers.internal:host-gateway"];
  }
  return spec;
}

/** The directory `file` is in, if it is outside the namespace directory (and so must be mounted too). */
export function outsideNamespace(paths: SitePaths, file: string): string | undefined {
  const dir = path.dirname(file);
  return dir === paths.root || dir.startsWith(`${paths.root}${path.sep}`) ? undefined : dir;
}
