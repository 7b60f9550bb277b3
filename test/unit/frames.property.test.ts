/**
 * Property-based tests of the frame parser (src/router/frames.ts) and of a link session fed
 * arbitrary frames, with fast-check. Runs are bounded in number and time so the file stays well
 * under 5 s. The seed is fixed so a run is reproducible; set FC_SEED=<n> to explore others (a
 * failure prints the seed and the shrunk counterexample).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { setLogLevel } from "../../src/common/log.js";
import { encodeFrame, encodeHeader, FrameParser, FrameType, MAX_FRAME_PAYLOAD } from "../../src/router/frames.js";
import { fakeSession, frame, peerHello } from "../helpers/memory-link.js";

setLogLevel("error");

const seed = process.env.FC_SEED ? Number(process.env.FC_SEED) : 0x5eed7;
/** Each property: a bounded number of runs, and never more than this much time. */
const limits = (numRuns: number, timeMs = 800): fc.Parameters<unknown> => ({
  numRuns,
  seed,
  plugins: [fc.interruptAfterTimeLimit(timeMs)],
});

interface Frame {
  type: number;
  stream: number;
  payload: Uint8Array;
}

/** What a parser reported, with DATA pieces of consecutive frames on one stream joined. */
type Event = { kind: "frame"; type: number; stream: number; payload: Buffer } | { kind: "data"; stream: number; payload: Buffer } | { kind: "error"; message: string };

function parse(chunks: Buffer[]): { events: Event[]; emptyPieces: number } {
  const events: Event[] = [];
  const pieces: Buffer[][] = [];
  let emptyPieces = 0;
  const parser = new FrameParser({
    onFrame: (type, stream, payload) => events.push({ kind: "frame", type, stream, payload: Buffer.from(payload) }),
    onData: (stream, piece) => {
      if (piece.length === 0) emptyPieces++;
      const last = events[events.length - 1];
      if (last?.kind === "data" && last.stream === stream) pieces[events.length - 1]!.push(piece);
      else {
        pieces[events.length] = [piece];
        events.push({ kind: "data", stream, payload: Buffer.alloc(0) });
      }
    },
    onProtocolError: (message) => events.push({ kind: "error", message }),
  });
  for (const chunk of chunks) parser.push(chunk);
  events.forEach((e, i) => {
    if (e.kind === "data") e.payload = Buffer.concat(pieces[i]!);
  });
  return { events, emptyPieces };
}

/** The events a correct parser reports for `frames` (empty DATA frames report nothing). */
function expectedEvents(frames: Frame[]): Event[] {
  const events: Event[] = [];
  for (const f of frames) {
    const payload = Buffer.from(f.payload);
    if (f.type !== FrameType.Data) {
      events.push({ kind: "frame", type: f.type, stream: f.stream, payload });
      continue;
    }
    if (payload.length === 0) continue;
    const last = events[events.length - 1];
    if (last?.kind === "data" && last.stream === f.stream) last.payload = Buffer.concat([last.payload, payload]);
    else events.push({ kind: "data", stream: f.stream, payload });
  }
  return events;
}

const encode = (frames: Frame[]): Buffer => Buffer.concat(frames.flatMap((f) => encodeFrame(f.type, f.stream, Buffer.from(f.payload))));

/** Cuts `bytes` at the given offsets (taken modulo its length). */
function split(bytes: Buffer, cuts: number[]): Buffer[] {
  if (bytes.length === 0) return [bytes];
  const offsets = [...new Set(cuts.map((c) => c % bytes.length))].filter((c) => c > 0).sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let start = 0;
  for (const offset of [...offsets, bytes.length]) {
    chunks.push(bytes.subarray(start, offset));
    start = offset;
  }
  return chunks;
}

const knownTypes = Object.values(FrameType) as number[];
const frameArb: fc.Arbitrary<Frame> = fc.record({
  // Mostly the protocol's types, DATA often, sometimes a type from the future.
  type: fc.oneof({ weight: 3, arbitrary: fc.constant(FrameType.Data as number) }, { weight: 4, arbitrary: fc.constantFrom(...knownTypes) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) }),
  stream: fc.oneof(fc.integer({ min: 0, max: 4 }), fc.constant(0xffffffff), fc.nat()),
  payload: fc.oneof(
    { weight: 6, arbitrary: fc.uint8Array({ maxLength: 40 }) },
    { weight: 2, arbitrary: fc.uint8Array({ minLength: 1000, maxLength: 3000 }) },
    // Larger than one 64 KiB read, so a frame spans many chunks.
    { weight: 1, arbitrary: fc.integer({ min: 65_000, max: 100_000 }).map((n) => new Uint8Array(n).fill(n & 0xff)) },
  ),
});
const smallFrameArb = frameArb.filter((f) => f.payload.length < 5000);
const cutsArb = fc.array(fc.nat(), { maxLength: 40 });

describe("frame parser properties", () => {
  test("any sequence of valid frames, split at any points, parses to the same frames", () => {
    fc.assert(
      fc.property(fc.array(frameArb, { maxLength: 12 }), cutsArb, (frames, cuts) => {
        const { events, emptyPieces } = parse(split(encode(frames), cuts));
        assert.deepEqual(events, expectedEvents(frames));
        assert.equal(emptyPieces, 0, "no empty DATA piece is handed on");
      }),
      limits(200),
    );
  });

  test("byte by byte gives the same result as one chunk", () => {
    fc.assert(
      fc.property(fc.array(smallFrameArb, { maxLength: 6 }), (frames) => {
        const bytes = encode(frames);
        const whole = parse([bytes]).events;
        assert.deepEqual(whole, expectedEvents(frames));
        assert.deepEqual(parse([...bytes].map((b) => Buffer.from([b]))).events, whole);
      }),
      limits(100),
    );
  });

  test("arbitrary bytes never throw: they yield frames, then at most one protocol error, the same whatever the chunking", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), cutsArb, (raw, cuts) => {
        const bytes = Buffer.from(raw);
        const whole = parse([bytes]).events;
        const errors = whole.filter((e) => e.kind === "error");
        assert.ok(errors.length <= 1, "one protocol error at most");
        if (errors.length === 1) assert.equal(whole[whole.length - 1]?.kind, "error", "nothing is reported after the error");
        assert.deepEqual(parse(split(bytes, cuts)).events, whole);
      }),
      limits(500),
    );
  });

  test("a length over the limit is refused with one protocol error naming it, after the frames before it; nothing after", () => {
    fc.assert(
      fc.property(
        fc.array(smallFrameArb, { maxLength: 5 }),
        fc.integer({ min: 0, max: 255 }),
        fc.nat(),
        fc.integer({ min: MAX_FRAME_PAYLOAD + 1, max: 0xffffffff }),
        fc.uint8Array({ maxLength: 200 }),
        cutsArb,
        (before, type, stream, length, after, cuts) => {
          const bytes = Buffer.concat([encode(before), encodeHeader(type, stream, length), Buffer.from(after)]);
          const { events } = parse(split(bytes, cuts));
          assert.deepEqual(events, [...expectedEvents(before), { kind: "error", message: `frame of ${length} bytes exceeds the limit of ${MAX_FRAME_PAYLOAD}` }]);
        },
      ),
      limits(300),
    );
  });

  test("a length within the limit is not refused: the parser waits for the payload", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 255 }),
        fc.nat(),
        fc.oneof(fc.constantFrom(1, MAX_FRAME_PAYLOAD), fc.integer({ min: 1, max: MAX_FRAME_PAYLOAD })),
        fc.uint8Array({ maxLength: 500 }),
        (type, stream, length, partial) => {
        const body = Buffer.from(partial.subarray(0, Math.min(partial.length, length - 1)));
        const { events } = parse([encodeHeader(type, stream, length), body]);
        assert.equal(events.filter((e) => e.kind !== "data").length, 0, "no error and no complete frame yet");
        },
      ),
      limits(300),
    );
  });
});

describe("link session fed arbitrary frames", () => {
  const streamTypes = [FrameType.Open, FrameType.Accept, FrameType.Data, FrameType.Window, FrameType.Fin, FrameType.Reset];
  const sessionFrameArb = fc.oneof(
    fc.record({
      type: fc.constantFrom(...streamTypes, 0x7e),
      stream: fc.integer({ min: 1, max: 6 }),
      payload: fc.oneof(
        fc.uint8Array({ maxLength: 64 }),
        fc.constantFrom(
          ...[
            { key: "k", dest: "d", origin: "o", hops: 3 },
            { key: "", dest: "d", origin: "o", hops: 3 },
            { key: "k", dest: 1, origin: "o", hops: 3 },
            { key: "k", dest: "d", origin: "o", hops: 1.5 },
          ].map((o) => new Uint8Array(Buffer.from(JSON.stringify(o)))),
          new Uint8Array([0, 1, 0, 0]),
        ),
      ),
    }),
    fc.record({
      type: fc.constantFrom(FrameType.Ping, FrameType.Pong, FrameType.LinkState, FrameType.Traffic, FrameType.GoAway, FrameType.Hello, 0x7f),
      stream: fc.constant(0),
      payload: fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.constantFrom(new Uint8Array(Buffer.from("[]")), new Uint8Array(Buffer.from(JSON.stringify(peerHello))))),
    }),
  );

  test("never throws; the link either stays up or closes once, with a reason", () => {
    fc.assert(
      fc.property(fc.constantFrom("dialer" as const, "acceptor" as const), fc.array(sessionFrameArb, { maxLength: 30 }), cutsArb, (role, frames, cuts) => {
        const { owner, link, feed, socket } = fakeSession(role);
        feed(frame(FrameType.Hello, 0, JSON.stringify(peerHello)));
        assert.equal(link.state, "up");
        for (const chunk of split(encode(frames), cuts)) socket.emit("data", chunk);
        if (link.state === "up") assert.equal(owner.down.length, 0);
        else {
          assert.equal(owner.down.length, 1, "closed exactly once");
          assert.ok(owner.down[0]!.reason.length > 0);
        }
        // Whatever was written back is well-formed.
        socket.frames();
        link.close("test over");
      }),
      limits(300),
    );
  });

  test("frames before the handshake never bring the link up and never reach the owner", () => {
    fc.assert(
      fc.property(fc.array(sessionFrameArb.filter((f) => f.type !== FrameType.Hello), { minLength: 1, maxLength: 10 }), (frames) => {
        const { owner, link, socket } = fakeSession("acceptor");
        socket.emit("data", encode(frames));
        assert.equal(owner.up, 0);
        assert.deepEqual(owner.incoming, []);
        assert.deepEqual(owner.states, []);
        link.close("test over");
      }),
      limits(200),
    );
  });
});
