/** Processes, external tools and the skupper CLI, as the benchmark drives them. */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { promises as fs } from "node:fs";
import net from "node:net";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/** Ports freePort has returned. */
const handedOut = new Set<number>();

/**
 * A port that was free a moment ago on 127.0.0.1. The kernel may hand a just-closed port out
 * again at once: two calls in a row (a link port and a grant server port, an iperf3 server and a
 * listener) must still get two ports, so none is given twice in this process.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = net.createServer();
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as net.AddressInfo;
        server.close(() => resolve(port));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error("no port that was not handed out before, after 100 tries");
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const CLI = path.join(ROOT, "dist", "src", "cli", "main.js");

function run(file: string, args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { env: options.env ?? process.env, timeout: options.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout: String(stdout), stderr: String(stderr) }),
    );
  });
}

async function which(name: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? "").split(":").concat(["/usr/bin", "/usr/sbin", "/bin"])) {
    const candidate = path.join(dir, name);
    try {
      await fs.access(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // keep looking
    }
  }
  return undefined;
}

export interface Tools {
  stunnel?: string;
  iperf3?: string;
  notes: string[];
}

/** Finds stunnel and iperf3, installing the Debian packages when missing and allowed (root). */
export async function ensureTools(progress: (message: string) => void): Promise<Tools> {
  const find = async () => ({ stunnel: (await which("stunnel4")) ?? (await which("stunnel")), iperf3: await which("iperf3") });
  let found = await find();
  const missing = [...(found.stunnel ? [] : ["stunnel4"]), ...(found.iperf3 ? [] : ["iperf3"])];
  const notes: string[] = [];
  if (missing.length > 0 && process.getuid?.() === 0 && (await which("apt-get"))) {
    progress(`installing ${missing.join(", ")} from Debian`);
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    await run("apt-get", ["update", "-qq"], { env, timeoutMs: 300_000 });
    const installed = await run("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...missing], { env, timeoutMs: 300_000 });
    if (installed.code !== 0) notes.push(`apt-get install ${missing.join(" ")} failed: ${installed.stderr.trim().split("\n").pop()}`);
    found = await find();
  }
  if (!found.stunnel) notes.push("stunnel4 is not installed (apt-get install stunnel4): no stunnel column");
  if (!found.iperf3) notes.push("iperf3 is not installed (apt-get install iperf3): no throughput rows");
  return { ...(found.stunnel ? { stunnel: found.stunnel } : {}), ...(found.iperf3 ? { iperf3: found.iperf3 } : {}), notes };
}

/** iperf3 client for `seconds` with `streams` parallel streams; bits per second received. */
export async function iperf3(binary: string, port: number, seconds: number, streams: number): Promise<number> {
  // The server takes one test at a time and frees itself only once the previous test's
  // connections have closed at its end, which through a relay can be a little later.
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      return await iperf3Once(binary, port, seconds, streams);
    } catch (err) {
      if (!/server is busy/.test((err as Error).message) || Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

async function iperf3Once(binary: string, port: number, seconds: number, streams: number): Promise<number> {
  const result = await run(binary, ["-c", "127.0.0.1", "-p", String(port), "-t", String(seconds), "-P", String(streams), "-J"], {
    timeoutMs: (seconds + 30) * 1000,
  });
  let report: { end?: { sum_received?: { bits_per_second?: number } }; error?: string };
  try {
    report = JSON.parse(result.stdout);
  } catch {
    throw new Error(`iperf3 on port ${port} failed: ${result.stderr || result.stdout}`);
  }
  const bps = report.end?.sum_received?.bits_per_second;
  if (report.error || bps === undefined) throw new Error(`iperf3 on port ${port} failed: ${report.error ?? "no result"}`);
  return bps;
}

/**
 * Waits until something listens on `port`, by reading /proc/net/tcp rather than connecting:
 * iperf3 takes any connection for a test's control channel, so a probe would disturb it.
 */
export async function waitForListening(port: number, timeoutMs = 10_000): Promise<void> {
  const hex = port.toString(16).toUpperCase().padStart(4, "0");
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
      const table = await fs.readFile(file, "utf8").catch(() => "");
      if (table.split("\n").some((line) => line.trim().split(/\s+/)[1]?.endsWith(`:${hex}`) && line.trim().split(/\s+/)[3] === "0A")) return;
    }
    if (Date.now() > deadline) throw new Error(`nothing listens on port ${port} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Clock ticks per second of /proc's CPU times (USER_HZ): 100 on every Linux that runs Node. */
const USER_HZ = 100;

export interface ThreadCpu {
  tid: number;
  /** The thread's name as the kernel shows it (comm), e.g. "node", "libuv-worker". */
  name: string;
  seconds: number;
}

/** User plus system CPU seconds of one /proc stat line, and the name in it. */
function parseStat(text: string): { name: string; seconds: number } {
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  if (open < 0 || close < open) throw new Error(`unreadable /proc stat line: ${text.slice(0, 80)}`);
  // After the name: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime.
  const fields = text.slice(close + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  if (!Number.isFinite(ticks)) throw new Error(`no CPU times in /proc stat line: ${text.slice(0, 80)}`);
  return { name: text.slice(open + 1, close), seconds: ticks / USER_HZ };
}

/** CPU seconds a process has used so far, all its threads (ended ones too) together. */
export async function processCpuSeconds(pid: number): Promise<number> {
  return parseStat(await fs.readFile(`/proc/${pid}/stat`, "utf8")).seconds;
}

/** CPU seconds of each live thread of a process. */
export async function threadCpu(pid: number): Promise<ThreadCpu[]> {
  const tids = await fs.readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  const threads: ThreadCpu[] = [];
  for (const tid of tids) {
    const text = await fs.readFile(`/proc/${pid}/task/${tid}/stat`, "utf8").catch(() => undefined);
    if (text !== undefined) threads.push({ tid: Number(tid), ...parseStat(text) });
  }
  return threads;
}

/**
 * Measures the CPU that `pids` use while `work` runs: cores in use on average (CPU seconds ÷ wall
 * seconds), and per live thread, so a reader can see whether the work spread over threads.
 */
export async function measureCpu<T>(
  pids: number[],
  work: () => Promise<T>,
): Promise<{ result: T; cores: number; threads: Array<{ pid: number; name: string; cores: number }> }> {
  const cpuBefore = await Promise.all(pids.map(processCpuSeconds));
  const threadsBefore = await Promise.all(pids.map(threadCpu));
  const started = performance.now();
  const result = await work();
  const wall = (performance.now() - started) / 1000;
  const cpuAfter = await Promise.all(pids.map(processCpuSeconds));
  const threadsAfter = await Promise.all(pids.map(threadCpu));
  const cores = cpuAfter.reduce((sum, after, i) => sum + after - (cpuBefore[i] as number), 0) / wall;
  const threads = pids.flatMap((pid, i) => {
    const before = new Map((threadsBefore[i] as ThreadCpu[]).map((t) => [t.tid, t.seconds]));
    return (threadsAfter[i] as ThreadCpu[]).map((t) => ({ pid, name: t.name, cores: (t.seconds - (before.get(t.tid) ?? 0)) / wall }));
  });
  return { result, cores, threads };
}

export async function readRssKiB(pid: number): Promise<number> {
  const status = await fs.readFile(`/proc/${pid}/status`, "utf8");
  const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
  if (!match) throw new Error(`no VmRSS for process ${pid}`);
  return Number(match[1]);
}

export interface Started {
  child: ChildProcess;
  /** The next stdout line, parsed as JSON. */
  nextLine(timeoutMs: number): Promise<unknown>;
}

/** Children of the benchmark; every one is killed at the end. */
export class Processes {
  private readonly children = new Set<ChildProcess>();

  start(label: string, file: string, args: string[], options: { stdin?: boolean } = {}): Started {
    const child = spawn(file, args, { stdio: [options.stdin ? "pipe" : "ignore", "pipe", "pipe"] });
    this.children.add(child);
    let stderr = "";
    child.stderr?.on("data", (d) => (stderr = (stderr + d).slice(-4000)));
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    const queue: string[] = [];
    const waiting: Array<(line: string) => void> = [];
    lines.on("line", (line) => {
      const w = waiting.shift();
      if (w) w(line);
      else queue.push(line);
    });
    const exited = new Promise<never>((_, reject) =>
      child.once("exit", (code, signal) => {
        this.children.delete(child);
        reject(new Error(`${label} exited (${signal ?? code}) ${stderr.trim()}`));
      }),
    );
    exited.catch(() => undefined);
    return {
      child,
      nextLine: (timeoutMs) => {
        const line = queue.length > 0 ? Promise.resolve(queue.shift() as string) : new Promise<string>((resolve) => waiting.push(resolve));
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`${label}: no output within ${timeoutMs} ms`)), timeoutMs);
        });
        return Promise.race([line, exited, timeout])
          .then((text) => JSON.parse(text))
          .finally(() => clearTimeout(timer));
      },
    };
  }

  async startJson(label: string, file: string, args: string[]): Promise<unknown> {
    return this.start(label, file, args).nextLine(10_000);
  }

  /** Runs a load generator to completion and returns its JSON result. */
  async runJson(file: string, args: string[]): Promise<unknown> {
    const result = await run(file, args, { timeoutMs: 300_000 });
    if (result.code !== 0) throw new Error(`${path.basename(file)} ${args.join(" ")} failed: ${result.stderr.trim()}`);
    return JSON.parse(result.stdout.trim().split("\n").pop() as string);
  }

  freePort(): Promise<number> {
    return freePort();
  }

  killAll(): void {
    for (const child of this.children) child.kill("SIGKILL");
    this.children.clear();
  }
}

/** The skupper CLI against the benchmark's own SKUPPER_HOME. */
export class Cli {
  private readonly namespaces = new Set<string>();

  constructor(
    readonly home: string,
    private readonly profileDir?: string,
  ) {}

  async run(namespace: string, args: string[]): Promise<string> {
    this.namespaces.add(namespace);
    const env: NodeJS.ProcessEnv = { ...process.env, SKUPPER_HOME: this.home, SKUPPER_PLATFORM: "linux" };
    if (this.profileDir) env.SKUPPER_SITE_NODE_ARGS = `--cpu-prof --cpu-prof-dir=${this.profileDir}`;
    const result = await run(process.execPath, [CLI, "-n", namespace, ...args], { env });
    if (result.code !== 0) throw new Error(`skupper -n ${namespace} ${args.join(" ")} failed: ${result.stderr.trim() || result.stdout.trim()}`);
    return result.stdout;
  }

  async pid(namespace: string): Promise<number> {
    const text = await fs.readFile(path.join(this.home, "namespaces", namespace, "runtime", "site.pid"), "utf8");
    const pid = Number.parseInt(text, 10);
    if (!Number.isInteger(pid)) throw new Error(`no site process for namespace ${namespace}`);
    return pid;
  }

  /** Polls the site's network status file (not the CLI, whose start-up would dominate). */
  async waitForLinkUp(namespace: string, timeoutMs: number): Promise<void> {
    const file = path.join(this.home, "namespaces", namespace, "runtime", "network-status.json");
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const status = JSON.parse(await fs.readFile(file, "utf8")) as { router?: { outgoing?: Array<{ state: string }> } };
        if (status.router?.outgoing?.some((l) => l.state === "up")) return;
      } catch {
        // not written yet, or being replaced
      }
      if (Date.now() > deadline) throw new Error(`the link of ${namespace} did not come up within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  async stopAll(): Promise<void> {
    for (const namespace of this.namespaces) await this.run(namespace, ["system", "stop"]).catch(() => undefined);
  }
}
