/**
 * Where a container engine's API socket is: `CONTAINER_ENDPOINT` (as the original: `unix:///path`),
 * else `DOCKER_HOST` for docker, else the engine's default socket.
 */
import path from "node:path";
import { SkupperError } from "../../../common/errors.js";

export type EngineName = "podman" | "docker";

export interface EngineEndpoint {
  engine: EngineName;
  /** The Unix socket the engine's Docker-compatible API answers on. */
  socketPath: string;
  /** Where it came from, for messages: "CONTAINER_ENDPOINT", "DOCKER_HOST" or "default". */
  source: "CONTAINER_ENDPOINT" | "DOCKER_HOST" | "default";
}

export function resolveEndpoint(engine: EngineName, env: NodeJS.ProcessEnv = process.env, uid = process.getuid?.() ?? 0): EngineEndpoint {
  if (env.CONTAINER_ENDPOINT) return { engine, socketPath: unixPath(env.CONTAINER_ENDPOINT, "CONTAINER_ENDPOINT"), source: "CONTAINER_ENDPOINT" };
  if (engine === "docker" && env.DOCKER_HOST) return { engine, socketPath: unixPath(env.DOCKER_HOST, "DOCKER_HOST"), source: "DOCKER_HOST" };
  return { engine, socketPath: defaultSocket(engine, env, uid), source: "default" };
}

/** Root podman: `/run/podman/podman.sock`; rootless: `$XDG_RUNTIME_DIR/podman/podman.sock`; docker: `/var/run/docker.sock`. */
export function defaultSocket(engine: EngineName, env: NodeJS.ProcessEnv = process.env, uid = process.getuid?.() ?? 0): string {
  if (engine === "docker") return "/var/run/docker.sock";
  if (uid === 0) return "/run/podman/podman.sock";
  const runtimeDir = env.XDG_RUNTIME_DIR || `/run/user/${uid}`;
  return path.join(runtimeDir, "podman", "podman.sock");
}

/** `unix:///path` or an absolute path; anything else (tcp://, ssh://) is refused with a sentence. */
export function unixPath(value: string, variable: string): string {
  const trimmed = value.trim();
  const withoutScheme = trimmed.startsWith("unix://") ? trimmed.slice("unix://".length) : trimmed;
  if (!path.isAbsolute(withoutScheme) || /^[a-z]+:\/\//i.test(withoutScheme)) {
    throw new SkupperError(
      "ERR_ENGINE_ENDPOINT",
      `${variable}="${value}" is not a Unix socket: only "unix:///path/to/engine.sock" endpoints are supported (the site's files are bind-mounted, so the engine must run on this host)`,
    );
  }
  return path.normalize(withoutScheme);
}
