/**
 * `npm test`: every test file, one at a time, with the heavy fixture they share started once.
 * Without KUBECONFIG, on Linux as root, the single-node test cluster of
 * ../shared/tools/kube/cluster.sh is started before the first file and stopped after the last,
 * and its KUBECONFIG and DOCKER_HOST are handed to every file (test/helpers/kube-cluster.ts then
 * uses it instead of starting its own). If it cannot start, the Kubernetes tests skip and say why.
 *
 *   node dist/scripts/run-tests.js [test files or directories; default dist/test/]
 */
import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const CLUSTER_SCRIPT = path.join(ROOT, "..", "shared", "tools", "kube", "cluster.sh");
const START_TIMEOUT_MS = 300_000;
const STOP_TIMEOUT_MS = 60_000;

interface Outcome {
  code: number;
  output: string;
}

function run(file: string, args: string[], timeoutMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : 124) : 0;
      resolve({ code, output: `${stdout}${stderr}` });
    });
  });
}

function tail(text: string, lines = 15): string {
  return text.trim().split("\n").slice(-lines).join("\n");
}

/** Starts the test cluster when this run may and must; returns its environment and how to stop it. */
async function startCluster(): Promise<{ env: Record<string, string>; stop: () => Promise<void> } | undefined> {
  if (process.env.KUBECONFIG) {
    console.log(`test run: Kubernetes tests use KUBECONFIG=${process.env.KUBECONFIG}`);
    return undefined;
  }
  if (process.platform !== "linux" || process.getuid?.() !== 0 || !existsSync(CLUSTER_SCRIPT)) return undefined;
  console.log("test run: starting the single-node Kubernetes test cluster (about 15 s; the first time on a machine also installs packages)");
  const started = Date.now();
  const stop = async () => {
    const stopped = await run("bash", [CLUSTER_SCRIPT, "stop"], STOP_TIMEOUT_MS);
    if (stopped.code !== 0) console.error(`test run: stopping the test cluster failed:\n${tail(stopped.output)}`);
  };
  let start = await run("bash", [CLUSTER_SCRIPT, "start"], START_TIMEOUT_MS);
  if (start.code !== 0 && !/already started/.test(start.output)) {
    // A slow start on a busy machine (the API server's wait times out) usually succeeds the second time.
    console.error(`test run: the test cluster did not start (exit ${start.code}); stopping it and trying once more:\n${tail(start.output, 5)}`);
    await stop();
    start = await run("bash", [CLUSTER_SCRIPT, "start"], START_TIMEOUT_MS);
  }
  const alreadyRunning = start.code !== 0 && /already started/.test(start.output);
  if (alreadyRunning) console.log("test run: the test cluster is already running; using it, and leaving it running");
  if (start.code !== 0 && !alreadyRunning) {
    console.error(`test run: the test cluster did not start (exit ${start.code}); Kubernetes tests will start their own or skip:\n${tail(start.output)}`);
    await stop();
    return undefined;
  }
  const printed = await run("bash", [CLUSTER_SCRIPT, "env"], 30_000);
  const env: Record<string, string> = {};
  for (const match of printed.output.matchAll(/(\w+)=(\S+)/g)) env[match[1] as string] = match[2] as string;
  if (!env.KUBECONFIG) {
    console.error(`test run: "cluster.sh env" named no KUBECONFIG:\n${tail(printed.output)}`);
    await stop();
    return undefined;
  }
  console.log(`test run: cluster ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return { env, stop: alreadyRunning ? async () => undefined : stop };
}

async function main(): Promise<number> {
  const targets = process.argv.slice(2);
  const cluster = await startCluster();
  let stopping: Promise<void> | undefined;
  const stopCluster = () => (stopping ??= cluster?.stop() ?? Promise.resolve());
  const child = spawn(process.execPath, ["--test", "--test-concurrency=1", ...(targets.length > 0 ? targets : [path.join(ROOT, "dist", "test")])], {
    cwd: ROOT,
    stdio: "inherit",
    env: { ...process.env, ...cluster?.env },
  });
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      child.kill(signal);
    });
  }
  const code = await new Promise<number>((resolve) => child.on("exit", (c, signal) => resolve(c ?? (signal ? 1 : 0))));
  await stopCluster();
  return code;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(err.stack ?? err.message);
    process.exit(1);
  },
);
