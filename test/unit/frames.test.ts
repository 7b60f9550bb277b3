/**
 * Link framing (src/router/frames.ts): encode/parse round trips, frames split across chunks and
 * packed into one chunk, and rejection of frames that break the protocol — by the parser (size)
 * and by the link session that consumes it (malformed payloads, frames out of order).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  encodeFrame,
  encodeHeader,
  FrameParser,
  FrameType,
  HEADER_SIZE,
  MAX_FRAME_PAYLOAD,
  PROTOCOL_VERSION,
  ResetCode,
} from "../../src/router/frames.js";
import { fakeSession as session, frame, goAwayReason, localHello, peerHello } from "../helpers/memory-link.js";
import { setLogLevel } from "../../src/common/log.js";

setLogLevel("error"); // the session logs protocol errors as warnings

type Event =
  | { kind: "frame"; type: number; stream: number; payload: string }
  | { kind: "data"; stream: number; payload: string }
  | { kind: "error"; message: string };

/**
 * Parses `chunks` and returns what was reported. Consecutive DATA pieces of one stream are joined
 * (the tests never send two DATA frames of one stream back to back), and counted.
 */
function parse(chunks: Buffer[]): { events: Event[]; pieces: number } {
  const events: Event[] = [];
  let pieces = 0;
  const parser = new FrameParser({
    onFrame: (type, stream, payload) => events.push({ kind: "frame", type, stream, payload: payload.toString("latin1") }),
    onData: (stream, piece) => {
      pieces++;
      const last = events[events.length - 1];
      if (last?.kind === "data" && last.stream === stream) last.payload += piece.toString("latin1");
      else events.push({ kind: "data", stream, payload: piece.toString("latin1") });
    },
    onProtocolError: (message) => events.push({ kind: "error", message }),
  });
  for (const chunk of chunks) parser.push(chunk);
  return { events, pieces };
}

/** Deterministic pseudo-random numbers, so a failing split can be reproduced. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function splitRandomly(bytes: Buffer, next: () => number, maxChunk: number): Buffer[] {
  const chunks: Buffer[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    const size = 1 + Math.floor(next() * maxChunk);
    chunks.push(bytes.subarray(offset, offset + size));
    offset += size;
  }
  return chunks;
}

describe("encoding", () => {
  test("the header is type, stream id (u32 BE), length (u32 BE)", () => {
    const header = encodeHeader(FrameType.Window, 0x01020304, 0x0a0b0c0d);
    assert.equal(header.length, HEADER_SIZE);
    assert.deepEqual([...header], [0x13, 1, 2, 3, 4, 0x0a, 0x0b, 0x0c, 0x0d]);
  });

  test("a frame without payload is just the header; with payload, header then payload (not copied)", () => {
    assert.deepEqual(encodeFrame(FrameType.Accept, 7).length, 1);
    assert.deepEqual(encodeFrame(FrameType.Accept, 7, Buffer.alloc(0)).length, 1);
    const payload = Buffer.from("hello");
    const parts = encodeFrame(FrameType.Hello, 0, payload);
    assert.equal(parts.length, 2);
    assert.equal(parts[1], payload);
    assert.equal(parts[0]?.readUInt32BE(5), 5);
  });
});

describe("round trips", () => {
  const controlTypes = Object.entries(FrameType).filter(([name]) => name !== "Data");
  for (const [name, type] of controlTypes) {
    test(`${name} frames, with and without payload`, () => {
      const payload = `{"frame":"${name}"}\u0000\u00ff`;
      const { events } = parse([frame(type, 0, payload), frame(type, 0xffffffff), frame(type, 42, "x")]);
      assert.deepEqual(events, [
        { kind: "frame", type, stream: 0, payload },
        { kind: "frame", type, stream: 0xffffffff, payload: "" },
        { kind: "frame", type, stream: 42, payload: "x" },
      ]);
    });
  }

  test("Data frames are delivered to onData, not onFrame", () => {
    const payload = Buffer.from(Array.from({ length: 300 }, (_, i) => i & 0xff));
    const { events } = parse([frame(FrameType.Data, 3, payload)]);
    assert.deepEqual(events, [{ kind: "data", stream: 3, payload: payload.toString("latin1") }]);
  });

  test("an empty Data frame reports nothing and does not disturb the next frame", () => {
    const { events } = parse([Buffer.concat([frame(FrameType.Data, 3), frame(FrameType.Fin, 3)])]);
    assert.deepEqual(events, [{ kind: "frame", type: FrameType.Fin, stream: 3, payload: "" }]);
  });

  test("Reset and Window payloads keep their binary layout", () => {
    const window = Buffer.alloc(4);
    window.writeUInt32BE(1 << 20);
    const reset = Buffer.concat([Buffer.from([ResetCode.NoConnector]), Buffer.from("no connector for backend")]);
    const { events } = parse([Buffer.concat([frame(FrameType.Window, 5, window), frame(FrameType.Reset, 5, reset)])]);
    assert.equal(events.length, 2);
    const [w, r] = events as Array<Extract<Event, { kind: "frame" }>>;
    assert.equal(Buffer.from(w!.payload, "latin1").readUInt32BE(0), 1 << 20);
    assert.equal(Buffer.from(r!.payload, "latin1")[0], ResetCode.NoConnector);
    assert.equal(Buffer.from(r!.payload, "latin1").toString("utf8", 1), "no connector for backend");
  });
});

describe("chunking", () => {
  const stream = [
    frame(FrameType.Hello, 0, JSON.stringify({ v: 1, siteId: "a" })),
    frame(FrameType.Open, 1, JSON.stringify({ key: "backend" })),
    frame(FrameType.Accept, 1),
    frame(FrameType.Data, 1, Buffer.alloc(70_000, 0x61)),
    frame(FrameType.Window, 1, Buffer.from([0, 1, 0, 0])),
    frame(FrameType.Data, 3, "tiny"),
    frame(FrameType.Fin, 1),
    frame(FrameType.Ping, 0, Buffer.alloc(8, 7)),
  ];
  const all = Buffer.concat(stream);
  const expected = parse(stream).events;

  test("the reference parse sees every frame", () => {
    assert.deepEqual(
      expected.map((e) => (e.kind === "frame" ? e.type : e.kind)),
      [FrameType.Hello, FrameType.Open, FrameType.Accept, "data", FrameType.Window, "data", FrameType.Fin, FrameType.Ping],
    );
    const big = expected[3] as Extract<Event, { kind: "data" }>;
    assert.equal(big.payload.length, 70_000);
  });

  test("all frames in one chunk", () => {
    assert.deepEqual(parse([all]).events, expected);
  });

  test("one byte at a time (headers split at every offset)", () => {
    const bytes = [...all].map((b) => Buffer.from([b]));
    const { events, pieces } = parse(bytes);
    assert.deepEqual(events, expected);
    assert.equal(pieces, 70_004, "DATA is passed on as it arrives, never buffered whole");
  });

  test("a DATA header that ends a chunk produces no empty piece", () => {
    // Regression: the parser used to hand onData a zero-length piece here, which a relay then
    // forwarded as an empty DATA frame.
    const data = frame(FrameType.Data, 1, "payload");
    const pieces: Buffer[] = [];
    const parser = new FrameParser({ onFrame: () => assert.fail("no frame"), onData: (_s, piece) => pieces.push(piece), onProtocolError: assert.fail });
    parser.push(data.subarray(0, HEADER_SIZE));
    assert.deepEqual(pieces, []);
    parser.push(data.subarray(HEADER_SIZE, HEADER_SIZE + 3));
    parser.push(data.subarray(HEADER_SIZE + 3));
    assert.deepEqual(pieces.map(String), ["pay", "load"]);
  });

  test("random splits, many seeds", () => {
    for (let seed = 1; seed <= 50; seed++) {
      const chunks = splitRandomly(all, random(seed), seed % 2 ? 20 : 5000);
      assert.deepEqual(parse(chunks).events, expected, `seed ${seed}`);
    }
  });

  test("a header split right after the type byte, and a payload split in the middle", () => {
    const hello = frame(FrameType.Hello, 0, "abcdef");
    const { events } = parse([hello.subarray(0, 1), hello.subarray(1, 12), hello.subarray(12)]);
    assert.deepEqual(events, [{ kind: "frame", type: FrameType.Hello, stream: 0, payload: "abcdef" }]);
  });

  test("an incomplete frame reports nothing until the rest arrives", () => {
    const hello = frame(FrameType.Hello, 0, "abcdef");
    const recorder: Event[] = [];
    const parser = new FrameParser({
      onFrame: (type, stream, payload) => recorder.push({ kind: "frame", type, stream, payload: payload.toString() }),
      onData: () => assert.fail("no data"),
      onProtocolError: (message) => recorder.push({ kind: "error", message }),
    });
    parser.push(hello.subarray(0, hello.length - 1));
    assert.deepEqual(recorder, []);
    parser.push(hello.subarray(hello.length - 1));
    assert.equal(recorder.length, 1);
  });
});

describe("rejection by the parser", () => {
  test("a frame larger than the limit is a protocol error naming both sizes, and parsing stops", () => {
    const oversize = encodeHeader(FrameType.Hello, 0, MAX_FRAME_PAYLOAD + 1);
    const { events } = parse([Buffer.concat([oversize, frame(FrameType.Ping, 0, "after")])]);
    assert.deepEqual(events, [{ kind: "error", message: `frame of ${MAX_FRAME_PAYLOAD + 1} bytes exceeds the limit of ${MAX_FRAME_PAYLOAD}` }]);
  });

  test("the limit applies to DATA frames and to headers split across chunks", () => {
    const header = encodeHeader(FrameType.Data, 1, 0xffffffff);
    const { events } = parse([header.subarray(0, 4), header.subarray(4), Buffer.from("more")]);
    assert.deepEqual(events, [{ kind: "error", message: `frame of ${0xffffffff} bytes exceeds the limit of ${MAX_FRAME_PAYLOAD}` }]);
  });

  test("a frame of exactly the limit is accepted", () => {
    const payload = Buffer.alloc(MAX_FRAME_PAYLOAD, 1);
    const { events } = parse([frame(FrameType.LinkState, 0, payload)]);
    assert.equal(events.length, 1);
    assert.equal(events[0]?.kind, "frame");
  });

  test("frame types the parser does not know are passed on (the session decides)", () => {
    const { events } = parse([frame(0x7f, 0, "future")]);
    assert.deepEqual(events, [{ kind: "frame", type: 0x7f, stream: 0, payload: "future" }]);
  });
});

// ---- the link session: malformed frames end the link with a reason ----

describe("rejection by the link session", () => {
  test("a valid handshake brings the link up (control case)", () => {
    const { socket, owner, link, feed } = session();
    assert.equal(socket.frames()[0]?.type, FrameType.Hello, "our hello goes out first");
    feed(frame(FrameType.Hello, 0, JSON.stringify(peerHello)));
    assert.equal(owner.up, 1);
    assert.equal(link.state, "up");
    assert.equal(link.peerSiteId, "site-peer");
    link.close("test over");
  });

  const cases: Array<[string, () => Buffer[], RegExp]> = [
    ["a handshake that is not JSON", () => [frame(FrameType.Hello, 0, "{not json")], /^protocol error: bad handshake: /],
    ["a handshake without a site id", () => [frame(FrameType.Hello, 0, JSON.stringify({ ...peerHello, siteId: "" }))], /^protocol error: bad handshake: "siteId" must be a non-empty string$/],
    ["a handshake with a non-numeric version", () => [frame(FrameType.Hello, 0, JSON.stringify({ ...peerHello, v: "1" }))], /^protocol error: bad handshake: "v" must be a number$/],
    ["a stream frame before the handshake", () => [frame(FrameType.Open, 2, "{}")], /^protocol error: stream frame before the link handshake completed$/],
    ["a link-state update before the handshake", () => [frame(FrameType.LinkState, 0, "{}")], /^protocol error: link-state update before handshake$/],
    ["an oversize frame", () => [encodeHeader(FrameType.Ping, 0, MAX_FRAME_PAYLOAD + 1)], /^protocol error: frame of \d+ bytes exceeds the limit of \d+$/],
    ["another protocol version", () => [frame(FrameType.Hello, 0, JSON.stringify({ ...peerHello, v: PROTOCOL_VERSION + 1 }))], /^link protocol version 2 is not supported \(this site speaks 1\)$/],
    ["a link to itself", () => [frame(FrameType.Hello, 0, JSON.stringify({ ...peerHello, siteId: localHello.siteId }))], /^a site cannot link to itself$/],
  ];
  for (const [label, frames, reason] of cases) {
    test(`${label} ends the link, telling the peer why`, () => {
      const { socket, owner, link, feed } = session();
      feed(...frames());
      assert.equal(link.state, "closed");
      assert.equal(owner.down.length, 1);
      assert.match(owner.down[0]!.reason, reason);
      assert.equal(goAwayReason(socket), owner.down[0]!.reason, "GOAWAY carries the reason");
      assert.equal(socket.ended, true);
      assert.equal(owner.up, 0);
    });
  }

  test("after the handshake: bad link-state JSON, a stream id of the wrong parity, and an identity change are protocol errors", () => {
    const reasons: string[] = [];
    const attempts: Buffer[] = [
      frame(FrameType.LinkState, 0, "{oops"),
      frame(FrameType.Open, 2, JSON.stringify({ key: "k", dest: "d", origin: "o", hops: 0 })), // the dialer opens odd ids only
      frame(FrameType.Hello, 0, JSON.stringify({ ...peerHello, siteId: "someone-else" })),
    ];
    for (const bad of attempts) {
      const { owner, link, feed } = session("acceptor");
      feed(frame(FrameType.Hello, 0, JSON.stringify(peerHello)));
      assert.equal(link.state, "up");
      feed(bad);
      assert.equal(link.state, "closed");
      assert.equal(owner.down[0]?.wasUp, true);
      reasons.push(owner.down[0]!.reason);
    }
    assert.match(reasons[0]!, /^protocol error: bad link-state update: /);
    assert.equal(reasons[1], "protocol error: stream id 2 is not valid for the remote site to open");
    assert.equal(reasons[2], "protocol error: the remote site changed its identity on an open link");
  });

  test("a malformed OPEN is refused with a RESET on that stream; the link stays up", () => {
    const { socket, owner, link, feed } = session("acceptor");
    feed(frame(FrameType.Hello, 0, JSON.stringify(peerHello)));
    feed(frame(FrameType.Open, 1, JSON.stringify({ dest: "d", origin: "o", hops: 0 })));
    assert.equal(link.state, "up");
    const reset = socket.frames().find((f) => f.type === FrameType.Reset && f.stream === 1);
    assert.ok(reset, "a RESET was sent for stream 1");
    assert.equal(reset.payload[0], ResetCode.ProtocolError);
    assert.equal(reset.payload.toString("utf8", 1), "bad OPEN: routing key missing");
    assert.deepEqual(owner.incoming, []);
    // A good OPEN on the next id is still accepted.
    feed(frame(FrameType.Open, 3, JSON.stringify({ key: "backend", dest: "d", origin: "o", hops: 0 })));
    assert.deepEqual(owner.incoming, [{ id: 3, key: "backend" }]);
    link.close("test over");
  });

  test("unknown frame types are ignored, for forward compatibility", () => {
    const { owner, link, feed } = session();
    feed(frame(FrameType.Hello, 0, JSON.stringify(peerHello)));
    // The session validates link-state updates itself, so this one must be a valid advert list.
    const adverts = [{ id: "x", name: "x", instance: 1, seq: 1, links: {}, rtt: {}, connectors: {}, listeners: {} }];
    feed(frame(0x7f, 0, "future control frame"), frame(0x7e, 2, "future stream frame"), frame(FrameType.LinkState, 0, JSON.stringify(adverts)));
    assert.equal(link.state, "up");
    assert.deepEqual(owner.states, [adverts], "frames after the unknown ones are still processed");
    link.close("test over");
  });
});
