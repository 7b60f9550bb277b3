/**
 * The project's image for Kubernetes e2e tests, built by scripts/build-image.sh into the dockerd
 * the test cluster's pods run on (its DOCKER_HOST, from ../shared/tools/kube/cluster.sh env).
 * The script labels the image with a hash of its content and builds nothing when an image of
 * that hash exists, so every test file may ask: only the first build of a run takes time.
 * SKUPPER_TEST_IMAGE names an image already available to the cluster (e.g. loaded into kind or
 * k3s by hand) and skips the build.
 *
 *   const dockerHost = await testDockerHost();
 *   const image = await ensureSkupperImage({ dockerHost });
 *   describe("...", { skip: "skip" in image ? image.skip : false }, () => { ... });
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { defaultImage } from "../../src/platform/kubernetes/names.js";
import { ROOT } from "./cli.js";
import { CLUSTER_SCRIPT } from "./kube-cluster.js";

const BUILD_SCRIPT = path.join(ROOT, "scripts", "build-image.sh");
/** A first build takes about 20 s; another test file's build may hold the script's lock meanwhile. */
const BUILD_TIMEOUT_MS = 360_000;
const DOCKER_TIMEOUT_MS = 60_000;
const PROBE_TIMEOUT_MS = 20_000;

export type SkupperImage = { image: string } | { skip: string };

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

const builds = new Map<string, Promise<SkupperImage>>();

export function ensureSkupperImage(options: { dockerHost?: string }): Promise<SkupperImage> {
  const given = process.env.SKUPPER_TEST_IMAGE;
  if (given) return Promise.resolve({ image: given });
  const key = options.dockerHost ?? "";
  let build = builds.get(key);
  if (!build) {
    build = buildImage(options.dockerHost);
    builds.set(key, build);
  }
  return build;
}

/** DOCKER_HOST if set, else the test cluster's dockerd as `cluster.sh env` names it. */
export async function testDockerHost(): Promise<string | undefined> {
  if (process.env.DOCKER_HOST) return process.env.DOCKER_HOST;
  if (!existsSync(CLUSTER_SCRIPT)) return undefined;
  const env = await run("bash", [CLUSTER_SCRIPT, "env"], { timeoutMs: PROBE_TIMEOUT_MS });
  return /DOCKER_HOST=(\S+)/.exec(env.stdout)?.[1];
}

/** The docker CLI against the given daemon (or the default one). */
export function docker(args: string[], options: { dockerHost?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return run("docker", args, { env: dockerEnv(options.dockerHost), timeoutMs: options.timeoutMs ?? DOCKER_TIMEOUT_MS });
}

/** Why docker cannot be used against that daemon, or undefined when it answers. */
export async function dockerUnavailable(dockerHost?: string): Promise<string | undefined> {
  const where = dockerHost ? ` at ${dockerHost}` : "";
  const probe = await docker(["version", "--format", "{{.Server.Version}}"], { dockerHost, timeoutMs: PROBE_TIMEOUT_MS });
  if (probe.code === 127) return "no docker engine: the docker CLI is not installed";
  if (probe.code !== 0) return `no docker engine${where}: "docker version" failed (start the test cluster, or set DOCKER_HOST to a running dockerd): ${tail(probe.stderr || probe.stdout)}`;
  return undefined;
}

async function buildImage(dockerHost: string | undefined): Promise<SkupperImage> {
  const unavailable = await dockerUnavailable(dockerHost);
  if (unavailable) return { skip: `${unavailable}; or set SKUPPER_TEST_IMAGE to an image the cluster has already` };
  const image = defaultImage();
  const args = [BUILD_SCRIPT, "--engine", "docker", "--no-compile", "--tag", image];
  const built = await run("bash", args, { env: dockerEnv(dockerHost), timeoutMs: BUILD_TIMEOUT_MS });
  if (built.code !== 0) throw new Error(`Building the image ${image} failed (exit ${built.code}); run "npm run image" to see why:\n${tail(built.stdout + built.stderr)}`);
  return { image };
}

function dockerEnv(dockerHost: string | undefined): Record<string, string> {
  return dockerHost ? { DOCKER_HOST: dockerHost } : {};
}

/**
 * Runs a command in its own process group, so that a timeout ends the whole of it (the build
 * script's docker client too) and the script's cleanup runs on SIGTERM.
 */
function run(file: string, args: string[], options: { env?: Record<string, string>; timeoutMs: number }): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { env: { ...process.env, ...options.env }, stdio: ["ignore", "pipe", "pipe"], detached: true });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const signalGroup = (signal: NodeJS.Signals) => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, signal);
      } catch {
        // The group has ended already.
      }
    };
    let kill: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      signalGroup("SIGTERM");
      kill = setTimeout(() => signalGroup("SIGKILL"), 5_000);
    }, options.timeoutMs);
    const finish = (code: number) => {
      clearTimeout(timer);
      clearTimeout(kill);
      resolve({ code, stdout, stderr: timedOut ? `${stderr}\n(killed after ${options.timeoutMs} ms)` : stderr });
    };
    child.on("error", (err: NodeJS.ErrnoException) => finish(err.code === "ENOENT" ? 127 : 126));
    child.on("close", (code) => finish(timedOut ? 124 : (code ?? 128)));
  });
}

function tail(output: string, lines = 15): string {
  return output.trim().split("\n").slice(-lines).join("\n");
}
