/**
 * The TCP adaptor's bridge (src/router/bridge.ts): real TCP sockets on 127.0.0.1 at both ends of
 * a stream on a memory link, wired the way the router wires them — a listener-side bridge on
 * the client's socket (paused until ACCEPT) and a connector-side bridge on a socket to the
 * backend. Covers byte integrity, half-close in each direction, resets becoming RSTs,
 * slow-reader isolation with real sockets, and link backpressure.
 */
import assert from "node:assert/strict";
import { createHash, randomFillSync } from "node:crypto";
import net from "node:net";
import { afterEach, describe, test } from "node:test";
import { setLogLevel } from "../../src/common/log.js";
import { SocketBridge, SOCKET_HIGH_WATER_MARK, type BridgeOwner } from "../../src/router/bridge.js";
import { FrameType, MAX_STREAM_WINDOW, ResetCode, STREAM_WINDOW } from "../../src/router/frames.js";
import type { LinkSession } from "../../src/router/session.js";
import type { OpenRequest } from "../../src/router/stream.js";
import { forgetSockets, request, sessionPair, settle, until, type SessionPair } from "../helpers/memory-link.js";
import { outcome, serve, type Backend } from "../helpers/network.js";

setLogLevel("error");

const MiB = 1024 * 1024;

class Owner implements BridgeOwner {
  readonly closed: SocketBridge[] = [];
  bridgeClosed(bridge: SocketBridge): void {
    this.closed.push(bridge);
  }
}

/**
 * A listener (A) and backends (B) joined by one memory link. `backends[key]` is where B connects
 * for an OPEN with that key; B accepts once connected unless `holdAccept` is set.
 */
class Harness {
  pair!: SessionPair;
  readonly owner = new Owner();
  readonly listenerBridges: SocketBridge[] = [];
  readonly connectorBridges: SocketBridge[] = [];
  readonly backends = new Map<string, Backend>();
  holdAccept = false;
  private readonly held: Array<() => void> = [];
  private listener: net.Server | undefined;
  private readonly clients = new Set<net.Socket>();
  private nextKey = "";

  async start(options: { chunkSize?: number } = {}): Promise<this> {
    this.pair = await sessionPair({ ...options, onOpenB: (session, id, req) => this.atConnector(session, id, req) });
    return this;
  }

  /** What router.acceptAtConnector does: connect, then ACCEPT and start the bridge. */
  private atConnector(session: LinkSession, id: number, req: OpenRequest): void {
    const backend = this.backends.get(req.key);
    assert.ok(backend, `no backend for ${req.key}`);
    const socket = net.connect({ host: "127.0.0.1", port: backend.port, allowHalfOpen: true, noDelay: true, highWaterMark: SOCKET_HIGH_WATER_MARK } as net.NetConnectOpts);
    const bridge = new SocketBridge(socket, this.owner, { group: new Set(), role: "listener" });
    this.connectorBridges.push(bridge);
    session.attach(id, bridge);
    socket.once("connect", () => {
      const go = () => {
        bridge.watch();
        bridge.sendAccept();
        bridge.start();
      };
      if (this.holdAccept) this.held.push(go);
      else go();
    });
  }

  releaseAccepts(): void {
    for (const go of this.held.splice(0)) go();
  }

  /** Connects a client to the listener; its connection is bridged to the backend of `key`. */
  async client(key: string): Promise<net.Socket> {
    if (!this.listener) {
      const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true, highWaterMark: SOCKET_HIGH_WATER_MARK } as net.ServerOpts, (socket) => {
        // What router.handleClient does.
        const bridge = new SocketBridge(socket, this.owner, { group: new Set(), role: "listener" });
        this.listenerBridges.push(bridge);
        bridge.watch();
        this.pair.a.openStream(bridge, request(this.nextKey));
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
      this.listener = server;
    }
    this.nextKey = key;
    const port = (this.listener.address() as net.AddressInfo).port;
    const before = this.listenerBridges.length;
    const socket = net.connect({ host: "127.0.0.1", port, allowHalfOpen: true });
    this.clients.add(socket);
    socket.on("error", () => undefined);
    await until("the client to be bridged", () => this.listenerBridges.length === before + 1);
    return socket;
  }

  async stop(): Promise<void> {
    for (const c of this.clients) c.destroy();
    this.listener?.close();
    this.pair?.close();
    await Promise.all([...this.backends.values()].map((b) => b.close()));
  }
}

let harness: Harness | undefined;
afterEach(async () => {
  await harness?.stop();
  harness = undefined;
  forgetSockets();
});

async function setup(backends: Record<string, (socket: net.Socket) => void>, options: { chunkSize?: number } = {}): Promise<Harness> {
  const h = new Harness();
  harness = h;
  for (const [key, handler] of Object.entries(backends)) h.backends.set(key, await serve(handler));
  return h.start(options);
}

/** Collects what `socket` receives until it ends or fails. */
function collect(socket: net.Socket): { text: () => string; bytes: () => number; ended: Promise<"end" | "reset" | string> } {
  const chunks: Buffer[] = [];
  let bytes = 0;
  socket.on("data", (d: Buffer) => {
    chunks.push(d);
    bytes += d.length;
  });
  const ended = new Promise<"end" | "reset" | string>((resolve) => {
    socket.once("end", () => resolve("end"));
    socket.once("error", (err: NodeJS.ErrnoException) => resolve(err.code === "ECONNRESET" ? "reset" : (err.code ?? err.message)));
  });
  return { text: () => Buffer.concat(chunks).toString(), bytes: () => bytes, ended };
}

/** Resolves once `value()` has not changed for 100 ms (bounded). */
async function stable(what: string, value: () => number, timeoutMs = 1500): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = value();
  let same = 0;
  while (same < 5) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (still at ${value()})`);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const now = value();
    same = now === last ? same + 1 : 0;
    last = now;
  }
}

const within = <T>(what: string, promise: Promise<T>, ms = 1500): Promise<T> =>
  Promise.race([promise, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms).unref())]);

describe("a TCP connection bridged over a stream", () => {
  test("request and reply cross intact; both bridges finish once and the stream is forgotten", async () => {
    const h = await setup({
      echo: (s) => {
        let got = "";
        s.on("data", (d) => (got += d));
        s.on("end", () => s.end(`echo:${got}`));
      },
    });
    const client = await h.client("echo");
    const got = collect(client);
    client.end("hello over the link");
    assert.equal(await within("the reply", got.ended), "end");
    assert.equal(got.text(), "echo:hello over the link");
    client.end();
    await until("both bridges to finish", () => h.owner.closed.length === 2);
    assert.equal(h.pair.a.streams.size + h.pair.b.streams.size, 0);
    assert.deepEqual(h.pair.socketA.tap.resets(), [], "no reset on a clean finish");
  });

  test("4 MiB of random bytes arrive intact in both directions at once", async () => {
    const h = await setup({ echo: (s) => s.pipe(s) });
    const client = await h.client("echo");
    const payload = randomFillSync(Buffer.alloc(4 * MiB));
    const hash = createHash("sha256");
    let received = 0;
    client.on("data", (d: Buffer) => {
      received += d.length;
      hash.update(d);
    });
    const ended = new Promise((resolve) => client.once("end", resolve));
    client.end(payload);
    await within("the echo of 4 MiB", ended, 1900);
    assert.equal(received, payload.length);
    assert.equal(hash.digest("hex"), createHash("sha256").update(payload).digest("hex"));
  });

  test("the client is not read before the far end ACCEPTs", async () => {
    const h = await setup({ sink: (s) => s.resume() });
    h.holdAccept = true;
    const client = await h.client("sink");
    client.write("early bytes");
    await until("the backend connection", () => h.connectorBridges.length === 1);
    await settle();
    assert.equal(h.pair.socketA.tap.of(FrameType.Data).length, 0, "no DATA before ACCEPT");
    h.releaseAccepts();
    await until("the early bytes to cross", () => h.pair.socketA.tap.data(1) === "early bytes".length);
  });
});

describe("a misbehaving peer", () => {
  test(
    "a second ACCEPT for a stream already accepted changes nothing",
    async () => {
      let got = "";
      const h = await setup({ sink: (s) => s.on("data", (d) => (got += d)) });
      const client = await h.client("sink");
      await until("ACCEPT", () => h.pair.socketB.tap.of(FrameType.Accept).length === 1);
      h.connectorBridges[0]!.sendAccept(); // a duplicate, as a buggy or hostile peer could send
      await until("the second ACCEPT to arrive", () => h.pair.socketB.tap.of(FrameType.Accept).length === 2);
      await settle();
      client.write("once");
      await until("the bytes at the backend", () => got.length >= 4);
      await settle();
      assert.equal(got, "once");
    },
  );
});

describe("half-close through a bridge", () => {
  test("the client finishes writing first; the backend keeps sending, then ends", async () => {
    const backendSaw: string[] = [];
    const h = await setup({
      late: (s) => {
        s.on("data", (d) => backendSaw.push(String(d)));
        s.on("end", () => {
          backendSaw.push("<end>");
          s.write("reply after your FIN, ");
          setImmediate(() => s.end("and done"));
        });
      },
    });
    const client = await h.client("late");
    const got = collect(client);
    client.end("question");
    assert.equal(await within("the backend's end", got.ended), "end");
    assert.equal(got.text(), "reply after your FIN, and done");
    assert.deepEqual(backendSaw, ["question", "<end>"]);
  });

  test("the backend finishes writing first; the client can still send", async () => {
    let backendGot = "";
    let backendEnded = false;
    const h = await setup({
      greeter: (s) => {
        s.end("greeting, and that is all from me");
        s.on("data", (d) => (backendGot += d));
        s.on("end", () => (backendEnded = true));
      },
    });
    const client = await h.client("greeter");
    const got = collect(client);
    assert.equal(await within("the backend's FIN", got.ended), "end");
    assert.equal(got.text(), "greeting, and that is all from me");
    client.write("still talking after your FIN");
    await until("the client's bytes at the backend", () => backendGot === "still talking after your FIN");
    assert.equal(backendEnded, false, "the backend's read side is still open");
    client.end();
    await until("the backend to see the end", () => backendEnded);
    await until("both bridges to finish", () => h.owner.closed.length === 2);
  });
});

describe("half-close with the window exhausted", () => {
  test("an echo of more than the window, the client's FIN sent with its last byte: every byte and a clean end come back", async () => {
    const size = 3 * MiB + 17;
    const h = await setup({ echo: (s) => s.pipe(s) });
    for (let round = 0; round < 10; round++) {
      const client = await h.client("echo");
      const got = collect(client);
      client.end(Buffer.alloc(size, round));
      assert.equal(await within("the end of the echo", got.ended, 5000), "end", `round ${round}`);
      assert.equal(got.bytes(), size, `round ${round}: every byte`);
    }
  });
});

describe("resets through a bridge", () => {
  test("a backend that resets its connection makes the client see a reset, not a clean end", async () => {
    const h = await setup({ rude: (s) => s.once("data", () => s.resetAndDestroy()) });
    const client = await h.client("rude");
    const got = collect(client);
    client.write("anything");
    assert.equal(await within("the client's outcome", got.ended), "reset");
    const reset = h.pair.socketB.tap.resets()[0];
    assert.equal(reset?.code, ResetCode.Cancelled);
    assert.match(reset?.reason ?? "", /^the local connection (failed|closed)$/);
  });

  test("a client that goes away mid-stream resets the backend's connection", async () => {
    let backendOutcome: Promise<string> | undefined;
    const h = await setup({ wait: (s) => (backendOutcome = outcome(s)) });
    const client = await h.client("wait");
    client.write("half a request");
    await until("the backend connection", () => backendOutcome !== undefined);
    await until("the bytes to cross", () => h.pair.socketA.tap.data(1) > 0);
    client.resetAndDestroy();
    assert.equal(await within("the backend's outcome", backendOutcome!), "reset");
    assert.equal(h.pair.socketA.tap.resets()[0]?.code, ResetCode.Cancelled);
  });

  test("a RESET from the link closes the local socket with an RST", async () => {
    const h = await setup({ sink: (s) => s.resume() });
    const client = await h.client("sink");
    const got = collect(client);
    await until("ACCEPT", () => h.connectorBridges.length === 1 && h.pair.socketB.tap.of(FrameType.Accept).length === 1);
    h.connectorBridges[0]!.abort(ResetCode.Removed, "connector removed");
    assert.equal(await within("the client's outcome", got.ended), "reset");
    assert.equal(h.owner.closed.length >= 1, true);
  });

  test("a client that has gone away: the backend's next reply resets the stream (code 6) and the backend's connection", async () => {
    let backend: net.Socket | undefined;
    const h = await setup({ talker: (s) => (backend = s) });
    const client = await h.client("talker");
    await until("ACCEPT", () => h.pair.socketB.tap.of(FrameType.Accept).length === 1 && backend !== undefined);
    const backendClosed = new Promise<void>((resolve) => backend!.once("close", () => resolve()));
    backend!.resume();
    client.destroy(); // a FIN, like a half-close: the stream stays open until the client's side fails
    await until("the FIN to cross", () => h.pair.socketA.tap.of(FrameType.Fin).length === 1);
    assert.deepEqual(h.pair.socketA.tap.resets(), []);
    // The reply reaches a closed socket: the client's kernel answers with an RST. The backend's
    // read side has ended, so it notices the RST the router sends it only on its next write.
    backend!.on("error", () => undefined);
    const reply = setInterval(() => backend!.write("are you there?"), 5);
    try {
      await until("a RESET on the link", () => h.pair.socketA.tap.resets().length === 1);
      await within("the backend's connection to be closed", backendClosed);
    } finally {
      clearInterval(reply);
    }
    const reset = h.pair.socketA.tap.resets()[0]!;
    assert.equal(reset.code, ResetCode.Cancelled);
    assert.match(reset.reason, /^the local connection (failed|closed)$/);
    assert.equal(h.connectorBridges[0]!.socket.destroyed, true);
  });
});

describe("a flow-control violation at a bridge", () => {
  test("a peer that sends beyond the window gets RESET code 9, and the local client an RST", async () => {
    let backend: net.Socket | undefined;
    // The link hands over everything written in a turn at once, so all the DATA frames are
    // counted before the bridge can return any credit.
    const h = await setup({ quiet: (s) => (backend = s) }, { chunkSize: 4 * MiB });
    const client = await h.client("quiet");
    const got = collect(client);
    await until("ACCEPT", () => h.pair.socketB.tap.of(FrameType.Accept).length === 1 && backend !== undefined);
    const far = h.connectorBridges[0]!;
    for (let sent = 0; sent <= STREAM_WINDOW; sent += 64 * 1024) far.sendData(Buffer.alloc(64 * 1024)); // ignores credit
    await until("the RESET", () => h.pair.socketA.tap.resets().length === 1);
    assert.deepEqual(h.pair.socketA.tap.resets()[0], { stream: 1, code: ResetCode.FlowControl, reason: "flow-control window exceeded" });
    assert.equal(await within("the client's outcome", got.ended), "reset");
    assert.equal(h.pair.a.streams.size, 0);
    assert.equal(h.pair.a.state, "up", "only the stream is reset, not the link");
  });
});

describe("backpressure", () => {
  test("a backend that stops reading stalls only its own stream; the router holds at most about a window for it (slow-reader isolation)", async () => {
    const stalledBackend: net.Socket[] = [];
    let fastReceived = 0;
    const h = await setup({
      stalled: (s) => {
        s.pause();
        stalledBackend.push(s);
      },
      fast: (s) => s.on("data", (d: Buffer) => (fastReceived += d.length)),
    });
    const slowClient = await h.client("stalled");
    const fastClient = await h.client("fast");
    const big = Buffer.alloc(16 * MiB, 5);
    slowClient.write(big);
    fastClient.write(Buffer.alloc(4 * MiB, 6));
    await until("the fast stream to deliver 4 MiB", () => fastReceived === 4 * MiB, 1900);
    // The stalled stream: what the far router keeps in its own memory is bounded by the window
    // (grown while the kernel still took the data at full speed), the rest waits in the kernel
    // and in the client.
    await stable("the stalled stream to stop moving", () => h.pair.socketA.tap.data(1));
    const farBridge = h.connectorBridges[0]!;
    assert.ok(farBridge.socket.writableLength <= MAX_STREAM_WINDOW + 64 * 1024, `the connector side buffers ${farBridge.socket.writableLength} bytes`);
    assert.ok(h.pair.socketA.tap.data(1) < big.length, "the stalled stream has not been read to the end");
    assert.ok(slowClient.writableLength > 0, "the slow client is held back");
    // The backend reads again: the rest arrives.
    let slowReceived = 0;
    stalledBackend[0]!.on("data", (d: Buffer) => (slowReceived += d.length));
    stalledBackend[0]!.resume();
    await until("the stalled stream to finish", () => slowReceived === big.length, 1900);
  });

  test("when the link's write buffer is full, the client socket is paused until the link drains", async () => {
    let received = 0;
    const h = await setup({ sink: (s) => s.on("data", (d: Buffer) => (received += d.length)) });
    const client = await h.client("sink");
    await until("ACCEPT", () => h.pair.socketB.tap.of(FrameType.Accept).length === 1);
    h.pair.socketB.pauseReading();
    client.write(Buffer.alloc(4 * MiB, 1));
    const nearBridge = h.listenerBridges[0]!;
    await until("the link to report blocked", () => h.pair.a.blocked);
    await until("the client socket to be paused", () => nearBridge.socket.isPaused());
    const queued = h.pair.socketA.writableLength;
    assert.ok(queued <= STREAM_WINDOW + 256 * 1024, `the link buffer holds ${queued} bytes, not the whole 4 MiB`);
    h.pair.socketB.resumeReading();
    await until("all bytes at the backend", () => received === 4 * MiB, 1900);
  });
});
