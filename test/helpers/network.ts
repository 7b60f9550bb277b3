/**
 * Several sites on loopback (one SKUPPER_HOME, a namespace and explicit ports per site), linked
 * with real tokens, plus the TCP clients and backends the service tests drive through them.
 */
import { createHash, randomFillSync } from "node:crypto";
import net from "node:net";
import { eventually, freePorts, ok, parseTable, type Sandbox } from "./cli.js";

export class LoopbackNetwork {
  private tokens = 0;

  constructor(
    readonly sandbox: Sandbox,
    readonly home: string,
  ) {}

  run(site: string, args: string[]): Promise<string> {
    return ok(["-n", site, ...args], { home: this.home });
  }

  async createSite(name: string, options: { linkAccess?: boolean } = {}): Promise<void> {
    const args = ["site", "create", name];
    if (options.linkAccess) {
      // Two distinct ports: two calls of freePort may return the same one.
      const [linkPort, grantPort] = await freePorts(2);
      args.push("--enable-link-access", "--link-port", String(linkPort), "--grant-server-port", String(grantPort));
    }
    await this.run(name, args);
  }

  /** Three sites in a line A—B—C: `a`, and `b` and `c` with link access; A and C redeem tokens of B. */
  async line(): Promise<void> {
    await this.createSite("a");
    await this.createSite("b", { linkAccess: true });
    await this.createSite("c", { linkAccess: true });
    await this.link("a", "b");
    await this.link("c", "b");
  }

  /** `from` redeems a token issued by `to`; resolves with the link's name once it is Ready. */
  async link(from: string, to: string, cost = 1): Promise<string> {
    const file = this.sandbox.file(`token-${to}-${++this.tokens}.yaml`);
    await this.run(to, ["token", "issue", file, "--cost", String(cost)]);
    await this.run(from, ["token", "redeem", file]);
    const row = await eventually(`the link ${from} → ${to} to be Ready`, async () =>
      (await this.linkRows(from)).find((r) => r["REMOTE SITE"] === to && r.DIRECTION === "outgoing" && r.STATUS === "Ready"),
    );
    return row.NAME as string;
  }

  /** `link status -o wide`: outgoing and incoming links, with the remote site and direction. */
  async linkRows(site: string): Promise<Array<Record<string, string>>> {
    return parseTable(await this.run(site, ["link", "status", "-o", "wide"]));
  }

  /** The path cost from `site` to `other` as `network status` shows it, or undefined. */
  async costTo(site: string, other: string): Promise<string | undefined> {
    const out = await this.run(site, ["network", "status"]);
    const table = out.slice(out.indexOf("SITE "), out.indexOf("ROUTING KEY") >= 0 ? out.indexOf("ROUTING KEY") : undefined);
    return parseTable(table).find((r) => r.SITE === other)?.COST;
  }
}

// ---- clients ----

export function connect(port: number, host = "127.0.0.1"): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host, allowHalfOpen: true });
    socket.once("connect", () => {
      socket.removeListener("error", reject);
      resolve(socket);
    });
    socket.once("error", reject);
  });
}

/** Sends `payload`, half-closes, and resolves with everything received until the peer's end. */
export function exchange(port: number, payload: string | Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true });
    const chunks: Buffer[] = [];
    socket.on("data", (d: Buffer) => chunks.push(d));
    socket.once("error", reject);
    socket.once("end", () => {
      socket.end();
      resolve(Buffer.concat(chunks));
    });
    socket.end(payload);
  });
}

/** How a socket ended: a clean end (FIN), a reset, or another error. */
export function outcome(socket: net.Socket): Promise<"end" | "reset" | string> {
  return new Promise((resolve) => {
    socket.once("error", (err: NodeJS.ErrnoException) => resolve(err.code === "ECONNRESET" ? "reset" : (err.code ?? err.message)));
    socket.once("end", () => resolve("end"));
    socket.resume();
  });
}

/** How a socket ended (as `outcome`), and how many bytes it had received until then. */
export function ending(socket: net.Socket): Promise<{ how: "end" | "reset" | string; received: number }> {
  let received = 0;
  socket.on("data", (d: Buffer) => (received += d.length));
  return outcome(socket).then((how) => ({ how, received }));
}

/** Writes `line` and resolves with the next chunk of at least `line.length` bytes. */
export function roundTrip(socket: net.Socket, line: string, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = "";
    const timer = setTimeout(() => done(new Error(`no reply to "${line}" within ${timeoutMs} ms`)), timeoutMs);
    const onData = (d: Buffer) => {
      got += d.toString();
      if (got.length >= line.length) done();
    };
    const onError = (err: Error) => done(err);
    const done = (err?: Error) => {
      clearTimeout(timer);
      socket.removeListener("data", onData);
      socket.removeListener("error", onError);
      if (err) reject(err);
      else resolve(got);
    };
    socket.on("data", onData);
    socket.once("error", onError);
    socket.write(line);
  });
}

// ---- backends ----

export interface Backend {
  port: number;
  connections: () => number;
  close: () => Promise<void>;
}

export async function serve(handler: (socket: net.Socket) => void): Promise<Backend> {
  let count = 0;
  const open = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    count++;
    open.add(socket);
    socket.once("close", () => open.delete(socket));
    socket.on("error", () => undefined);
    handler(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => count,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        for (const socket of open) socket.destroy();
      }),
  };
}

/** Answers every connection with `name` and then echoes. */
export function identityBackend(name: string): Promise<Backend> {
  return serve((socket) => {
    socket.write(name);
    socket.pipe(socket);
  });
}

export interface Transfer {
  sentHash: string;
  receivedHash: string;
  received: number;
}

/**
 * Streams `bytes` random bytes out of `socket` while hashing everything that comes in,
 * respecting backpressure; resolves when both directions are finished.
 */
export function transfer(socket: net.Socket, bytes: number): Promise<Transfer> {
  const sent = createHash("sha256");
  const got = createHash("sha256");
  let received = 0;
  const incoming = new Promise<void>((resolve, reject) => {
    socket.on("data", (d: Buffer) => {
      received += d.length;
      got.update(d);
    });
    socket.once("end", resolve);
    socket.once("error", reject);
  });
  const outgoing = new Promise<void>((resolve, reject) => {
    let left = bytes;
    const pump = () => {
      while (left > 0) {
        const chunk = randomFillSync(Buffer.allocUnsafe(Math.min(left, 256 * 1024)));
        left -= chunk.length;
        sent.update(chunk);
        if (!socket.write(chunk)) {
          socket.once("drain", pump);
          return;
        }
      }
      socket.end(resolve);
    };
    socket.once("error", reject);
    pump();
  });
  return Promise.all([incoming, outgoing]).then(() => ({ sentHash: sent.digest("hex"), receivedHash: got.digest("hex"), received }));
}
