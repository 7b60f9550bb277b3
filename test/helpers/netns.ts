/**
 * Two "hosts" as Linux network namespaces joined by a veth pair, each with its own address.
 * The second can be firewalled: it drops every inbound new TCP connection except on loopback,
 * so anything linking it to the first must be dialled from it.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";

function run(file: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 20_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout: String(stdout), stderr: String(stderr) }),
    );
  });
}

async function must(file: string, args: string[]): Promise<string> {
  const result = await run(file, args);
  if (result.code !== 0) throw new Error(`${file} ${args.join(" ")} failed: ${result.stderr || result.stdout}`);
  return result.stdout;
}

/** Undefined when namespaces can be made here; otherwise the reason they cannot. */
export async function netnsUnavailable(): Promise<string | undefined> {
  if (process.platform !== "linux") return "network namespaces need Linux";
  if (process.getuid?.() !== 0) return "network namespaces need root";
  const probe = `skprobe${process.pid}`;
  const added = await run("ip", ["netns", "add", probe]);
  if (added.code !== 0) return `cannot create network namespaces (${(added.stderr || "ip not found").trim()}); install iproute2 and run as root`;
  const iptables = await run("ip", ["netns", "exec", probe, "iptables", "-S"]);
  await run("ip", ["netns", "del", probe]);
  if (iptables.code !== 0) return `iptables does not work in a network namespace (${iptables.stderr.trim() || "not installed"}); install iptables`;
  return undefined;
}

export class HostPair {
  readonly a: string;
  readonly b: string;
  readonly addressA: string;
  readonly addressB: string;

  private constructor(prefix: string, subnet: number) {
    this.a = `${prefix}a`;
    this.b = `${prefix}b`;
    this.addressA = `10.251.${subnet}.1`;
    this.addressB = `10.251.${subnet}.2`;
  }

  static async create(options: { firewallB: boolean }): Promise<HostPair> {
    const id = process.pid % 10000;
    const pair = new HostPair(`sk${id}`, (process.pid % 250) + 1);
    await pair.destroy();
    const vethA = `v${id}a`;
    const vethB = `v${id}b`;
    await must("ip", ["netns", "add", pair.a]);
    await must("ip", ["netns", "add", pair.b]);
    await must("ip", ["link", "add", vethA, "type", "veth", "peer", "name", vethB]);
    await must("ip", ["link", "set", vethA, "netns", pair.a]);
    await must("ip", ["link", "set", vethB, "netns", pair.b]);
    await must("ip", ["-n", pair.a, "addr", "add", `${pair.addressA}/24`, "dev", vethA]);
    await must("ip", ["-n", pair.b, "addr", "add", `${pair.addressB}/24`, "dev", vethB]);
    for (const [ns, dev] of [[pair.a, vethA], [pair.b, vethB]] as const) {
      await must("ip", ["-n", ns, "link", "set", dev, "up"]);
      await must("ip", ["-n", ns, "link", "set", "lo", "up"]);
    }
    if (options.firewallB) {
      await must("ip", ["netns", "exec", pair.b, "iptables", "-A", "INPUT", "-i", "lo", "-j", "ACCEPT"]);
      await must("ip", ["netns", "exec", pair.b, "iptables", "-A", "INPUT", "-p", "tcp", "--syn", "-j", "DROP"]);
    }
    return pair;
  }

  async destroy(): Promise<void> {
    await run("ip", ["netns", "del", this.a]);
    await run("ip", ["netns", "del", this.b]);
  }
}

/** Runs a Node.js script inside a namespace; resolves with the child once it printed `ready`. */
export function nodeIn(netns: string, script: string, args: string[] = []): Promise<{ child: ChildProcess; output: () => string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("ip", ["netns", "exec", netns, process.execPath, "--input-type=module", "-e", script, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let ready = false;
    child.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      if (!ready && out.includes("ready")) {
        ready = true;
        resolve({ child, output: () => out });
      }
    });
    child.stderr?.on("data", (chunk: Buffer) => (out += chunk.toString()));
    child.once("exit", (code) => {
      if (!ready) reject(new Error(`script in ${netns} exited ${code} before it was ready: ${out}`));
    });
  });
}

/** Runs a Node.js script inside a namespace to completion; resolves with its stdout. */
export function runNodeIn(netns: string, script: string, args: string[] = [], timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      "ip",
      ["netns", "exec", netns, process.execPath, "--input-type=module", "-e", script, ...args],
      { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stdout}\n${stderr}`)) : resolve(String(stdout))),
    );
  });
}

/** A TCP echo server script (prints "ready" once listening). */
export const ECHO_SERVER = `
import net from "node:net";
const [host, port] = process.argv.slice(1);
net.createServer({ allowHalfOpen: true }, (s) => { s.on("error", () => {}); s.pipe(s); })
  .listen(Number(port), host, () => console.log("ready"));
`;

/** Sends a message to host:port, half-closes, prints what came back (exit 1 on error). */
export const ECHO_CLIENT = `
import net from "node:net";
const [host, port, message] = process.argv.slice(1);
const s = net.connect({ host, port: Number(port), allowHalfOpen: true });
let got = "";
s.setTimeout(10000, () => { console.error("timeout"); process.exit(1); });
s.on("connect", () => s.end(message));
s.on("data", (d) => (got += d));
s.on("end", () => { process.stdout.write(got); process.exit(0); });
s.on("error", (e) => { console.error(e.code || e.message); process.exit(1); });
`;

/** Tries to open a TCP connection; prints "connected" or the error code. */
export const TCP_PROBE = `
import net from "node:net";
const [host, port, timeout] = process.argv.slice(1);
const s = net.connect({ host, port: Number(port) });
s.setTimeout(Number(timeout), () => { console.log("timeout"); process.exit(0); });
s.on("connect", () => { console.log("connected"); process.exit(0); });
s.on("error", (e) => { console.log(e.code); process.exit(0); });
`;
