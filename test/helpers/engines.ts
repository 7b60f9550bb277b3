/**
 * A container engine of a test file's own, stopped after it, leaving nothing behind:
 *
 * - docker: a dockerd with its own data root, exec root, pid file and socket, no bridge and no
 *   iptables rules (the sites use host networking), so another dockerd on this host (the test
 *   cluster's) is never touched;
 * - podman: `podman system service --time=0` on a socket of its own (rootful; needs the
 *   settings of /etc/containers/containers.conf described in docs/containers.md).
 *
 * The project's image is built once with podman (scripts/build-image.sh builds nothing when an
 * image of the same content exists) and loaded into our dockerd with `podman save | docker load`.
 *
 *   const engine = await startEngine("docker");
 *   describe("...", { skip: "skip" in engine ? engine.skip : false }, ...)
 *   after(() => engine.stop())
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, promises as fs, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { EngineClient } from "../../src/platform/containers/index.js";
import { ROOT } from "./cli.js";

export type EngineName = "podman" | "docker";

export interface RunningEngine {
  engine: EngineName;
  socket: string;
  /** `unix://<socket>`, for CONTAINER_ENDPOINT. */
  endpoint: string;
  image: string;
  client: EngineClient;
  /** Runs the engine's CLI against this engine. */
  cli(args: string[], timeoutMs?: number): Promise<RunResult>;
  /** Removes every container it made, then stops the engine and removes its files. */
  stop(): Promise<void>;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

const START_TIMEOUT_MS = 30_000;
const BUILD_TIMEOUT_MS = 300_000;
const packageVersion = (JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as { version: string }).version;
export const TEST_IMAGE = `localhost/skupper-ts:${packageVersion}`;

/** Starts an engine for this test file, or says why it cannot run here. */
export async function startEngine(engine: EngineName): Promise<RunningEngine | { skip: string }> {
  if (process.getuid?.() !== 0) return { skip: `the ${engine} tests run a rootful engine of their own and need root` };
  const missing = engine === "docker" ? ["dockerd", "docker", "podman"].filter((c) => !onPath(c)) : ["podman"].filter((c) => !onPath(c));
  if (missing.length > 0) return { skip: `${missing.join(", ")} not installed (apt-get install podman runc catatonit docker.io)` };
  if (engine === "podman") {
    const problem = podmanConfigProblem();
    if (problem) return { skip: problem };
  }
  const built = await buildImage();
  if ("skip" in built) return built;
  return engine === "docker" ? startDockerd() : startPodmanService();
}

function onPath(command: string): boolean {
  return (process.env.PATH ?? "").split(":").some((dir) => dir && existsSync(path.join(dir, command)));
}

/** Podman will not run a container on our VMs without these settings (see docs/containers.md). */
function podmanConfigProblem(): string | undefined {
  let text = "";
  try {
    text = readFileSync("/etc/containers/containers.conf", "utf8");
  } catch {
    // absent
  }
  const needed = ["default_ulimits", 'runtime = "runc"', 'cgroup_manager = "cgroupfs"'];
  const absent = needed.filter((n) => !text.includes(n));
  if (absent.length > 0) return `podman is not configured for this machine: /etc/containers/containers.conf lacks ${absent.join(", ")} (see docs/containers.md)`;
  if (!existsSync("/usr/libexec/podman/catatonit")) return "podman's init (catatonit) is not installed: apt-get install catatonit";
  return undefined;
}

let imageBuild: Promise<{ ok: true } | { skip: string }> | undefined;

function buildImage(): Promise<{ ok: true } | { skip: string }> {
  imageBuild ??= (async () => {
    if (!onPath("podman")) return { skip: "podman is needed to build the image (apt-get install podman runc)" };
    const built = await run("bash", [path.join(ROOT, "scripts", "build-image.sh"), "--engine", "podman", "--no-compile", "--tag", TEST_IMAGE], {
      timeoutMs: BUILD_TIMEOUT_MS,
    });
    if (built.code !== 0) throw new Error(`building ${TEST_IMAGE} with podman failed:\n${(built.stdout + built.stderr).trim().split("\n").slice(-15).join("\n")}`);
    return { ok: true as const };
  })();
  return imageBuild;
}

async function startDockerd(): Promise<RunningEngine | { skip: string }> {
  const dir = await fs.mkdtemp(path.join("/var/tmp", "skupper-dockerd-"));
  // The exec root holds sockets: short, under /tmp.
  const exec = await fs.mkdtemp(path.join(os.tmpdir(), "skd-"));
  const socket = path.join(exec, "docker.sock");
  const child = spawn(
    "dockerd",
    ["--data-root", path.join(dir, "data"), "--exec-root", path.join(exec, "x"), "--pidfile", path.join(exec, "dockerd.pid"), "-H", `unix://${socket}`, "--bridge=none", "--iptables=false", "--ip-masq=false"],
    { stdio: ["ignore", "ignore", (await fs.open(path.join(dir, "dockerd.log"), "a")).fd], detached: true },
  );
  const removeFiles = async () => {
    await unmountUnder(exec);
    await unmountUnder(dir);
    await fs.rm(dir, { recursive: true, force: true }).catch(() => undefined);
    await fs.rm(exec, { recursive: true, force: true }).catch(() => undefined);
  };
  const ready = await untilAnswers(socket, "docker", child);
  if (ready !== true) {
    await stopChild(child);
    const log = await fs.readFile(path.join(dir, "dockerd.log"), "utf8").catch(() => "");
    await removeFiles();
    return { skip: `our own dockerd did not start: ${ready}\n${log.trim().split("\n").slice(-5).join("\n")}` };
  }
  const cli = (args: string[], timeoutMs = 60_000) => run("docker", args, { env: { DOCKER_HOST: `unix://${socket}` }, timeoutMs });
  // podman save | docker load: the image podman built, into our dockerd.
  const load = await run("bash", ["-c", `set -o pipefail; podman save ${TEST_IMAGE} | docker load`], { env: { DOCKER_HOST: `unix://${socket}` }, timeoutMs: 180_000 });
  if (load.code !== 0) {
    await stopChild(child);
    await removeFiles();
    throw new Error(`podman save | docker load failed: ${load.stderr.trim()}`);
  }
  return runningEngine("docker", socket, cli, async () => {
    await stopChild(child);
    await removeFiles();
  });
}

async function startPodmanService(): Promise<RunningEngine | { skip: string }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "skp-"));
  const socket = path.join(dir, "podman.sock");
  const child = spawn("podman", ["system", "service", "--time=0", `unix://${socket}`], { stdio: ["ignore", "ignore", "pipe"], detached: true });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const ready = await untilAnswers(socket, "podman", child);
  if (ready !== true) {
    await stopChild(child);
    await fs.rm(dir, { recursive: true, force: true });
    return { skip: `podman system service did not start: ${ready} ${stderr.trim()}` };
  }
  const cli = (args: string[], timeoutMs = 60_000) => run("podman", ["--url", `unix://${socket}`, ...args], { timeoutMs });
  return runningEngine("podman", socket, cli, async () => {
    await stopChild(child);
    await fs.rm(dir, { recursive: true, force: true });
  });
}

/** The engine a test file uses; `stop()` removes the containers the tests made, then `release()` ends the engine. */
function runningEngine(engine: EngineName, socket: string, cli: RunningEngine["cli"], release: () => Promise<void>): RunningEngine {
  const client = new EngineClient({ engine, socketPath: socket, source: "CONTAINER_ENDPOINT" });
  return {
    engine,
    socket,
    endpoint: `unix://${socket}`,
    image: TEST_IMAGE,
    client,
    cli,
    async stop() {
      await removeOurContainers(client).catch(() => undefined);
      await release();
    },
  };
}

/**
 * Removes the containers our tests made (label application=skupper-ts, and a namespace root
 * under this machine's temp directory); nothing else.
 */
async function removeOurContainers(client: EngineClient): Promise<void> {
  for (const container of await client.listContainers({ application: "skupper-ts" })) {
    if (container.labels["skupper.io/namespace-root"]?.startsWith(os.tmpdir())) await client.removeContainer(container.name);
  }
}

/** dockerd leaves its network namespace file bind-mounted under its exec root: unmount what is under `dir`. */
async function unmountUnder(dir: string): Promise<void> {
  const mounts = (await fs.readFile("/proc/self/mounts", "utf8").catch(() => ""))
    .split("\n")
    .map((line) => line.split(" ")[1] ?? "")
    .filter((point) => point.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const point of mounts) await run("umount", ["-l", point], { timeoutMs: 10_000 });
}

async function untilAnswers(socket: string, engine: EngineName, child: ChildProcess): Promise<true | string> {
  const client = new EngineClient({ engine, socketPath: socket, source: "CONTAINER_ENDPOINT" }, 2_000);
  const deadline = Date.now() + START_TIMEOUT_MS;
  let last = "";
  while (Date.now() < deadline) {
    if (child.exitCode !== null) return `it exited with code ${child.exitCode}`;
    try {
      await client.ping();
      return true;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return `no answer within ${START_TIMEOUT_MS / 1000} s (${last})`;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  await exited;
  clearTimeout(timer);
}

function run(file: string, args: string[], options: { env?: Record<string, string>; timeoutMs: number }): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { env: { ...process.env, ...options.env }, stdio: ["ignore", "pipe", "pipe"], detached: true });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
      } catch {
        // gone
      }
    }, options.timeoutMs);
    child.on("error", () => {
      clearTimeout(timer);
      resolve({ code: 127, stdout, stderr });
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 128, stdout, stderr });
    });
  });
}
