/**
 * The data plane's byte buffers (src/router/buffers.ts): sockets of every kind the router uses
 * (accepted, connected, TLS) reading into the one shared read buffer with bytes intact and
 * pause/resume/end working as usual; the shared view being overwritten by the next read of any
 * socket (why callers copy); WriteBatch merging claims, reporting writes and reusing slab
 * regions only once they are written; and 8 MiB end to end through batches on a real socket.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes, randomInt } from "node:crypto";
import { once } from "node:events";
import net from "node:net";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import tls from "node:tls";
import { createCA, issueCertificate, type Credentials } from "../../src/certs/index.js";
import { holdCopy, readIntoSharedBuffer, SHARED_READ_BUFFER_SIZE, WriteBatch, type HeldCopy } from "../../src/router/buffers.js";
import { until } from "../helpers/memory-link.js";

const KiB = 1024;
const MiB = 1024 * KiB;
/** Mirrors buffers.ts: the size of a shared write slab. */
const SLAB_SIZE = 512 * KiB;
const WAIT_MS = 15_000;

// ---- helpers ----

/** `promise`, or a failure naming `what` after `ms`. */
async function within<T>(what: string, promise: Promise<T>, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Writes `data` in uneven chunks, waiting for 'drain' when write() says so, then ends. */
async function sendUneven(socket: net.Socket, data: Buffer): Promise<void> {
  for (let offset = 0; offset < data.length; ) {
    const size = Math.min(randomInt(1, 96 * KiB), data.length - offset);
    const ok = socket.write(data.subarray(offset, offset + size));
    offset += size;
    if (!ok) await within("the sender to drain", once(socket, "drain"));
  }
  socket.end();
}

const sha256 = (data: Buffer): string => createHash("sha256").update(data).digest("hex");

/** Where `socket` hands its reads: copies of each view, anything that came as 'data', and 'end'. */
class Receiver {
  socket: net.Socket | undefined;
  /** What readIntoSharedBuffer answered. */
  attached: boolean | undefined;
  /** Everything received in order: reads handed to onRead, and chunks that came as 'data'. */
  readonly reads: Buffer[] = [];
  /** Bytes that came as 'data' rather than through onRead. */
  extraBytes = 0;
  ended = false;
  /** Reads seen when onRead paused the socket (pauseAfterFirst). */
  readsAtPause: number | undefined;

  constructor(
    private readonly pauseAfterFirst = false,
    private readonly options: { paused?: "never" } = {},
  ) {}

  /** Called by the pair at the moment the receiving socket is handed over, before it reads. */
  readonly attach = (socket: net.Socket): void => {
    this.socket = socket;
    this.attached = readIntoSharedBuffer(socket, (view) => this.take(Buffer.from(view)), this.options);
    // As the callers in src/router do: reads from before, or all of them when refused, come as 'data'.
    socket.on("data", (chunk: Buffer) => {
      this.extraBytes += chunk.length;
      this.take(chunk);
    });
    socket.on("end", () => (this.ended = true));
    socket.on("error", () => {});
    socket.resume();
  };

  private take(chunk: Buffer): void {
    this.reads.push(chunk);
    if (this.pauseAfterFirst && this.readsAtPause === undefined) {
      this.socket!.pause();
      this.readsAtPause = this.reads.length;
    }
  }

  get received(): Buffer {
    return Buffer.concat(this.reads);
  }

  get receivedBytes(): number {
    return this.reads.reduce((sum, chunk) => sum + chunk.length, 0);
  }
}

interface Pair {
  /** The end handed to `attach`. */
  receiver: net.Socket;
  /** Its peer. */
  sender: net.Socket;
  close(): void;
}

type Attach = (socket: net.Socket) => void;
type OpenPair = (attach: Attach) => Promise<Pair>;

/**
 * Listens on 127.0.0.1, then lets `open` connect a client and wire both ends up, resolving
 * `ready` with [receiver, sender] (or rejecting it, e.g. when `attach` throws). Bounded; on
 * failure the server and every socket are closed, so that a failing test cannot hang the file.
 */
async function openPair(
  server: net.Server,
  open: (port: number, ready: { resolve(ends: [net.Socket, net.Socket]): void; reject(err: unknown): void }) => net.Socket,
): Promise<Pair> {
  const sockets: net.Socket[] = [];
  server.on("connection", (socket: net.Socket) => {
    sockets.push(socket);
    socket.on("error", () => {});
  });
  const close = () => {
    for (const socket of sockets) socket.destroy();
    server.close();
  };
  try {
    const port = await within("the server to listen", new Promise<number>((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port))));
    let ready!: Parameters<typeof open>[1];
    const ends = new Promise<[net.Socket, net.Socket]>((resolve, reject) => (ready = { resolve, reject }));
    const client = open(port, ready);
    sockets.push(client);
    client.on("error", () => {});
    const [receiver, sender] = await within("both ends of the connection", ends);
    sockets.push(receiver, sender);
    return { receiver, sender, close };
  } catch (err) {
    close();
    throw err;
  }
}

/** Calls `attach`, passing a throw on to `reject` instead of out of a socket event. */
function attachOrReject(attach: Attach, socket: net.Socket, reject: (err: unknown) => void): boolean {
  try {
    attach(socket);
    return true;
  } catch (err) {
    reject(err);
    return false;
  }
}

/** Receiver: a socket accepted by a `pauseOnConnect` server, attached before it is resumed. */
const acceptedPair: OpenPair = (attach) => {
  const server = net.createServer({ pauseOnConnect: true });
  return openPair(server, (port, ready) => {
    const sender = net.connect(port, "127.0.0.1");
    const connected = once(sender, "connect");
    server.once("connection", (socket: net.Socket) => {
      if (attachOrReject(attach, socket, ready.reject)) connected.then(() => ready.resolve([socket, sender]), ready.reject);
    });
    return sender;
  });
};

/** Receiver: a client socket from net.connect, attached at 'connect'. */
const connectedPair: OpenPair = (attach) => {
  const server = net.createServer();
  return openPair(server, (port, ready) => {
    const receiver = net.connect(port, "127.0.0.1");
    Promise.all([once(server, "connection"), once(receiver, "connect")])
      .then(([[sender]]) => {
        if (attachOrReject(attach, receiver, ready.reject)) ready.resolve([receiver, sender as net.Socket]);
      })
      .catch(ready.reject);
    return receiver;
  });
};

let tlsCredentials: Promise<{ ca: Credentials; server: Credentials }> | undefined;
function credentials(): Promise<{ ca: Credentials; server: Credentials }> {
  return (tlsCredentials ??= (async () => {
    const ca = await createCA("buffers test CA");
    const server = await issueCertificate(ca, { commonName: "localhost", hosts: ["localhost", "127.0.0.1"], usage: "server" });
    return { ca, server };
  })());
}

/** Receiver: a TLSSocket accepted by a tls server, attached at 'secureConnection'. */
const tlsPair: OpenPair = async (attach) => {
  const { ca, server: cert } = await credentials();
  const server = tls.createServer({ key: cert.key, cert: cert.cert });
  server.on("tlsClientError", () => {});
  return openPair(server, (port, ready) => {
    const sender = tls.connect({ host: "127.0.0.1", port, ca: ca.cert, servername: "localhost" });
    const secured = once(sender, "secureConnect");
    server.once("secureConnection", (socket: tls.TLSSocket) => {
      socket.on("error", () => {});
      if (attachOrReject(attach, socket, ready.reject)) secured.then(() => ready.resolve([socket, sender]), ready.reject);
    });
    return sender;
  });
};

/** Stands in for a net.Socket: records each write (the view written, a copy of it then) and its callback. */
class RecordingSocket {
  readonly writes: Array<{ chunk: Buffer; copy: Buffer; done: () => void; called: boolean }> = [];
  corks = 0;
  uncorks = 0;

  write(chunk: Buffer, callback: () => void): boolean {
    const write = { chunk, copy: Buffer.from(chunk), called: false, done: () => {} };
    write.done = () => {
      assert.equal(write.called, false, "a write callback called twice");
      write.called = true;
      callback();
    };
    this.writes.push(write);
    return true;
  }

  cork(): void {
    this.corks++;
  }

  uncork(): void {
    this.uncorks++;
  }

  get asSocket(): net.Socket {
    return this as unknown as net.Socket;
  }
}

/**
 * Starts a fresh slab: claims (and discards) until a claim lands at the start of a slab. The
 * next claims of up to 3/4 of a slab are then cut from that slab, one after the other.
 */
function freshSlab(): ArrayBufferLike {
  const batch = new WriteBatch();
  // A slab holds four quarter-slab claims, so the fifth starts a new one at the latest.
  for (let i = 0; i < 5; i++) {
    const piece = batch.claim(SLAB_SIZE / 4);
    if (piece.byteOffset === 0 && piece.buffer.byteLength === SLAB_SIZE) {
      batch.discard();
      return piece.buffer;
    }
  }
  batch.discard();
  throw new Error("no claim started a new slab");
}

const overlaps = (a: Buffer, b: Buffer): boolean =>
  a.buffer === b.buffer && a.length > 0 && b.length > 0 && a.byteOffset < b.byteOffset + b.length && b.byteOffset < a.byteOffset + a.length;

// ---- tests ----

const KINDS: Array<{ name: string; open: OpenPair; tls?: true }> = [
  { name: "a socket accepted by a pauseOnConnect server (before resume)", open: acceptedPair },
  { name: "a net.connect client socket (at 'connect')", open: connectedPair },
  { name: "a TLSSocket accepted by a tls server", open: tlsPair, tls: true },
];

describe("readIntoSharedBuffer", () => {
  for (const kind of KINDS) {
    describe(kind.name, () => {
      test("is taken up, and hands over every byte in order, with nothing left for 'data', then 'end'", { timeout: 30_000 }, async () => {
        // A TLS socket is taken only from a caller that never pauses it (the link session).
        const receiver = new Receiver(false, kind.tls ? { paused: "never" } : {});
        const pair = await kind.open(receiver.attach);
        try {
          assert.equal(receiver.attached, true, "readIntoSharedBuffer refused this socket");
          const sent = randomBytes(3 * MiB + 12_345);
          await sendUneven(pair.sender, sent);
          await until("'end' on the receiver", () => receiver.ended, WAIT_MS);
          assert.equal(receiver.extraBytes, 0, "bytes arrived as 'data' events instead of through onRead");
          assert.equal(receiver.receivedBytes, sent.length);
          assert.ok(receiver.received.equals(sent), "the bytes handed to onRead differ from those sent");
          assert.ok(receiver.reads.every((chunk) => chunk.length <= SHARED_READ_BUFFER_SIZE));
        } finally {
          pair.close();
        }
      });

      test("pause() inside onRead stops delivery until resume(); the rest arrives intact", { timeout: 30_000 }, async () => {
        const receiver = new Receiver(true);
        const pair = await kind.open(receiver.attach);
        try {
          // A TLS socket that may be paused is refused: it would go on handing over decrypted
          // records after pause(). It reads with 'data', where pause() holds them back.
          assert.equal(receiver.attached, !kind.tls);
          const sent = randomBytes(2 * MiB + 777);
          const sending = sendUneven(pair.sender, sent);
          await until("the first read", () => receiver.readsAtPause !== undefined, WAIT_MS);
          // A negative check: nothing may arrive while paused. It can only watch for a short
          // while, so 100 ms it is (plenty for a loopback sender with megabytes to go).
          await sleep(100);
          const whilePaused = receiver.reads.slice(receiver.readsAtPause);
          const bytesWhilePaused = whilePaused.reduce((sum, chunk) => sum + chunk.length, 0);
          assert.ok(receiver.receivedBytes < sent.length, "everything arrived before pause() could matter");
          receiver.socket!.resume();
          await within("the sender", sending);
          await until("'end' on the receiver", () => receiver.ended, WAIT_MS);
          // Integrity first, so that a leaky pause() is told apart from lost or reordered bytes.
          assert.ok(receiver.received.equals(sent), "the bytes received differ from those sent");
          // A TLSSocket (Node 20) still hands over the records it had already decrypted after
          // pause(); they must wait for resume (as 'data'), not reach onRead or anyone while paused.
          assert.equal(whilePaused.length, 0, `${whilePaused.length} read(s) (${bytesWhilePaused} bytes) were delivered while paused`);
        } finally {
          pair.close();
        }
      });
    });
  }

  test("refuses a socket that already reads into a buffer of its own", { timeout: 10_000 }, async () => {
    const receiver = new Receiver();
    const pair = await acceptedPair(receiver.attach);
    try {
      assert.equal(receiver.attached, true);
      assert.equal(readIntoSharedBuffer(pair.receiver, () => assert.fail("the second handler was used")), false);
      pair.sender.end("x");
      await until("'end' on the receiver", () => receiver.ended, WAIT_MS);
      assert.equal(receiver.received.toString(), "x");
    } finally {
      pair.close();
    }
  });

  test("a view is overwritten by the next read of any other socket (callers must copy)", { timeout: 10_000 }, async () => {
    const views: Array<{ from: "a" | "b"; view: Buffer }> = [];
    const bytes = { a: 0, b: 0 };
    const attached: boolean[] = [];
    const attach = (from: "a" | "b") => (socket: net.Socket) => {
      const taken = readIntoSharedBuffer(socket, (view) => {
        views.push({ from, view });
        bytes[from] += view.length;
      });
      attached.push(taken);
      socket.resume();
    };
    const a = await acceptedPair(attach("a"));
    const b = await acceptedPair(attach("b"));
    try {
      assert.deepEqual(attached, [true, true]);
      for (let round = 1; round <= 3; round++) {
        const first = views.length;
        a.sender.write(Buffer.alloc(1000, 0x41)); // "AAA…"
        await until("socket a to read its 1000 bytes", () => bytes.a === round * 1000, WAIT_MS);
        const seen = views[first]!;
        assert.equal(seen.from, "a");
        assert.equal(seen.view[0], 0x41, "socket a's view does not hold what a's peer sent");
        const before = views.length;
        b.sender.write(Buffer.alloc(1000, 0x42)); // "BBB…"
        await until("socket b to read its 1000 bytes", () => bytes.b === round * 1000, WAIT_MS);
        const other = views[before]!;
        assert.equal(other.from, "b");
        assert.equal(other.view.buffer, seen.view.buffer, "the two sockets read into different buffers");
        assert.equal(seen.view[0], 0x42, "socket a's earlier view was not overwritten by socket b's read");
      }
    } finally {
      a.close();
      b.close();
    }
  });
});

describe("WriteBatch", () => {
  test("claims made back to back are written as one buffer with the exact bytes", () => {
    freshSlab();
    const socket = new RecordingSocket();
    const batch = new WriteBatch();
    batch.claim(3).write("abc");
    batch.claim(5).write("defgh");
    batch.append(Buffer.from("ijklmnop"));
    assert.equal(batch.bytes, 16);
    assert.equal(batch.empty, false);
    assert.equal(batch.writeTo(socket.asSocket), true);
    assert.equal(socket.writes.length, 1, "adjacent claims were not merged into one write");
    assert.equal(socket.writes[0]!.copy.toString(), "abcdefghijklmnop");
    assert.equal(batch.bytes, 0);
    assert.equal(batch.empty, true);
    for (const write of socket.writes) write.done();
  });

  test("claims separated by another batch's claim are written as separate buffers, corked together", () => {
    freshSlab();
    const socket = new RecordingSocket();
    const batch = new WriteBatch();
    const other = new WriteBatch();
    batch.claim(4).write("one.");
    other.claim(6).write("other.");
    batch.claim(4).write("two.");
    assert.equal(batch.bytes, 8);
    batch.writeTo(socket.asSocket);
    assert.deepEqual(
      socket.writes.map((w) => w.copy.toString()),
      ["one.", "two."],
    );
    assert.equal(socket.corks, 1);
    assert.equal(socket.uncorks, 1);
    other.discard();
    for (const write of socket.writes) write.done();
  });

  test("`written` callbacks run once the socket has called the write's callback", () => {
    const socket = new RecordingSocket();
    const batch = new WriteBatch();
    const calls: string[] = [];
    batch.claim(10, () => calls.push("first")).fill(1);
    batch.claim(10).fill(2);
    batch.claim(10, () => calls.push("third")).fill(3);
    batch.writeTo(socket.asSocket);
    assert.deepEqual(calls, [], "`written` ran before the socket wrote anything");
    assert.ok(socket.writes.length >= 1);
    for (const write of socket.writes) write.done();
    assert.deepEqual(calls, ["first", "third"]);
  });

  test("writeTo on an empty batch writes nothing", () => {
    const socket = new RecordingSocket();
    assert.equal(new WriteBatch().writeTo(socket.asSocket), true);
    assert.equal(socket.writes.length, 0);
  });

  test("discard() drops unwritten claims and gives their slab back for reuse", () => {
    const slab = freshSlab(); // a quarter of it used, nothing live
    const socket = new RecordingSocket();
    const batch = new WriteBatch();
    const calls: string[] = [];
    for (let i = 0; i < 3; i++) batch.claim(SLAB_SIZE / 4, () => calls.push(`claim ${i}`)).fill(i);
    assert.equal(batch.bytes, (3 * SLAB_SIZE) / 4);
    batch.discard();
    assert.equal(batch.bytes, 0);
    assert.equal(batch.empty, true);
    assert.equal(batch.writeTo(socket.asSocket), true);
    assert.equal(socket.writes.length, 0, "discarded claims were written");
    assert.deepEqual(calls, [], "`written` ran for claims that were never written");
    // The slab is full now; nothing of it is live, so the next slab is that same buffer again.
    const next = new WriteBatch();
    const piece = next.claim(1);
    assert.equal(piece.byteOffset, 0);
    assert.equal(piece.buffer, slab, "the discarded claims' slab was not released for reuse");
    next.discard();
  });

  test("slab regions still being written, or held, are never handed out again", () => {
    const socket = new RecordingSocket();
    const held: Array<{ copy: HeldCopy; expected: Buffer }> = [];
    for (let i = 0; i < 8; i++) {
      const expected = randomBytes(randomInt(1, 20 * KiB));
      held.push({ copy: holdCopy(expected), expected });
    }
    // 3 MiB in 64 KiB claims, one batch each; only every other write completes.
    for (let i = 0; i < 48; i++) {
      const batch = new WriteBatch();
      randomBytes(64 * KiB).copy(batch.claim(64 * KiB));
      batch.writeTo(socket.asSocket);
      if (i % 2 === 0) socket.writes[socket.writes.length - 1]!.done();
    }
    const pending = socket.writes.filter((w) => !w.called);
    assert.equal(pending.length, 24);

    // Lots more claims, of many sizes (some bigger than a quarter slab), written and completed at
    // once, so that every released region gets reused, some holdCopy() calls among them.
    const live = [...pending.map((w) => w.chunk), ...held.map((h) => h.copy.bytes)];
    for (let i = 0; i < 400; i++) {
      const batch = new WriteBatch();
      const pieces = randomInt(1, 4);
      for (let p = 0; p < pieces; p++) {
        const piece = batch.claim(randomInt(1, i % 50 === 0 ? 200 * KiB : 64 * KiB));
        const clash = live.find((region) => overlaps(region, piece));
        assert.equal(clash, undefined, `claim ${i}.${p} was cut from a region still in use`);
        piece.fill(0xee);
      }
      if (i % 7 === 0) {
        const extra = holdCopy(Buffer.alloc(randomInt(1, 8 * KiB), 0xdd));
        assert.equal(live.find((region) => overlaps(region, extra.bytes)), undefined, `holdCopy ${i} was cut from a region still in use`);
        extra.release();
      }
      const first = socket.writes.length;
      batch.writeTo(socket.asSocket);
      for (const write of socket.writes.slice(first)) write.done();
    }

    pending.forEach((write, i) => assert.ok(write.chunk.equals(write.copy), `the bytes of unfinished write ${i} changed`));
    held.forEach((h, i) => assert.ok(h.copy.bytes.equals(h.expected), `held copy ${i} changed`));
    for (const write of pending) write.done();
    for (const h of held) {
      h.copy.release();
      h.copy.release(); // a second release is a no-op
    }
  });
});

describe("WriteBatch and readIntoSharedBuffer on a real TCP connection", () => {
  test("8 MiB through batches of random sizes arrives intact", { timeout: 60_000 }, async () => {
    const receiver = new Receiver();
    const hash = createHash("sha256");
    let hashed = 0;
    const pair = await acceptedPair((socket) => {
      receiver.socket = socket;
      receiver.attached = readIntoSharedBuffer(socket, (view) => {
        hash.update(view);
        hashed += view.length;
      });
      socket.on("data", (chunk: Buffer) => (receiver.extraBytes += chunk.length));
      socket.on("end", () => (receiver.ended = true));
      socket.resume();
    });
    try {
      assert.equal(receiver.attached, true);
      const data = randomBytes(8 * MiB);
      const socket = pair.sender;
      for (let offset = 0; offset < data.length; ) {
        // One event-loop turn's worth: pieces claimed now, written at setImmediate.
        const batch = new WriteBatch();
        let turn = randomInt(1, 384 * KiB);
        while (turn > 0 && offset < data.length) {
          const size = Math.min(randomInt(1, 160 * KiB), turn, data.length - offset);
          data.copy(batch.claim(size), 0, offset, offset + size);
          offset += size;
          turn -= size;
        }
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (!batch.writeTo(socket)) await within("the sender to drain", once(socket, "drain"));
      }
      socket.end();
      await until("'end' on the receiver", () => receiver.ended, WAIT_MS * 2);
      assert.equal(receiver.extraBytes, 0);
      assert.equal(hashed, data.length);
      assert.equal(hash.digest("hex"), sha256(data));
    } finally {
      pair.close();
    }
  });
});
