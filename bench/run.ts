/**
 * `npm run bench`: client → listener site → link → connector site → backend on loopback, each
 * part its own process, measured side by side with direct TCP and a stunnel mTLS pair.
 *
 *   npm run bench                    full run (about two minutes)
 *   npm run bench -- --smoke         a few seconds per figure; proves the benchmark works
 *   npm run bench -- --json          one JSON document on stdout instead of the table
 *   npm run bench -- --seconds 10    seconds per throughput / rate measurement
 *   npm run bench -- --idle 10000    connections held open for the memory figure
 *   npm run bench -- --profile DIR   write CPU profiles of both site processes to DIR
 *   npm run bench -- --targets skupper,stunnel   measure only these (direct, stunnel, skupper)
 */
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createCA, issueCertificate } from "../src/certs/index.js";
import { Cli, ensureTools, iperf3, measureCpu, Processes, readRssKiB, waitForListening, type Tools } from "./tools.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const LOAD = path.join(HERE, "load.js");

type Target = "direct" | "stunnel" | "skupper";
const TARGETS: Target[] = ["direct", "stunnel", "skupper"];

interface Options {
  smoke: boolean;
  json: boolean;
  seconds: number;
  idle: number;
  profile?: string;
  targets: Target[];
  /** Measure the metrics' cost: skupper with the observer port on and scraped, against off, alternately. */
  metrics: boolean;
}

function parseOptions(argv: string[]): Options {
  const options: Options = { smoke: false, json: false, seconds: 5, idle: 10_000, targets: [...TARGETS], metrics: true };
  let explicitSeconds = false;
  let explicitIdle = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    const positive = (v: string) => {
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0) throw new Error(`${arg} must be a positive number, not "${v}"`);
      return n;
    };
    if (arg === "--smoke") options.smoke = true;
    else if (arg === "--json") options.json = true;
    else if (arg === "--no-metrics") options.metrics = false;
    else if (arg === "--seconds") {
      options.seconds = positive(value());
      explicitSeconds = true;
    } else if (arg === "--idle") {
      options.idle = Math.floor(positive(value()));
      explicitIdle = true;
    } else if (arg === "--profile") options.profile = path.resolve(value());
    else if (arg === "--targets") {
      const list = value().split(",").map((t) => t.trim());
      const bad = list.find((t) => !(TARGETS as string[]).includes(t));
      if (bad !== undefined || list.length === 0) throw new Error(`--targets takes a comma-separated list of ${TARGETS.join(", ")}; "${bad}" is not one`);
      options.targets = list as Target[];
    } else if (arg === "-h" || arg === "--help") {
      process.stdout.write("usage: npm run bench -- [--smoke] [--json] [--seconds N] [--idle N] [--profile DIR] [--targets direct,stunnel,skupper] [--no-metrics]\n");
      process.exit(0);
    } else throw new Error(`unknown option "${arg}" (try --help)`);
  }
  if (options.smoke) {
    if (!explicitSeconds) options.seconds = 1;
    if (!explicitIdle) options.idle = 200;
  }
  return options;
}

interface Ports {
  echo: number;
  iperf?: number;
}

/** The processes that carry a target's traffic: its CPU is theirs. */
interface Tunnel {
  ports: Ports;
  /** Named as the report shows them: "listener site", "stunnel client", ... */
  processes: Array<{ label: string; pid: number }>;
}

/** CPU of a target's tunnel processes during one throughput test. */
interface TunnelCpu {
  /** CPU seconds ÷ wall seconds: how many cores the tunnel kept busy on average. */
  cores: number;
  /** Throughput ÷ cores: Gbit/s carried per core of tunnel CPU. */
  gbitPerCore: number;
  /** Threads that used at least 2 % of a core, busiest first. */
  threads: Array<{ process: string; name: string; cores: number }>;
}

interface Results {
  machine: { cpus: number; cpuModel: string; node: string; kernel: string };
  options: Options;
  notes: string[];
  linkReadyMs?: number;
  redeemCommandMs?: number;
  throughput1: Partial<Record<Target, number>>;
  throughput8: Partial<Record<Target, number>>;
  cpu1: Partial<Record<Target, TunnelCpu>>;
  cpu8: Partial<Record<Target, TunnelCpu>>;
  requestResponse: Partial<Record<Target, { perSecond: number; p50Us: number; p99Us: number }>>;
  connections: Partial<Record<Target, { perSecond: number; failed: number }>>;
  idleMemory?: { connections: number; listenerSiteKiB: number; connectorSiteKiB: number; perConnectionKiB: { listenerSite: number; connectorSite: number } };
  /** skupper throughput with metrics off and on (observer port scraped every second), rounds alternating off, on. */
  metrics?: { rounds: number; off: { throughput1: number[]; throughput8: number[] }; on: { throughput1: number[]; throughput8: number[] }; scrapes: number };
}

function log(options: Options, message: string): void {
  if (!options.json) process.stderr.write(`bench: ${message}\n`);
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const tools: Tools = await ensureTools((m) => log(options, m));
  const work = await fs.mkdtemp(path.join(os.tmpdir(), "skupper-bench-"));
  const procs = new Processes();
  const cli = new Cli(path.join(work, "home"), options.profile);
  const results: Results = {
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? "unknown", node: process.version, kernel: os.release() },
    options,
    notes: [...tools.notes],
    throughput1: {},
    throughput8: {},
    cpu1: {},
    cpu8: {},
    requestResponse: {},
    connections: {},
  };
  const cleanup = async () => {
    procs.killAll();
    await cli.stopAll();
    await fs.rm(work, { recursive: true, force: true });
  };
  process.once("SIGINT", () => void cleanup().then(() => process.exit(130)));
  try {
    log(options, "starting backends");
    const echoPort = (await procs.startJson("echo backend", process.execPath, [LOAD, "echo"])) as { port: number };
    const direct: Ports = { echo: echoPort.port };
    if (tools.iperf3) {
      direct.iperf = await procs.freePort();
      procs.start("iperf3 server", tools.iperf3, ["-s", "-p", String(direct.iperf), "-B", "127.0.0.1"]);
      await waitForListening(direct.iperf);
    }

    log(options, "creating two sites and linking them");
    const tunnels: Record<Target, Tunnel | undefined> = { direct: { ports: direct, processes: [] }, stunnel: undefined, skupper: undefined };
    const linkPort = await procs.freePort();
    const grantPort = await procs.freePort();
    await cli.run("back", ["site", "create", "back", "--enable-link-access", "--link-port", String(linkPort), "--grant-server-port", String(grantPort)]);
    await cli.run("front", ["site", "create", "front"]);
    const token = path.join(work, "token.yaml");
    await cli.run("back", ["token", "issue", token]);
    const redeemStart = performance.now();
    await cli.run("front", ["token", "redeem", token]);
    results.redeemCommandMs = Math.round(performance.now() - redeemStart);
    await cli.waitForLinkUp("front", 20_000);
    results.linkReadyMs = Math.round(performance.now() - redeemStart);

    const skupperPorts: Ports = { echo: await procs.freePort() };
    await cli.run("back", ["connector", "create", "echo", String(direct.echo), "--host", "127.0.0.1"]);
    await cli.run("front", ["listener", "create", "echo", String(skupperPorts.echo), "--wait", "ready"]);
    if (direct.iperf) {
      skupperPorts.iperf = await procs.freePort();
      await cli.run("back", ["connector", "create", "iperf", String(direct.iperf), "--host", "127.0.0.1"]);
      await cli.run("front", ["listener", "create", "iperf", String(skupperPorts.iperf), "--wait", "ready"]);
    }
    tunnels.skupper = {
      ports: skupperPorts,
      processes: [
        { label: "listener site", pid: await cli.pid("front") },
        { label: "connector site", pid: await cli.pid("back") },
      ],
    };

    log(options, `holding ${options.idle} idle connections through the sites (fresh processes, before any load)`);
    results.idleMemory = await idleMemory(cli, procs, skupperPorts.echo, options.idle);

    if (tools.stunnel && options.targets.includes("stunnel")) {
      log(options, "starting the stunnel pair (mutual TLS)");
      tunnels.stunnel = await startStunnelPair(tools.stunnel, work, procs, direct);
    }

    for (const target of options.targets) {
      const tunnel = tunnels[target];
      if (!tunnel) continue;
      const p = tunnel.ports;
      if (p.iperf && tools.iperf3) {
        for (const streams of [1, 8] as const) {
          log(options, `${target}: throughput, ${streams} stream${streams === 1 ? "" : "s"}`);
          const measured = await throughputWithCpu(tools.iperf3, p.iperf, options.seconds, streams, tunnel);
          (streams === 1 ? results.throughput1 : results.throughput8)[target] = measured.bitsPerSecond;
          if (measured.cpu) (streams === 1 ? results.cpu1 : results.cpu8)[target] = measured.cpu;
        }
      }
      log(options, `${target}: 64-byte request/response`);
      results.requestResponse[target] = (await procs.runJson(process.execPath, [LOAD, "rr", String(p.echo), String(options.seconds)])) as {
        perSecond: number;
        p50Us: number;
        p99Us: number;
      };
      log(options, `${target}: new connections`);
      results.connections[target] = (await procs.runJson(process.execPath, [LOAD, "conn", String(p.echo), String(options.seconds), "8"])) as {
        perSecond: number;
        failed: number;
      };
    }
    if (options.metrics && tools.iperf3 && tunnels.skupper?.ports.iperf && options.targets.includes("skupper")) {
      results.metrics = await metricsAB(options, cli, procs, tools.iperf3, tunnels.skupper.ports.iperf);
    }
  } finally {
    await cleanup();
  }
  if (options.json) process.stdout.write(JSON.stringify(results, null, 2) + "\n");
  else process.stdout.write(report(results));
}

/**
 * The metrics' cost, measured as the issue asks (same run, on against off): both sites' observer
 * ports on and scraped every second (far more often than Prometheus' usual 15–60 s), alternating
 * with the ports off, so drift of the machine hits both sides alike.
 */
async function metricsAB(options: Options, cli: Cli, procs: Processes, iperf: string, port: number): Promise<NonNullable<Results["metrics"]>> {
  const rounds = options.smoke ? 1 : 3;
  const result: NonNullable<Results["metrics"]> = { rounds, off: { throughput1: [], throughput8: [] }, on: { throughput1: [], throughput8: [] }, scrapes: 0 };
  const observer = { front: await procs.freePort(), back: await procs.freePort() };
  const setPort = async (on: boolean) => {
    for (const site of ["front", "back"] as const) await cli.run(site, ["site", "update", "--observer-port", on ? String(observer[site]) : ""]);
  };
  const scrape = async (site: "front" | "back"): Promise<boolean> => {
    try {
      const res = await fetch(`http://127.0.0.1:${observer[site]}/metrics`);
      await res.text();
      return res.status === 200;
    } catch {
      return false;
    }
  };
  for (let round = 0; round < rounds; round++) {
    for (const on of [false, true]) {
      log(options, `skupper, metrics ${on ? "on" : "off"} (round ${round + 1} of ${rounds}): throughput, 1 and 8 streams`);
      await setPort(on);
      let scraper: NodeJS.Timeout | undefined;
      if (on) {
        const deadline = Date.now() + 10_000;
        while (!((await scrape("front")) && (await scrape("back")))) {
          if (Date.now() > deadline) throw new Error("the observer ports did not serve metrics within 10 s");
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        scraper = setInterval(() => {
          void Promise.all([scrape("front"), scrape("back")]).then(([a, b]) => (result.scrapes += Number(a) + Number(b)));
        }, 1000);
      }
      const side = on ? result.on : result.off;
      side.throughput1.push(await iperf3(iperf, port, options.seconds, 1));
      side.throughput8.push(await iperf3(iperf, port, options.seconds, 8));
      if (scraper) clearInterval(scraper);
    }
  }
  await setPort(false);
  return result;
}

/** One iperf3 test, with the CPU the tunnel's processes used meanwhile (none for direct TCP). */
async function throughputWithCpu(
  iperf: string,
  port: number,
  seconds: number,
  streams: number,
  tunnel: Tunnel,
): Promise<{ bitsPerSecond: number; cpu?: TunnelCpu }> {
  if (tunnel.processes.length === 0) return { bitsPerSecond: await iperf3(iperf, port, seconds, streams) };
  const labels = new Map(tunnel.processes.map((p) => [p.pid, p.label]));
  const measured = await measureCpu([...labels.keys()], () => iperf3(iperf, port, seconds, streams));
  const bitsPerSecond = measured.result;
  return {
    bitsPerSecond,
    cpu: {
      cores: measured.cores,
      gbitPerCore: measured.cores > 0 ? bitsPerSecond / 1e9 / measured.cores : 0,
      threads: measured.threads
        .filter((t) => t.cores >= 0.02)
        .sort((a, b) => b.cores - a.cores)
        .map((t) => ({ process: labels.get(t.pid) as string, name: t.name, cores: t.cores })),
    },
  };
}

async function startStunnelPair(stunnel: string, work: string, procs: Processes, direct: Ports): Promise<Tunnel> {
  const dir = path.join(work, "stunnel");
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const ca = await createCA("bench CA");
  const server = await issueCertificate(ca, { commonName: "localhost", hosts: ["localhost", "127.0.0.1"], usage: "server" });
  const client = await issueCertificate(ca, { commonName: "bench client", usage: "client" });
  const file = (name: string, text: string) => fs.writeFile(path.join(dir, name), text, { mode: 0o600 }).then(() => path.join(dir, name));
  const caFile = await file("ca.pem", ca.cert);
  const [serverCert, serverKey] = [await file("server.pem", server.cert), await file("server.key", server.key)];
  const [clientCert, clientKey] = [await file("client.pem", client.cert), await file("client.key", client.key)];

  const services = Object.entries(direct).filter(([, port]) => port !== undefined) as Array<[keyof Ports, number]>;
  const front: Ports = { echo: 0 };
  let serverConf = "foreground = yes\npid =\ndebug = 3\n";
  let clientConf = serverConf;
  const waits: number[] = [];
  for (const [name, backendPort] of services) {
    const tlsPort = await procs.freePort();
    const plainPort = await procs.freePort();
    front[name] = plainPort;
    waits.push(tlsPort, plainPort);
    serverConf += `[${name}]\naccept = 127.0.0.1:${tlsPort}\nconnect = 127.0.0.1:${backendPort}\ncert = ${serverCert}\nkey = ${serverKey}\nCAfile = ${caFile}\nverifyChain = yes\nsslVersionMin = TLSv1.3\n`;
    clientConf += `[${name}]\nclient = yes\naccept = 127.0.0.1:${plainPort}\nconnect = 127.0.0.1:${tlsPort}\ncert = ${clientCert}\nkey = ${clientKey}\nCAfile = ${caFile}\nverifyChain = yes\ncheckHost = localhost\nsslVersionMin = TLSv1.3\n`;
  }
  const serverProcess = procs.start("stunnel server", stunnel, [await file("server.conf", serverConf)]);
  const clientProcess = procs.start("stunnel client", stunnel, [await file("client.conf", clientConf)]);
  for (const port of waits) await waitForListening(port);
  return {
    ports: front,
    processes: [
      { label: "stunnel client", pid: clientProcess.child.pid as number },
      { label: "stunnel server", pid: serverProcess.child.pid as number },
    ],
  };
}

async function idleMemory(cli: Cli, procs: Processes, port: number, count: number): Promise<NonNullable<Results["idleMemory"]>> {
  const pids = { listenerSite: await cli.pid("front"), connectorSite: await cli.pid("back") };
  const before = { listenerSite: await readRssKiB(pids.listenerSite), connectorSite: await readRssKiB(pids.connectorSite) };
  const idle = procs.start("idle connections", process.execPath, [LOAD, "idle", String(port), String(count)], { stdin: true });
  const line = (await idle.nextLine(180_000)) as { open?: number };
  if (line.open !== count) throw new Error(`only ${line.open} of ${count} idle connections opened`);
  await new Promise((resolve) => setTimeout(resolve, 2_000)); // let the sites' heaps settle
  const afterRss = { listenerSite: await readRssKiB(pids.listenerSite), connectorSite: await readRssKiB(pids.connectorSite) };
  const exited = new Promise((resolve) => idle.child.once("exit", resolve));
  idle.child.stdin?.end();
  await exited;
  const per = (k: keyof typeof before) => Math.round(((afterRss[k] - before[k]) / count) * 100) / 100;
  return {
    connections: count,
    listenerSiteKiB: afterRss.listenerSite,
    connectorSiteKiB: afterRss.connectorSite,
    perConnectionKiB: { listenerSite: per("listenerSite"), connectorSite: per("connectorSite") },
  };
}

// ---- report ----

function report(r: Results): string {
  const lines: string[] = [];
  const gbit = (bps?: number) => (bps === undefined ? "n/a" : `${(bps / 1e9).toFixed(2)} Gbit/s`);
  const ratio = (ours?: number, ref?: number) => (ours === undefined || !ref ? "n/a" : `${(ours / ref).toFixed(2)}×`);
  const rows: string[][] = [["measure", "direct TCP", "stunnel pair", "skupper-ts", "vs stunnel", "vs direct"]];
  const add = (label: string, get: (t: Target) => number | undefined, format: (v?: number) => string, lowerIsBetter = false) => {
    const [d, s, k] = TARGETS.map(get);
    const r2 = (a?: number, b?: number) => (lowerIsBetter ? ratio(b, a) : ratio(a, b));
    rows.push([label, format(d), format(s), format(k), r2(k, s), r2(k, d)]);
  };
  const num = (digits: number, unit = "") => (v?: number) => (v === undefined ? "n/a" : `${v.toFixed(digits)}${unit}`);
  add("throughput, 1 stream", (t) => r.throughput1[t], gbit);
  add("throughput, 8 streams", (t) => r.throughput8[t], gbit);
  const cores = num(2, " cores");
  add("  tunnel CPU, 1 stream", (t) => r.cpu1[t]?.cores, cores, true);
  add("  Gbit/s per core, 1 stream", (t) => r.cpu1[t]?.gbitPerCore, num(2));
  add("  tunnel CPU, 8 streams", (t) => r.cpu8[t]?.cores, cores, true);
  add("  Gbit/s per core, 8 streams", (t) => r.cpu8[t]?.gbitPerCore, num(2));
  add("64 B request/response", (t) => r.requestResponse[t]?.perSecond, num(0, "/s"));
  add("  latency p50", (t) => r.requestResponse[t]?.p50Us, num(0, " µs"), true);
  add("  latency p99", (t) => r.requestResponse[t]?.p99Us, num(0, " µs"), true);
  add("new connections", (t) => r.connections[t]?.perSecond, num(0, "/s"));
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  for (const row of rows) lines.push(row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  "));
  lines.push("");
  for (const target of ["stunnel", "skupper"] as const) {
    const threads = r.cpu8[target]?.threads;
    if (!threads || threads.length === 0) continue;
    const shown = threads.slice(0, 8).map((t) => `${t.process}/${t.name} ${t.cores.toFixed(2)}`);
    lines.push(`${target} threads, 8 streams (cores): ${shown.join(", ")}${threads.length > 8 ? `, and ${threads.length - 8} more` : ""}`);
  }
  if (r.idleMemory) {
    const m = r.idleMemory;
    lines.push(
      `memory per idle connection (${m.connections} open): listener site ${m.perConnectionKiB.listenerSite} KiB, connector site ${m.perConnectionKiB.connectorSite} KiB (RSS ${m.listenerSiteKiB} / ${m.connectorSiteKiB} KiB)`,
    );
  }
  if (r.metrics) {
    const m = r.metrics;
    const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
    const line = (label: string, off: number[], on: number[]) =>
      `  ${label}: off ${gbit(mean(off))}, on ${gbit(mean(on))}: on/off ${(mean(on) / mean(off)).toFixed(3)}× (rounds: ${off.map((v, i) => `${(v / 1e9).toFixed(2)}/${((on[i] ?? 0) / 1e9).toFixed(2)}`).join(", ")})`;
    lines.push(`metrics on vs off (skupper, both observer ports scraped every 1 s, ${m.scrapes} scrapes, ${m.rounds} alternating rounds):`);
    lines.push(line("throughput, 1 stream", m.off.throughput1, m.on.throughput1));
    lines.push(line("throughput, 8 streams", m.off.throughput8, m.on.throughput8));
  }
  if (r.linkReadyMs !== undefined) lines.push(`link Ready after redeem: ${r.linkReadyMs} ms (the redeem command itself: ${r.redeemCommandMs} ms)`);
  lines.push(`machine: ${r.machine.cpus} × ${r.machine.cpuModel}, Node ${r.machine.node}, Linux ${r.machine.kernel}; ${r.options.seconds} s per figure${r.options.smoke ? " (smoke run: figures are not meaningful)" : ""}`);
  for (const note of r.notes) lines.push(`note: ${note}`);
  return lines.join("\n") + "\n";
}

main().catch((err: Error) => {
  process.stderr.write(`bench: ${err.message}\n`);
  process.exit(1);
});
