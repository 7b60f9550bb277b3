/**
 * A stream relayed through an intermediate site (src/router/relay.ts): A ─ R ─ C on two memory
 * links, R joining the two stream ends with RelayEnd.pair as the router does. Covers the
 * buffering bound (at most one window per direction), FIN ordering and half-close, and
 * resets and link loss propagating across the relay.
 */
import assert from "node:assert/strict";
import { afterEach, describe, test } from "node:test";
import { setLogLevel } from "../../src/common/log.js";
import { FrameType, ResetCode, STREAM_WINDOW } from "../../src/router/frames.js";
import { RelayEnd } from "../../src/router/relay.js";
import type { LinkSession } from "../../src/router/session.js";
import type { OpenRequest } from "../../src/router/stream.js";
import { acceptInto, forgetSockets, request, sessionPair, settle, TestEndpoint, until, type SessionPair } from "../helpers/memory-link.js";

setLogLevel("error");

const MiB = 1024 * 1024;

interface Chain {
  /** A (dialer) ─ R (acceptor). */
  left: SessionPair;
  /** R (dialer) ─ C (acceptor). */
  right: SessionPair;
  /** Stream ends at C, one per relayed OPEN. */
  far: TestEndpoint[];
  /** Relay ends at R: [upstream (on the A link), downstream (on the C link)]. */
  relays: Array<[RelayEnd, RelayEnd]>;
  /** How often a relay reported itself done. */
  done: number;
  open(options?: { keep?: boolean }): Promise<{ near: TestEndpoint; far: TestEndpoint }>;
}

let chain: Chain | undefined;
afterEach(() => {
  chain?.left.close();
  chain?.right.close();
  chain = undefined;
  forgetSockets();
});

async function makeChain(options: { keep?: boolean } = {}): Promise<Chain> {
  const far: TestEndpoint[] = [];
  const relays: Array<[RelayEnd, RelayEnd]> = [];
  const right = await sessionPair({ siteA: "site-r", siteB: "site-c", onOpenB: acceptInto(far, { ...options, accept: false }) });
  const c: Chain = {
    left: undefined as unknown as SessionPair,
    right,
    far,
    relays,
    done: 0,
    async open(openOptions = {}) {
      const before = far.length;
      const near = new TestEndpoint(openOptions);
      c.left.a.openStream(near, request("backend", "site-c", "site-a"));
      await until("the relayed OPEN to reach C", () => far.length === before + 1);
      return { near, far: far[far.length - 1]! };
    },
  };
  // What the router does with an OPEN for another site (router.ts incomingStream).
  const relay = (session: LinkSession, id: number, req: OpenRequest) => {
    const [upstream, downstream] = RelayEnd.pair(() => c.done++);
    session.attach(id, upstream);
    right.a.openStream(downstream, { ...req, hops: req.hops - 1 });
    relays.push([upstream, downstream]);
  };
  c.left = await sessionPair({ siteA: "site-a", siteB: "site-r", onOpenB: relay });
  chain = c;
  return c;
}

describe("relaying a stream", () => {
  test("ACCEPT travels back and bytes flow both ways, with an id per hop", async () => {
    const c = await makeChain({ keep: true });
    const { near, far } = await c.open({ keep: true });
    const [upstream, downstream] = c.relays[0]!;
    assert.equal(upstream.id, 1);
    assert.equal(downstream.id, 1);
    const openAtC = c.right.socketA.tap.of(FrameType.Open)[0]!;
    assert.equal(JSON.parse(openAtC.payload!.toString()).hops, 31, "the OPEN goes on with one hop less");
    far.sendAccept();
    await until("ACCEPT at A", () => near.has("accept"));
    near.write("request");
    far.write("response");
    await until("both payloads", () => far.text === "request" && near.text === "response");
  });

  for (const direction of ["A to C", "C to A"] as const) {
    test(`${direction}: with a reader that stops, the relay buffers at most one window and the sender is held back`, async () => {
      const c = await makeChain();
      const ends = await c.open();
      const [sender, reader] = direction === "A to C" ? [ends.near, ends.far] : [ends.far, ends.near];
      // Taps on the hop into the relay and the hop out of it, in this direction.
      const [tapIn, tapOut] = direction === "A to C" ? [c.left.socketA.tap, c.right.socketA.tap] : [c.right.socketB.tap, c.left.socketB.tap];
      const [idIn, idOut] = direction === "A to C" ? [c.relays[0]![0].id, c.relays[0]![1].id] : [c.relays[0]![1].id, c.relays[0]![0].id];
      sender.write(Buffer.alloc(5 * MiB, 3));
      await settle();
      const into = tapIn.data(idIn);
      const out = tapOut.data(idOut);
      assert.equal(out, STREAM_WINDOW, "the reader got exactly its window");
      assert.equal(reader.received, STREAM_WINDOW);
      assert.ok(into - out <= STREAM_WINDOW, `the relay holds ${into - out} bytes, at most one window (${STREAM_WINDOW})`);
      assert.equal(sender.backlog, 5 * MiB - into, "the rest waits at the sender");
      assert.ok(sender.backlog >= 5 * MiB - 2 * STREAM_WINDOW);

      // The reader resumes: everything arrives, in order, and nothing is lost at the relay.
      const reading = setInterval(() => reader.consume(), 1);
      try {
        await until("all 5 MiB", () => reader.received === 5 * MiB);
      } finally {
        clearInterval(reading);
      }
      assert.equal(tapIn.data(idIn), 5 * MiB);
    });
  }

  test("with the next link stalled, what the relay holds for a stream stays bounded (two windows: its queue and the link's buffer)", async () => {
    const c = await makeChain();
    const { near, far } = await c.open();
    c.right.socketB.pauseReading();
    near.write(Buffer.alloc(5 * MiB, 3));
    await settle();
    const into = c.left.socketA.tap.data(c.relays[0]![0].id);
    assert.ok(into - far.received <= 2 * STREAM_WINDOW, `the relay holds ${into - far.received} bytes`);
    assert.ok(near.backlog >= 5 * MiB - 2 * STREAM_WINDOW, "the sender is held back");
    c.right.socketB.resumeReading();
    const reading = setInterval(() => far.consume(), 1);
    try {
      await until("all 5 MiB", () => far.received === 5 * MiB);
    } finally {
      clearInterval(reading);
    }
  });

  test("the relay never stops reading its links: a stalled stream does not hold up another one relayed on the same links", async () => {
    const c = await makeChain();
    const stalled = await c.open();
    const flowing = await c.open();
    stalled.near.write(Buffer.alloc(3 * MiB));
    flowing.near.write(Buffer.alloc(3 * MiB));
    const reading = setInterval(() => flowing.far.consume(), 1);
    try {
      await until("the flowing stream to finish", () => flowing.far.received === 3 * MiB);
    } finally {
      clearInterval(reading);
    }
    await settle();
    assert.equal(stalled.far.received, STREAM_WINDOW);
  });
});

describe("half-close through a relay", () => {
  for (const first of ["A", "C"] as const) {
    test(`FIN from ${first} reaches the far end; the other direction stays open until its own FIN`, async () => {
      const c = await makeChain({ keep: true });
      const { near, far } = await c.open({ keep: true });
      const [closer, other] = first === "A" ? [near, far] : [far, near];
      closer.write("bye");
      closer.end();
      await until("the FIN", () => other.has("fin"));
      assert.equal(other.text, "bye");
      assert.equal(c.done, 0, "the relay is still in use");
      other.write("still here");
      await until("the reply", () => closer.text === "still here");
      other.end();
      await until("the second FIN", () => closer.has("fin"));
      assert.equal(c.done, 1, "the relay is done once, when both directions ended");
      for (const s of [c.left.a, c.left.b, c.right.a, c.right.b]) assert.equal(s.streams.size, 0);
    });
  }

  test("a FIN waiting behind buffered data is sent only after that data", async () => {
    const c = await makeChain();
    const { near, far } = await c.open();
    near.write(Buffer.alloc(STREAM_WINDOW + 100_000));
    near.end();
    await settle();
    assert.equal(far.received, STREAM_WINDOW);
    assert.equal(far.has("fin"), false, "the FIN does not overtake the data held at the relay");
    far.consume();
    await until("the FIN", () => far.has("fin"));
    assert.equal(far.received, STREAM_WINDOW + 100_000);
  });
});

describe("reset through a relay", () => {
  for (const from of ["A", "C"] as const) {
    test(`a RESET from ${from} reaches the other end with its code and reason, and the relay forgets the stream`, async () => {
      const c = await makeChain();
      const { near, far } = await c.open();
      const [resetter, other] = from === "A" ? [near, far] : [far, near];
      resetter.sendReset(ResetCode.Cancelled, "the local connection failed");
      await until("the reset", () => other.reset !== undefined);
      assert.deepEqual(other.reset, { kind: "reset", code: ResetCode.Cancelled, message: "the local connection failed" });
      assert.equal(c.done, 1);
      for (const s of [c.left.a, c.left.b, c.right.a, c.right.b]) assert.equal(s.streams.size, 0);
    });
  }

  test("a reset drops what the relay was holding", async () => {
    const c = await makeChain();
    const { near, far } = await c.open();
    near.write(Buffer.alloc(2 * STREAM_WINDOW));
    await settle();
    far.sendReset(ResetCode.BackendFailed, "gone");
    await until("the reset at A", () => near.reset !== undefined);
    assert.equal(near.reset?.code, ResetCode.BackendFailed);
    await settle();
    assert.equal(far.received, STREAM_WINDOW, "nothing more was forwarded after the reset");
  });

  test("a flow-control violation on one hop resets the stream on the other hop too", async () => {
    const c = await makeChain();
    const { near, far } = await c.open();
    // A sends its window; the relay forwards it to C (not reading) and returns credit to A as it
    // does. A then sends exactly what it was granted (fine), then one byte more (a violation).
    near.write(Buffer.alloc(STREAM_WINDOW));
    await settle();
    const granted = c.left.socketB.tap.of(FrameType.Window, near.id).reduce((n, f) => n + f.payload!.readUInt32BE(0), 0);
    assert.ok(granted > 0, "the relay returned credit for what it forwarded");
    assert.equal(near.sendCredit, granted);
    near.writeIgnoringCredit(Buffer.alloc(granted));
    await settle();
    assert.equal(near.has("reset"), false, "exactly the credit granted is fine");
    near.writeIgnoringCredit(Buffer.alloc(1));
    await until("both ends reset", () => near.reset !== undefined && far.reset !== undefined);
    assert.equal(near.reset?.code, ResetCode.FlowControl);
    assert.equal(far.reset?.code, ResetCode.FlowControl);
    assert.equal(near.reset?.message, "flow-control window exceeded");
    assert.equal(far.received, STREAM_WINDOW, "what the relay held is dropped, not forwarded");
  });

  for (const broken of ["A ─ R", "R ─ C"] as const) {
    test(`when the link ${broken} breaks, the relay resets the stream on the other link with code 5`, async () => {
      const c = await makeChain();
      const { near, far } = await c.open();
      const [cut, survivor] = broken === "A ─ R" ? [c.left.socketA, far] : [c.right.socketB, near];
      const other = survivor === far ? near : far;
      cut.cut();
      await until("resets on both ends", () => near.reset !== undefined && far.reset !== undefined);
      assert.equal(survivor.reset?.code, ResetCode.LinkLost);
      assert.match(survivor.reset?.message ?? "", /connection (closed|was reset)/, "with the broken link's reason");
      assert.equal(other.reset?.code, ResetCode.LinkLost);
      assert.equal(c.done, 1);
      const alive = broken === "A ─ R" ? c.right : c.left;
      assert.equal(alive.a.state, "up", "the other link stays up");
      assert.equal(alive.a.streams.size + alive.b.streams.size, 0);
    });
  }
});
