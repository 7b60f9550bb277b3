/**
 * A Kubernetes cluster for e2e tests: the one KUBECONFIG names, or else (on Linux, as root) the
 * single-node test cluster of ../shared/tools/kube/cluster.sh, started for the test file and
 * stopped after it. Without either, tests skip with the reason.
 *
 *   const cluster = await useCluster();     // at the top level of a test file
 *   describe("...", { skip: "skip" in cluster ? cluster.skip : false }, () => { ... });
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { after as afterTests } from "node:test";
import { ROOT } from "./cli.js";

export const CLUSTER_SCRIPT = path.join(ROOT, "..", "shared", "tools", "kube", "cluster.sh");
/** The first start installs packages; later ones take about 15 s. */
const START_TIMEOUT_MS = 300_000;
const STOP_TIMEOUT_MS = 60_000;
const KUBECTL_TIMEOUT_MS = 60_000;

export type Cluster = { kubeconfig: string } | { skip: string };

let chosen: string | undefined;

export interface UseClusterOptions {
  /** Registers the stop of a cluster this helper started; default: node:test's `after` (call useCluster at a file's top level). */
  after?: (fn: () => Promise<void>) => void;
}

export async function useCluster(options: UseClusterOptions = {}): Promise<Cluster> {
  if (process.env.KUBECONFIG) {
    chosen = process.env.KUBECONFIG;
    return { kubeconfig: chosen };
  }
  if (process.platform !== "linux") return { skip: "no Kubernetes cluster: KUBECONFIG is not set and the test cluster runs on Linux only" };
  if (process.getuid?.() !== 0) return { skip: "no Kubernetes cluster: KUBECONFIG is not set and starting the test cluster needs root" };
  if (!existsSync(CLUSTER_SCRIPT)) return { skip: `no Kubernetes cluster: KUBECONFIG is not set and ${CLUSTER_SCRIPT} is missing` };

  const stop = () => run("bash", [CLUSTER_SCRIPT, "stop"], { timeoutMs: STOP_TIMEOUT_MS });
  const started = await run("bash", [CLUSTER_SCRIPT, "start"], { timeoutMs: START_TIMEOUT_MS });
  // Someone else's running cluster (another test run, a developer's) is used, and never stopped.
  const alreadyRunning = started.code !== 0 && /already started/.test(started.stdout + started.stderr);
  if (started.code !== 0 && !alreadyRunning) {
    await stop();
    return { skip: `the test cluster did not start (exit ${started.code}): ${tail(started.stdout + started.stderr)}` };
  }
  if (!alreadyRunning) {
    (options.after ?? afterTests)(async () => {
      const stopped = await stop();
      if (stopped.code !== 0) console.error(`stopping the test cluster failed: ${tail(stopped.stdout + stopped.stderr)}`);
    });
  }
  const env = await run("bash", [CLUSTER_SCRIPT, "env"], { timeoutMs: 30_000 });
  const kubeconfig = /KUBECONFIG=(\S+)/.exec(env.stdout)?.[1];
  if (!kubeconfig) return { skip: `the test cluster started but "cluster.sh env" named no KUBECONFIG: ${tail(env.stdout + env.stderr)}` };
  chosen = kubeconfig;
  return { kubeconfig };
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** kubectl on the cluster useCluster chose (or the given kubeconfig). */
export function kubectl(args: string[], options: { input?: string; kubeconfig?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  const kubeconfig = options.kubeconfig ?? chosen;
  if (!kubeconfig) throw new Error("kubectl: no cluster chosen; call useCluster() first");
  return run("kubectl", args, { env: { KUBECONFIG: kubeconfig }, input: options.input, timeoutMs: options.timeoutMs ?? KUBECTL_TIMEOUT_MS });
}

/** `kubectl apply -f -`; throws with kubectl's output if it fails. */
export async function applyManifest(yaml: string, options: { kubeconfig?: string } = {}): Promise<string> {
  const result = await kubectl(["apply", "-f", "-"], { ...options, input: yaml });
  if (result.code !== 0) throw new Error(`kubectl apply failed (exit ${result.code}): ${result.stderr || result.stdout}`);
  return result.stdout;
}

function run(file: string, args: string[], options: { env?: Record<string, string>; input?: string | undefined; timeoutMs: number }): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(
      file,
      args,
      { env: { ...process.env, ...options.env }, timeout: options.timeoutMs, killSignal: "SIGKILL", maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === "number" ? ((err as { code: number }).code) : 124) : 0;
        const timedOut = err && (err as { killed?: boolean }).killed ? `\n(killed after ${options.timeoutMs} ms)` : "";
        resolve({ code, stdout: String(stdout), stderr: String(stderr) + timedOut });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
    else child.stdin?.end();
  });
}

function tail(output: string, lines = 15): string {
  return output.trim().split("\n").slice(-lines).join("\n");
}

/**
 * For the message of a wait on garbage collection that timed out: the garbage collector's recent
 * warnings and errors in the test cluster's controller-manager log (when this machine has it),
 * so a failure in CI says whether the collector was stuck, and on what.
 */
export function garbageCollectorComplaints(lines = 12): string {
  const log = path.join(process.env.KUBE_TEST_DIR ?? "/var/tmp/skupper-test-kube", "run", "kube-controller-manager.log");
  let text: string;
  try {
    text = readFileSync(log, "utf8");
  } catch {
    return "(no controller-manager log on this machine)";
  }
  const complaints = text.split("\n").filter((line) => /^[EW]\d{4}/.test(line) && /garbage|graph builder/i.test(line));
  if (complaints.length === 0) return "(the garbage collector logged no warnings or errors)";
  return `the garbage collector's last complaints:\n${complaints.slice(-lines).map((line) => line.slice(0, 400)).join("\n")}`;
}
