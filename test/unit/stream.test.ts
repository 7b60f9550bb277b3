/**
 * Streams on one link (src/router/stream.ts, session.ts), driven over an in-memory link:
 * per-stream credit and slow-reader isolation, the flow-control-violation reset, half-close in
 * each direction, resets, link loss, stream ids and link backpressure.
 */
import assert from "node:assert/strict";
import { afterEach, describe, test } from "node:test";
import { setLogLevel } from "../../src/common/log.js";
import { FrameType, MAX_DATA_PAYLOAD, MAX_STREAM_WINDOW, ResetCode, STREAM_WINDOW, WINDOW_UPDATE_THRESHOLD } from "../../src/router/frames.js";
import {
  acceptInto,
  fakeSession,
  forgetSockets,
  frame,
  peerHello,
  request,
  sessionPair,
  settle,
  TestEndpoint,
  until,
  type SessionPair,
} from "../helpers/memory-link.js";

setLogLevel("error");

const MiB = 1024 * 1024;

let pair: SessionPair | undefined;
afterEach(() => {
  pair?.close();
  pair = undefined;
  forgetSockets();
});

/** A pair whose acceptor attaches a TestEndpoint to each OPEN (autoRead as given). */
async function pairWithEnds(options: { autoRead?: boolean; keep?: boolean } = {}): Promise<{ p: SessionPair; ends: TestEndpoint[] }> {
  const ends: TestEndpoint[] = [];
  const p = await sessionPair({ onOpenB: acceptInto(ends, options) });
  pair = p;
  return { p, ends };
}

function open(p: SessionPair, options: { autoRead?: boolean; keep?: boolean } = {}): TestEndpoint {
  const end = new TestEndpoint(options);
  p.a.openStream(end, request());
  return end;
}

describe("a stream on a link", () => {
  test("is accepted and carries bytes both ways", async () => {
    const { p, ends } = await pairWithEnds({ keep: true });
    const client = open(p, { keep: true });
    await until("the OPEN to arrive", () => ends.length === 1);
    const server = ends[0]!;
    await until("ACCEPT", () => client.has("accept"));
    client.write("ping");
    server.write("pong");
    await until("both payloads", () => server.received === 4 && client.received === 4);
    assert.equal(server.text, "ping");
    assert.equal(client.text, "pong");
    assert.deepEqual(p.ownerB.incoming, [{ id: 1, key: "backend" }]);
  });

  test("the dialer opens odd ids and the acceptor even ids, both counting up by 2", async () => {
    const endsA: TestEndpoint[] = [];
    const endsB: TestEndpoint[] = [];
    const p = await sessionPair({ onOpenA: acceptInto(endsA), onOpenB: acceptInto(endsB) });
    pair = p;
    const fromA = [open(p), open(p), open(p)];
    const fromB = [new TestEndpoint(), new TestEndpoint()];
    for (const end of fromB) p.b.openStream(end, request("k", "site-a", "site-b"));
    assert.deepEqual(fromA.map((e) => e.id), [1, 3, 5]);
    assert.deepEqual(fromB.map((e) => e.id), [2, 4]);
    await until("all OPENs", () => endsA.length === 2 && endsB.length === 3);
    assert.equal(p.a.state, "up", "concurrent opens from both sides never collide");
    assert.deepEqual(endsB.map((e) => e.id), [1, 3, 5]);
  });
});

describe("stream ids", () => {
  for (const [role, last, first] of [["dialer", 0xffffffff, 1], ["acceptor", 0xfffffffe, 2]] as const) {
    test(`the ${role}'s ids wrap from ${last} to ${first}, skipping ids still in use`, () => {
      const { link, feed } = fakeSession(role);
      feed(frame(FrameType.Hello, 0, JSON.stringify(peerHello)));
      const inUse = new TestEndpoint();
      link.openStream(inUse, request());
      assert.equal(inUse.id, first);
      (link as unknown as { nextId: number }).nextId = last; // as if 2^31 streams had been opened
      const ends = [new TestEndpoint(), new TestEndpoint()];
      for (const end of ends) link.openStream(end, request());
      assert.deepEqual(ends.map((e) => e.id), [last, first + 2], `${first} is still open, so it is skipped`);
      link.close("test over");
    });
  }
});

describe("per-stream flow control", () => {
  test("a stream whose reader stops gets exactly one window, while another stream on the same link keeps flowing (slow-reader isolation)", async () => {
    const { p, ends } = await pairWithEnds();
    const stalled = open(p);
    const flowing = open(p);
    await until("both OPENs", () => ends.length === 2);
    const [stalledReader, flowingReader] = ends as [TestEndpoint, TestEndpoint];
    // The second stream's reader consumes as data arrives; the first one's never does.
    const autoReader = setInterval(() => flowingReader.consume(), 1);
    try {
      stalled.write(Buffer.alloc(3 * MiB, 1));
      flowing.write(Buffer.alloc(3 * MiB, 2));
      await until("the flowing stream to deliver all 3 MiB", () => flowingReader.received === 3 * MiB, 1500);
    } finally {
      clearInterval(autoReader);
    }
    await settle();
    assert.equal(stalledReader.received, STREAM_WINDOW, "the stalled stream received exactly its window");
    assert.equal(p.socketA.tap.data(stalled.id), STREAM_WINDOW, "and no more than that crossed the link");
    assert.equal(stalled.sendCredit, 0);
    assert.equal(stalled.backlog, 3 * MiB - STREAM_WINDOW, "the rest waits at the sender");
    assert.equal(p.a.state, "up");

    // The reader comes back: the rest follows, window by window.
    stalledReader.consume();
    await until("the second window", () => stalledReader.received === 2 * STREAM_WINDOW);
    stalledReader.consume();
    await until("the third window", () => stalledReader.received === 3 * MiB);
    assert.equal(stalled.backlog, 0);
  });

  test("credit goes back as it is consumed; a sender never puts more than its credit on the wire", async () => {
    const { p, ends } = await pairWithEnds({ autoRead: true });
    const sender = open(p);
    sender.write(Buffer.alloc(5 * MiB + 123, 7));
    await until("the OPEN", () => ends.length === 1);
    await until("all bytes", () => ends[0]!.received === 5 * MiB + 123);
    const windows = p.socketB.tap.of(FrameType.Window, sender.id).map((f) => f.payload!.readUInt32BE(0));
    assert.ok(windows.length >= 8, `credit came back in several WINDOW frames (${windows.length})`);
    for (const w of windows) assert.ok(w >= WINDOW_UPDATE_THRESHOLD, `each WINDOW returns at least the threshold (got ${w})`);
    const dataFrames = p.socketA.tap.of(FrameType.Data, sender.id);
    for (const f of dataFrames) assert.ok(f.length <= MAX_DATA_PAYLOAD, `DATA frames carry at most 64 KiB (got ${f.length})`);
  });
});

describe("window growth", () => {
  /** A receiving end with no link: what it grants shows in recvAllowance. */
  const receiver = () => new TestEndpoint();
  /** Receives `bytes` and returns credit for them, as an end joined to a socket does. */
  const consume = (end: TestEndpoint, bytes: number, keepingUp: boolean) => {
    end.recvAllowance -= bytes;
    end.returnCredit(bytes, keepingUp);
  };

  test("while the consumer keeps up the window doubles with each grant, up to the maximum", () => {
    const end = receiver();
    const windows: number[] = [];
    for (let i = 0; i < 5; i++) {
      consume(end, end.creditThreshold, true);
      windows.push(end.recvWindow);
    }
    assert.deepEqual(windows, [2, 4, 4, 4, 4].map((m) => m * MiB));
    assert.equal(MAX_STREAM_WINDOW, 4 * MiB);
    assert.equal(end.recvAllowance, MAX_STREAM_WINDOW, "the sender's credit is the whole grown window");
  });

  test("a consumer that falls behind gets its stream back to the initial window, and one that never kept up never grows it", () => {
    const grown = receiver();
    consume(grown, grown.creditThreshold, true);
    consume(grown, grown.creditThreshold, true);
    assert.equal(grown.recvWindow, MAX_STREAM_WINDOW);
    while (grown.recvWindow > STREAM_WINDOW) consume(grown, grown.creditThreshold, false);
    assert.equal(grown.recvWindow, STREAM_WINDOW);
    assert.equal(grown.recvAllowance, STREAM_WINDOW, "credit was held back until only the initial window is out");

    const slow = receiver();
    for (let i = 0; i < 5; i++) consume(slow, slow.creditThreshold, false);
    assert.equal(slow.recvWindow, STREAM_WINDOW);
    assert.equal(slow.recvAllowance, STREAM_WINDOW);
  });
});

describe("flow-control violation", () => {
  /** A session whose peer is the test itself: handshake done, stream 1 opened by the peer and attached. */
  function rawPeer() {
    const s = fakeSession("acceptor");
    const ends: TestEndpoint[] = [];
    const open = (id: number) => {
      s.feed(frame(FrameType.Open, id, JSON.stringify(request())));
      const end = new TestEndpoint();
      s.link.attach(id, end);
      ends.push(end);
      return end;
    };
    s.feed(frame(FrameType.Hello, 0, JSON.stringify(peerHello)));
    assert.equal(s.link.state, "up");
    return { ...s, open, ends };
  }

  const resetsOn = (socket: ReturnType<typeof fakeSession>["socket"], stream: number) =>
    socket.frames().filter((f) => f.type === FrameType.Reset && f.stream === stream).map((f) => ({ code: f.payload[0], reason: f.payload.toString("utf8", 1) }));

  test("one byte beyond the window resets that stream with code 9; the link and other streams carry on", () => {
    const { socket, link, feed, open } = rawPeer();
    const victim = open(1);
    const bystander = open(3);
    feed(frame(FrameType.Data, 1, Buffer.alloc(STREAM_WINDOW, 1)));
    assert.equal(victim.received, STREAM_WINDOW, "a full window is allowed");
    assert.deepEqual(resetsOn(socket, 1), []);
    feed(frame(FrameType.Data, 1, Buffer.alloc(1, 1)));
    assert.deepEqual(resetsOn(socket, 1), [{ code: ResetCode.FlowControl, reason: "flow-control window exceeded" }]);
    assert.equal(victim.reset?.code, ResetCode.FlowControl);
    assert.equal(victim.received, STREAM_WINDOW, "the excess byte is not delivered");
    assert.equal(link.streams.has(1), false, "the stream is forgotten");
    // Data racing the reset is dropped without a second RESET.
    feed(frame(FrameType.Data, 1, "late"));
    assert.equal(resetsOn(socket, 1).length, 1);
    assert.equal(link.state, "up");
    feed(frame(FrameType.Data, 3, "still fine"));
    assert.equal(bystander.received, 10);
    assert.equal(bystander.reset, undefined);
    link.close("test over");
  });

  test("the window includes credit granted: after a WINDOW of n, n more bytes are fine, n + 1 are not", () => {
    const { socket, link, feed, open } = rawPeer();
    const end = open(1);
    feed(frame(FrameType.Data, 1, Buffer.alloc(STREAM_WINDOW)));
    end.consume(); // grants STREAM_WINDOW back
    const granted = socket.frames().filter((f) => f.type === FrameType.Window && f.stream === 1).map((f) => f.payload.readUInt32BE(0));
    assert.deepEqual(granted, [STREAM_WINDOW]);
    feed(frame(FrameType.Data, 1, Buffer.alloc(STREAM_WINDOW - 10)), frame(FrameType.Data, 1, Buffer.alloc(10)));
    assert.deepEqual(resetsOn(socket, 1), []);
    feed(frame(FrameType.Data, 1, Buffer.alloc(1)));
    assert.equal(resetsOn(socket, 1)[0]?.code, ResetCode.FlowControl);
    link.close("test over");
  });

  test("a violation inside one large DATA frame is caught even when the frame arrives in pieces", () => {
    const { socket, link, open } = rawPeer();
    const end = open(1);
    const big = frame(FrameType.Data, 1, Buffer.alloc(STREAM_WINDOW + 5000));
    for (let offset = 0; offset < big.length; offset += 1000) socket.emit("data", big.subarray(offset, offset + 1000));
    assert.equal(resetsOn(socket, 1).length, 1);
    assert.ok(end.received <= STREAM_WINDOW, `no more than the window was delivered (${end.received})`);
    assert.equal(link.state, "up");
    link.close("test over");
  });

  test("between two sessions: a sender that ignores its credit gets its stream reset with code 9", async () => {
    const { p, ends } = await pairWithEnds();
    const cheat = open(p);
    await until("the OPEN", () => ends.length === 1);
    cheat.writeIgnoringCredit(Buffer.alloc(MAX_DATA_PAYLOAD));
    for (let sent = MAX_DATA_PAYLOAD; sent <= STREAM_WINDOW; sent += MAX_DATA_PAYLOAD) cheat.writeIgnoringCredit(Buffer.alloc(MAX_DATA_PAYLOAD));
    await until("the reset to come back", () => cheat.reset !== undefined);
    assert.deepEqual(cheat.reset, { kind: "reset", code: ResetCode.FlowControl, message: "flow-control window exceeded" });
    assert.equal(ends[0]!.reset?.code, ResetCode.FlowControl);
    assert.equal(ends[0]!.received, STREAM_WINDOW);
    assert.equal(p.a.streams.size + p.b.streams.size, 0);
    assert.equal(p.a.state, "up");
  });
});

describe("half-close", () => {
  for (const first of ["opener", "acceptor"] as const) {
    test(`FIN from the ${first} ends one direction only; the other keeps sending until its own FIN`, async () => {
      const { p, ends } = await pairWithEnds({ keep: true });
      const opener = open(p, { keep: true });
      await until("the OPEN", () => ends.length === 1);
      const acceptor = ends[0]!;
      const [closer, other] = first === "opener" ? [opener, acceptor] : [acceptor, opener];
      closer.write("last words");
      closer.end();
      await until("the FIN", () => other.has("fin"));
      assert.equal(other.text, "last words", "data before the FIN arrives before it");
      assert.equal(closer.has("fin"), false);
      assert.equal(p.a.streams.size, 1, "the stream stays open on both sides");
      assert.equal(p.b.streams.size, 1);
      other.write("reply after the FIN");
      await until("the reply", () => closer.text === "reply after the FIN");
      // Credit still flows toward the half-closed side: send more than a window.
      other.write(Buffer.alloc(2 * STREAM_WINDOW));
      const drain = setInterval(() => closer.consume(), 1);
      try {
        await until("two windows after the FIN", () => closer.received === 19 + 2 * STREAM_WINDOW);
      } finally {
        clearInterval(drain);
      }
      other.end();
      await until("the second FIN", () => closer.has("fin"));
      assert.equal(p.a.streams.size + p.b.streams.size, 0, "both directions ended: forgotten on both sides");
      assert.equal(opener.reset ?? acceptor.reset, undefined);
    });
  }

  test("a second FIN is not sent", async () => {
    const { p, ends } = await pairWithEnds();
    const opener = open(p);
    await until("the OPEN", () => ends.length === 1);
    opener.sendFin();
    opener.sendFin();
    await settle();
    assert.equal(p.socketA.tap.of(FrameType.Fin, opener.id).length, 1);
  });
});

describe("reset", () => {
  test("a RESET reaches the other end with its code and reason; later frames for that id are ignored", async () => {
    const { p, ends } = await pairWithEnds();
    const opener = open(p);
    await until("the OPEN", () => ends.length === 1);
    opener.sendReset(ResetCode.Cancelled, "the local connection closed");
    assert.equal(p.a.streams.size, 0, "forgotten at once by the sender");
    await until("the reset", () => ends[0]!.reset !== undefined);
    assert.deepEqual(ends[0]!.reset, { kind: "reset", code: ResetCode.Cancelled, message: "the local connection closed" });
    assert.equal(p.b.streams.size, 0);
    ends[0]!.writeIgnoringCredit(Buffer.from("too late"));
    ends[0]!.sendFin();
    await settle();
    assert.equal(opener.received, 0);
    assert.equal(opener.has("fin"), false);
  });

  test("a reset reason is cut to 512 characters", async () => {
    const { p, ends } = await pairWithEnds();
    const opener = open(p);
    await until("the OPEN", () => ends.length === 1);
    opener.sendReset(ResetCode.Cancelled, "x".repeat(2000));
    await until("the reset", () => ends[0]!.reset !== undefined);
    assert.equal(ends[0]!.reset?.message?.length, 512);
  });

  test("when the link breaks, every stream on it is reset with code 5 and the link's reason", async () => {
    const { p, ends } = await pairWithEnds();
    const streams = [open(p), open(p), open(p)];
    await until("the OPENs", () => ends.length === 3);
    p.socketA.cut();
    await until("the resets", () => [...streams, ...ends].every((e) => e.reset !== undefined));
    for (const end of streams) assert.deepEqual(end.reset, { kind: "reset", code: ResetCode.LinkLost, message: "connection closed" });
    for (const end of ends) assert.deepEqual(end.reset, { kind: "reset", code: ResetCode.LinkLost, message: "the connection was reset by the remote site" });
    assert.equal(p.ownerA.down[0]?.wasUp, true);
    assert.equal(p.ownerB.down[0]?.wasUp, true);
  });
});

describe("link backpressure", () => {
  test("a link whose write buffer is full reports blocked, and waiters resume once it drains", async () => {
    const { p, ends } = await pairWithEnds({ autoRead: true });
    const sender = open(p);
    await until("the OPEN", () => ends.length === 1);
    p.socketB.pauseReading(); // the far side stops reading the link
    sender.write(Buffer.alloc(STREAM_WINDOW + 64 * 1024));
    assert.equal(p.a.blocked, true, "more than the high-water mark is queued");
    let resumed = 0;
    p.a.waitForDrain({ resumeFromLink: () => resumed++ });
    await settle();
    assert.equal(resumed, 0, "no drain while the peer does not read");
    p.socketB.resumeReading();
    await until("the waiter to be resumed", () => resumed === 1);
    assert.equal(p.a.blocked, false);
  });
});
