/**
 * The benchmark's client and backend, each run as its own process so that neither competes with
 * the other inside one event loop:
 *
 *   node load.js echo                         echo backend; prints {"port":N}
 *   node load.js rr    PORT SECONDS           64-byte request/response on one connection
 *   node load.js conn  PORT SECONDS PARALLEL  connect, 1-byte echo, close, in PARALLEL loops
 *   node load.js idle  PORT COUNT             open COUNT echoed connections, hold them until stdin closes
 *
 * Every mode prints one JSON line with its result on stdout.
 */
import net from "node:net";

type Mode = "echo" | "rr" | "conn" | "idle";

function print(value: unknown): void {
  process.stdout.write(JSON.stringify(value) + "\n");
}

function echoBackend(): void {
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    socket.on("error", () => undefined);
    socket.pipe(socket);
  });
  server.listen({ port: 0, host: "127.0.0.1", backlog: 4096 }, () => print({ port: (server.address() as net.AddressInfo).port }));
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: "127.0.0.1", noDelay: true });
    socket.once("connect", () => {
      socket.removeListener("error", reject);
      resolve(socket);
    });
    socket.once("error", reject);
  });
}

/** Writes `message` and resolves once as many bytes have come back. */
function echo(socket: net.Socket, message: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    let left = message.length;
    const onData = (d: Buffer) => {
      left -= d.length;
      if (left <= 0) {
        socket.removeListener("data", onData);
        socket.removeListener("error", reject);
        resolve();
      }
    };
    socket.on("data", onData);
    socket.once("error", reject);
    socket.write(message);
  });
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

async function requestResponse(port: number, seconds: number): Promise<void> {
  const socket = await connect(port);
  const message = Buffer.alloc(64, 0x61);
  const samples: number[] = [];
  for (let i = 0; i < 200; i++) await echo(socket, message); // warm-up
  const started = process.hrtime.bigint();
  const deadline = started + BigInt(Math.round(seconds * 1e9));
  for (;;) {
    const t0 = process.hrtime.bigint();
    if (t0 >= deadline) break;
    await echo(socket, message);
    samples.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  socket.destroy();
  const sorted = Float64Array.from(samples).sort();
  print({ requests: samples.length, perSecond: samples.length / elapsed, p50Us: percentile(sorted, 50), p99Us: percentile(sorted, 99) });
}

async function newConnections(port: number, seconds: number, parallel: number): Promise<void> {
  const one = Buffer.from("x");
  let done = 0;
  let failed = 0;
  const deadline = Date.now() + seconds * 1000;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (Date.now() < deadline) {
        try {
          const socket = await connect(port);
          await echo(socket, one);
          await new Promise<void>((resolve) => {
            socket.once("close", () => resolve());
            socket.end();
          });
          done++;
        } catch {
          failed++;
        }
      }
    }),
  );
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  print({ connections: done, failed, perSecond: done / elapsed });
}

async function idle(port: number, count: number): Promise<void> {
  const sockets: net.Socket[] = [];
  const one = Buffer.from("x");
  const batch = 250;
  for (let i = 0; i < count; i += batch) {
    const opened = await Promise.all(
      Array.from({ length: Math.min(batch, count - i) }, async () => {
        const socket = await connect(port);
        await echo(socket, one);
        return socket;
      }),
    );
    sockets.push(...opened);
  }
  print({ open: sockets.length });
  process.stdin.resume();
  process.stdin.once("end", () => {
    for (const s of sockets) s.destroy();
    process.exit(0);
  });
}

async function main(): Promise<void> {
  const [mode, ...args] = process.argv.slice(2) as [Mode, ...string[]];
  const num = (i: number) => {
    const value = Number(args[i]);
    if (!Number.isFinite(value) || value <= 0) throw new Error(`argument ${i + 1} of "${mode}" must be a positive number`);
    return value;
  };
  switch (mode) {
    case "echo":
      return echoBackend();
    case "rr":
      return requestResponse(num(0), num(1));
    case "conn":
      return newConnections(num(0), num(1), num(2));
    case "idle":
      return idle(num(0), num(1));
    default:
      throw new Error(`unknown mode "${String(mode)}" (echo, rr, conn, idle)`);
  }
}

main().catch((err: Error) => {
  process.stderr.write(`load: ${err.message}\n`);
  process.exit(1);
});
