/**
 * The podman and docker platforms: the site of a namespace is the local one (its files under
 * `$SKUPPER_HOME/namespaces/<ns>/`, the same store, state and request socket), run by a container
 * engine instead of as a host process. See docs/containers.md.
 */
import { DEFAULT_GRANT_SERVER_PORT, DEFAULT_LINK_PORT, linkAccessEnabled, SiteSetting } from "../../api/index.js";
import { openLocalPlatform, type LocalPlatform, type RequestOptions } from "../local/index.js";
import type { Platform } from "../types.js";
import { EngineClient } from "./engine/client.js";
import { resolveEndpoint, type EngineName } from "./engine/endpoint.js";
import { ContainerSiteRunner } from "./runner/runner.js";
import { siteImage, type PublishedPort } from "./runner/spec.js";

export { API_VERSION, buildHint, EngineClient, EngineError, engineMessage, REQUEST_TIMEOUT_MS, startHint } from "./engine/client.js";
export type { ContainerCreateSpec, ContainerInfo, ContainerSummary, EngineErrorCode, EngineVersion } from "./engine/client.js";
export { defaultSocket, resolveEndpoint, unixPath, type EngineEndpoint, type EngineName } from "./engine/endpoint.js";
export { ContainerSiteRunner, START_TIMEOUT_MS, type ContainerRunnerOptions } from "./runner/runner.js";
export {
  APPLICATION,
  APPLICATION_LABEL,
  containerName,
  NAMESPACE_LABEL,
  PLATFORM_LABEL,
  ROOT_LABEL,
  siteContainerSpec,
  siteImage,
  SITE_MAIN,
  STOP_GRACE_SECONDS,
  type PublishedPort,
  type SiteContainerOptions,
} from "./runner/spec.js";
export { installPlatform, uninstallPlatform, systemdState, type InstallOptions, type UninstallOptions } from "./system/install.js";

export interface ContainerPlatformOptions {
  engine: EngineName;
  namespace: string;
  home?: string;
  requests?: RequestOptions;
  env?: NodeJS.ProcessEnv;
}

export interface ContainerPlatform extends Platform {
  readonly name: EngineName;
  readonly runner: ContainerSiteRunner;
  readonly local: LocalPlatform;
}

/** The CLI's face: the local platform's store, requests and status, with a container runner. */
export function openContainerPlatform(options: ContainerPlatformOptions): ContainerPlatform {
  const local = openLocalPlatform({ namespace: options.namespace, ...(options.home ? { home: options.home } : {}), ...(options.requests ? { requests: options.requests } : {}) });
  const env = options.env ?? process.env;
  const client = new EngineClient(resolveEndpoint(options.engine, env));
  const runner = new ContainerSiteRunner({
    paths: local.paths,
    client,
    image: siteImage(env),
    ports: () => publishedPorts(local),
    ...(options.requests ? { requests: options.requests } : {}),
  });
  return {
    name: options.engine,
    namespace: local.namespace,
    resources: local.resources,
    runner,
    requests: local.requests,
    local,
    networkStatus: () => local.networkStatus(),
    prepare: () => local.prepare(),
    removeSiteState: (o) => local.removeSiteState(o),
  };
}

/**
 * Named-network mode: what the engine publishes on the host. The link and grant-server ports on
 * every address of the host (remote sites dial the hosts the site advertises: this host's
 * addresses and name); listener ports on 127.0.0.1. Listeners made after the container started
 * are published by `system reload`.
 */
export async function publishedPorts(local: LocalPlatform): Promise<PublishedPort[]> {
  const ports: PublishedPort[] = [];
  const sites = (await local.resources.list("Site")).filter((s) => !s.metadata.deletionTimestamp);
  const site = sites[0];
  if (site && linkAccessEnabled(site)) {
    const settings = site.spec.settings ?? {};
    const port = (key: string, fallback: number) => {
      const value = Number(settings[key]);
      return Number.isInteger(value) && value > 0 && value < 65536 ? value : fallback;
    };
    let linkPort = port(SiteSetting.linkPort, DEFAULT_LINK_PORT);
    const access = (await local.resources.list("RouterAccess")).find((ra) => ra.spec.roles.some((r) => r.name === "inter-router"));
    const rolePort = access?.spec.roles.find((r) => r.name === "inter-router")?.port;
    if (rolePort) linkPort = rolePort;
    ports.push({ port: linkPort, hostIp: "" }, { port: port(SiteSetting.grantServerPort, DEFAULT_GRANT_SERVER_PORT), hostIp: "" });
  }
  for (const listener of await local.resources.list("Listener")) {
    if (!listener.metadata.deletionTimestamp && !ports.some((p) => p.port === listener.spec.port)) ports.push({ port: listener.spec.port, hostIp: "127.0.0.1" });
  }
  return ports;
}
