/**
 * Running the real `skupper` CLI (and through it, real site processes) from tests, each test
 * file with its own SKUPPER_HOME(s); cleanup stops every site process a test started.
 */
import { execFile } from "node:child_process";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "../../bench/tools.js";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
export const CLI = path.join(ROOT, "dist", "src", "cli", "main.js");

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  home: string;
  /** Run inside this network namespace (`ip netns exec`). */
  netns?: string;
  env?: Record<string, string>;
  input?: string;
  timeoutMs?: number;
  cwd?: string;
}

export function skupper(args: string[], options: RunOptions): Promise<CliResult> {
  const env = { ...process.env, SKUPPER_HOME: options.home, SKUPPER_PLATFORM: "", ...options.env };
  delete (env as Record<string, string | undefined>).SKUPPER_NAMESPACE;
  const [file, argv] = options.netns
    ? ["ip", ["netns", "exec", options.netns, process.execPath, CLI, ...args]]
    : [process.execPath, [CLI, ...args]];
  return new Promise((resolve) => {
    const child = execFile(
      file,
      argv,
      { env, timeout: options.timeoutMs ?? 120_000, cwd: options.cwd ?? ROOT, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
    else child.stdin?.end();
  });
}

/** Runs the CLI and fails with its output unless it exits 0. */
export async function ok(args: string[], options: RunOptions): Promise<string> {
  const result = await skupper(args, options);
  if (result.code !== 0) {
    throw new Error(`skupper ${args.join(" ")} exited ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
  }
  return result.stdout;
}

/** Polls until `check` returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function eventually<T>(
  description: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 20_000,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}${last ? `: ${(last as Error).message}` : ""}`);
    }
    await delay(intervalMs);
  }
}

/**
 * For things that must *stay* true (a revoked link stays down): checks `check` again and again
 * for `windowMs` and fails the first time it does not hold. A condition that must *become* true
 * is awaited with `eventually` instead. Resolves with the number of checks made (at least 2).
 */
export async function holdsFor(
  description: string,
  check: () => Promise<boolean | string> | boolean | string,
  windowMs: number,
  intervalMs = 200,
): Promise<number> {
  const end = Date.now() + windowMs;
  let checks = 0;
  for (;;) {
    const result = await check();
    checks++;
    if (result !== true) throw new Error(`${description} stopped holding after ${checks} check(s)${typeof result === "string" ? `: ${result}` : ""}`);
    if (Date.now() >= end && checks >= 2) return checks;
    await delay(intervalMs);
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A port that was free a moment ago on 127.0.0.1, never the same one twice in a process (bench/tools.ts). */
export { freePort };

/** `count` distinct ports that were free a moment ago on 127.0.0.1. */
export async function freePorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  for (let i = 0; i < count; i++) ports.push(await freePort());
  return ports;
}

/** A scratch SKUPPER_HOME per test file; `cleanup()` kills every site process under it. */
export class Sandbox {
  readonly root: string;
  private readonly homes = new Set<string>();

  private constructor(root: string) {
    this.root = root;
  }

  static async create(name: string): Promise<Sandbox> {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), `skupper-test-${name}-`));
    return new Sandbox(root);
  }

  home(name = "home"): string {
    const home = path.join(this.root, name);
    this.homes.add(home);
    return home;
  }

  file(name: string): string {
    return path.join(this.root, name);
  }

  async cleanup(): Promise<void> {
    for (const home of this.homes) {
      for (const pid of await sitePids(home)) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    }
    if (!process.env.SKUPPER_KEEP_TEST_FILES) await fs.rm(this.root, { recursive: true, force: true });
  }
}

export async function sitePids(home: string): Promise<number[]> {
  const pids: number[] = [];
  let namespaces: string[] = [];
  try {
    namespaces = await fs.readdir(path.join(home, "namespaces"));
  } catch {
    return pids;
  }
  for (const ns of namespaces) {
    const pid = await sitePid(home, ns);
    if (pid !== undefined) pids.push(pid);
  }
  return pids;
}

export async function sitePid(home: string, namespace: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt(await fs.readFile(path.join(home, "namespaces", namespace, "runtime", "site.pid"), "utf8"), 10);
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

/** Parses a table printed by the CLI into rows keyed by header. */
export function parseTable(text: string): Array<Record<string, string>> {
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  const header = lines[0];
  if (!header) return [];
  const starts: Array<[string, number]> = [];
  const re = /\S+(?: \S+)*/g;
  let match: RegExpExecArray | null;
  while ((match = re.exec(header))) starts.push([match[0], match.index]);
  return lines.slice(1).map((line) => {
    const row: Record<string, string> = {};
    starts.forEach(([name, start], i) => {
      const end = i + 1 < starts.length ? (starts[i + 1] as [string, number])[1] : undefined;
      row[name] = line.slice(start, end).trim();
    });
    return row;
  });
}
