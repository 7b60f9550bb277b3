/**
 * What a client of the link port can hold (issue 7, items 1, 3 and 15): connections that never
 * finish TLS or HELLO are closed at their deadline, idle ones cannot lock out a real link, an
 * authenticated link that goes quiet is closed by the heartbeat, control frames cannot be used to
 * grow the listening site's memory, and a local failure in link-state handling is not blamed on
 * the peer. Socket behaviour is tested with real TLS on 127.0.0.1; frame handling with an
 * in-memory socket.
 */
import "reflect-metadata";
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { readFileSync } from "node:fs";
import net from "node:net";
import { after, before, describe, test } from "node:test";
import tls from "node:tls";
import { createCA, issueCertificate, type Credentials } from "../../src/certs/index.js";
import { setLogLevel, setLogSink } from "../../src/common/log.js";
import { UnauthenticatedConnectionLimiter } from "../../src/common/connection-limiter.js";
import { encodeFrame, FrameParser, FrameType, HEADER_SIZE, PROTOCOL_VERSION } from "../../src/router/frames.js";
import {
  DEFAULT_LINK_SERVER_LIMITS,
  LINK_ALPN,
  LinkServer,
  type IncomingConnection,
  type LinkServerHost,
  type LinkServerLimits,
} from "../../src/router/links.js";
import { RelayEnd } from "../../src/router/relay.js";
import { Router } from "../../src/router/router.js";
import {
  DEAD_AFTER_MS,
  DEFAULT_HELLO_TIMEOUT_MS,
  LinkSession,
  MAX_PING_PAYLOAD,
  MAX_QUEUED_CONTROL_REPLY_BYTES,
  MAX_UNSENT_LINK_BYTES,
  type Hello,
  type SessionOwner,
} from "../../src/router/session.js";
import type { LinkStateAdvert } from "../../src/router/routing.js";

const logLines: string[] = [];
setLogSink((line) => logLines.push(line));
setLogLevel("warn");

const LISTENING_SITE = "11111111-1111-4111-8111-111111111111";
const DIALING_SITE = "22222222-2222-4222-8222-222222222222";

let siteCa: Credentials;
let serverCert: Credentials;
let clientCert: Credentials;

before(async () => {
  siteCa = await createCA("listening site CA");
  [serverCert, clientCert] = await Promise.all([
    issueCertificate(siteCa, { commonName: "skupper-router", hosts: ["127.0.0.1"], usage: "server", siteId: LISTENING_SITE }),
    issueCertificate(siteCa, { commonName: "dialer", usage: "client", siteId: DIALING_SITE }),
  ]);
});

// ---- helpers ----

/** Rejects after `ms` with a message naming what was awaited, so no wait is unbounded. */
function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Resolves when the socket closes. */
function closed(socket: net.Socket): Promise<void> {
  return socket.destroyed && socket.closed ? Promise.resolve() : new Promise((resolve) => socket.once("close", () => resolve()));
}

async function until(what: string, ms: number, condition: () => boolean): Promise<void> {
  await within(
    ms,
    what,
    (async () => {
      while (!condition()) await new Promise((resolve) => setTimeout(resolve, 20));
    })(),
  );
}

function rawConnect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: "127.0.0.1" });
    socket.once("connect", () => {
      socket.removeListener("error", reject);
      socket.on("error", () => undefined); // the server closing it is what the tests expect
      resolve(socket);
    });
    socket.once("error", reject);
  });
}

function tlsConnect(port: number, credentials: Credentials = clientCert): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      port,
      host: "127.0.0.1",
      ca: siteCa.cert,
      cert: credentials.cert,
      key: credentials.key,
      ALPNProtocols: [LINK_ALPN],
      minVersion: "TLSv1.3",
    });
    socket.once("secureConnect", () => {
      socket.removeListener("error", reject);
      socket.on("error", () => undefined);
      resolve(socket);
    });
    socket.once("error", reject);
  });
}

const frame = (type: number, stream: number, payload?: Buffer): Buffer => Buffer.concat(encodeFrame(type, stream, payload));

function helloFrame(siteId: string): Buffer {
  const hello: Hello = { v: PROTOCOL_VERSION, siteId, siteName: "dialer", instance: Date.now(), version: "test", window: 1 << 20 };
  return frame(FrameType.Hello, 0, Buffer.from(JSON.stringify(hello)));
}

/** A link server whose sessions the test can look at, with limits of its choosing. */
class SessionRecorder implements LinkServerHost, SessionOwner {
  readonly sessions: LinkSession[] = [];
  readonly down: Array<{ reason: string; unsentAtClose: number }> = [];
  readonly server = new LinkServer(this);

  async listen(limits: Partial<LinkServerLimits> = {}): Promise<number> {
    await this.server.configure({ host: "127.0.0.1", port: 0, credentials: { ca: siteCa.cert, cert: serverCert.cert, key: serverCert.key }, limits });
    return this.server.port as number;
  }

  acceptSession(socket: tls.TLSSocket, incoming: IncomingConnection): void {
    const hello: Hello = { v: PROTOCOL_VERSION, siteId: LISTENING_SITE, siteName: "listening", instance: 1, version: "test", window: 1 << 20 };
    const session = new LinkSession(socket, "acceptor", hello, this, "test incoming", {
      helloTimeoutMs: incoming.helloTimeoutMs,
      onHandshakeComplete: incoming.authenticated,
    });
    this.sessions.push(session);
    session.start();
  }

  sessionUp(): void {}
  sessionDown(session: LinkSession, reason: string): void {
    this.down.push({ reason, unsentAtClose: session.socket.writableLength });
  }
  sessionUpdated(): void {}
  incomingStream(): void {}
  linkState(): void {}

  async close(): Promise<void> {
    for (const session of this.sessions) session.close("test over");
    await this.server.close();
  }
}

// ---- item 1: every connection to the link port is bounded in time and number ----

describe("link port: unauthenticated connections", () => {
  const recorder = new SessionRecorder();
  let port: number;
  const limits = { handshakeTimeoutMs: 400, helloTimeoutMs: 400 };

  before(async () => {
    port = await recorder.listen(limits);
  });
  after(() => recorder.close());

  test("a TCP connection that sends nothing is closed at the TLS handshake deadline", async () => {
    const socket = await rawConnect(port);
    const started = Date.now();
    await within(limits.handshakeTimeoutMs + 2_000, "the server closing the silent connection", closed(socket));
    assert.ok(Date.now() - started >= limits.handshakeTimeoutMs - 50, "not before the deadline");
    assert.ok(logLines.some((l) => l.includes("the TLS handshake did not finish within 400 ms")), "the reason is logged");
  });

  test("trickling bytes does not extend the TLS handshake deadline (it counts from accept)", async () => {
    const socket = await rawConnect(port);
    const started = Date.now();
    // The start of a ClientHello record, one byte at a time: each byte resets an idle timer.
    const clientHelloStart = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03];
    let next = 0;
    const trickle = setInterval(() => {
      if (!socket.destroyed) socket.write(Buffer.from([clientHelloStart[next++ % clientHelloStart.length] as number]));
    }, 50);
    try {
      await within(limits.handshakeTimeoutMs + 2_000, "the server closing the trickling connection", closed(socket));
    } finally {
      clearInterval(trickle);
    }
    assert.ok(Date.now() - started < limits.handshakeTimeoutMs + 1_000);
  });

  test("a client that finishes TLS but never completes HELLO is closed at the HELLO deadline", async () => {
    const socket = await tlsConnect(port);
    const started = Date.now();
    // A byte at a time of a frame header: enough to look alive to the heartbeat, never a HELLO.
    const trickle = setInterval(() => {
      if (!socket.destroyed) socket.write(Buffer.from([FrameType.Hello]));
    }, 50);
    try {
      await within(limits.helloTimeoutMs + 2_000, "the server closing the connection without HELLO", closed(socket));
    } finally {
      clearInterval(trickle);
    }
    assert.ok(Date.now() - started >= limits.helloTimeoutMs - 50, "not before the deadline");
    assert.equal(recorder.server.unauthenticatedConnections, 0, "nothing is left counted");
  });

  test("a connection that completes HELLO stops counting as unauthenticated", async () => {
    const socket = await tlsConnect(port);
    socket.write(helloFrame(DIALING_SITE));
    await until("the link to come up", 2_000, () => recorder.sessions.some((s) => s.state === "up"));
    assert.equal(recorder.server.unauthenticatedConnections, 0);
    socket.destroy();
  });
});

describe("link port: too many unauthenticated connections", () => {
  const recorder = new SessionRecorder();
  let port: number;
  const idle: net.Socket[] = [];

  before(async () => {
    port = await recorder.listen(); // the default limits: 10 s deadlines, 64 pending connections
  });
  after(async () => {
    for (const socket of idle) socket.destroy();
    await recorder.close();
  });

  test("100 idle connections hold at most 64 descriptors, and a real link still comes up at once", async () => {
    const cap = DEFAULT_LINK_SERVER_LIMITS.maxUnauthenticatedConnections;
    const closedCount = { value: 0 };
    for (let i = 0; i < 100; i++) {
      const socket = await rawConnect(port);
      socket.once("close", () => closedCount.value++);
      idle.push(socket);
    }
    await until(`${100 - cap} idle connections to be closed`, 5_000, () => closedCount.value >= 100 - cap);
    assert.ok(recorder.server.unauthenticatedConnections <= cap);
    const started = Date.now();
    const socket = await within(5_000, "a TLS connection despite the idle ones", tlsConnect(port));
    socket.write(helloFrame(DIALING_SITE));
    await until("the real link to come up", 5_000, () => recorder.sessions.some((s) => s.state === "up"));
    assert.ok(Date.now() - started < DEFAULT_LINK_SERVER_LIMITS.handshakeTimeoutMs, "it did not wait for the idle ones to time out");
    assert.ok(recorder.server.unauthenticatedConnections <= cap);
    socket.destroy();
  });
});

describe("the connection limiter (src/common)", () => {
  test("it evicts the oldest pending connection when full, and forgets closed and authenticated ones", async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as net.AddressInfo).port;
    const evicted: string[] = [];
    const limiter = new UnauthenticatedConnectionLimiter({ maxConnections: 2, timeoutMs: 60_000 }, { evicted: (_s, reason) => evicted.push(reason) });
    const accepted: net.Socket[] = [];
    server.on("connection", (socket) => accepted.push(socket));
    const clients = [await rawConnect(port), await rawConnect(port), await rawConnect(port)];
    await until("three accepted connections", 2_000, () => accepted.length === 3);
    const [first, second, third] = accepted as [net.Socket, net.Socket, net.Socket];
    limiter.admit(first);
    const secondPending = limiter.admit(second);
    limiter.admit(third);
    assert.equal(limiter.pending, 2);
    assert.equal(first.destroyed, true, "the oldest was closed to make room");
    assert.match(evicted[0] ?? "", /^2 connections were already waiting to authenticate; the oldest was closed$/);
    secondPending.authenticated();
    assert.equal(limiter.pending, 1);
    assert.equal(second.destroyed, false, "an authenticated connection is left alone");
    third.destroy();
    await until("the closed connection to be forgotten", 2_000, () => limiter.pending === 0);
    for (const client of clients) client.destroy();
    second.destroy();
    server.close();
  });
});

describe("link port: authenticated links", () => {
  const recorder = new SessionRecorder();
  let port: number;

  before(async () => {
    port = await recorder.listen();
  });
  after(() => recorder.close());

  test("an authenticated link that goes silent is closed by the heartbeat within 3 s", async () => {
    const socket = await tlsConnect(port);
    socket.resume(); // reads what the server sends, sends nothing after HELLO
    socket.write(helloFrame(DIALING_SITE));
    await until("the link to come up", 2_000, () => recorder.sessions.some((s) => s.state === "up"));
    const started = Date.now();
    await within(DEAD_AFTER_MS + 2_000, "the heartbeat closing the silent link", closed(socket));
    // The bound is 3 s (DEAD_AFTER_MS plus one 500 ms tick); the rest is slack for a loaded machine.
    assert.ok(Date.now() - started <= 3_000 + 500, `closed after ${Date.now() - started} ms`);
    assert.match(recorder.down.at(-1)?.reason ?? "", /^no heartbeat from the remote site for \d s$/);
  });

  test("a stall of this process is not taken for a silent peer: what arrived meanwhile counts", async () => {
    const socket = await tlsConnect(port);
    socket.resume();
    socket.write(helloFrame(DIALING_SITE));
    await until("the link to come up", 2_000, () => recorder.sessions.some((s) => s.state === "up" && !s.closeReason));
    const session = recorder.sessions.find((s) => s.state === "up" && !s.closeReason) as LinkSession;
    // A heartbeat tick takes in what the HELLO brought; the peer then sends a PING, and this
    // process stalls for longer than the heartbeat allows: the PING waits unread while the
    // heartbeat timer comes due.
    await new Promise((resolve) => setTimeout(resolve, 700));
    socket.write(frame(FrameType.Ping, 0, Buffer.alloc(8)));
    const stalledUntil = Date.now() + DEAD_AFTER_MS + 1_000;
    while (Date.now() < stalledUntil) {
      // busy: no timers, no reads
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(session.state, "up", `the link was closed: ${session.closeReason}`);
    socket.destroy();
  });

  test("a peer that sends PINGs but never reads the replies is dropped; the unsent bytes stay bounded", async () => {
    const socket = await tlsConnect(port);
    socket.write(helloFrame(DIALING_SITE));
    await until("the link to come up", 2_000, () => recorder.sessions.some((s) => s.state === "up" && !s.closeReason));
    socket.pause(); // never read again: the server's replies pile up
    const batch = Buffer.concat(Array.from({ length: 1_000 }, () => frame(FrameType.Ping, 0, Buffer.alloc(MAX_PING_PAYLOAD, 1))));
    let sending = true;
    const gone = closed(socket).then(() => {
      sending = false;
    });
    const flood = (async () => {
      while (sending) {
        if (!socket.write(batch)) await Promise.race([new Promise((resolve) => socket.once("drain", resolve)), gone]);
      }
    })();
    await within(20_000, "the server dropping the peer that does not read", gone);
    await flood;
    const drop = recorder.down.find((d) => d.reason.startsWith("the remote site does not read the replies to its control frames"));
    assert.ok(drop, `dropped for the right reason (saw: ${recorder.down.map((d) => d.reason).join("; ")})`);
    assert.ok(drop.unsentAtClose <= MAX_QUEUED_CONTROL_REPLY_BYTES + HEADER_SIZE + MAX_PING_PAYLOAD, `unsent bytes at the drop: ${drop.unsentAtClose}`);
    assert.ok(logLines.some((l) => l.includes("dropping the link: the remote site does not read the replies")), "the reason is logged");
  });
});

describe("the documented limits", () => {
  const doc = readFileSync(new URL("../../../docs/link-protocol.md", import.meta.url), "utf8");
  const row = (name: string) => new RegExp(`^\\| ${name} \\| ([^|]+) \\|`, "m").exec(doc)?.[1]?.trim();

  test("docs/link-protocol.md states the limits the code applies", () => {
    assert.equal(row("TLS handshake timeout"), `${DEFAULT_LINK_SERVER_LIMITS.handshakeTimeoutMs / 1000} s from accept`);
    assert.equal(row("HELLO timeout"), `${DEFAULT_HELLO_TIMEOUT_MS / 1000} s from the end of the TLS handshake`);
    assert.equal(row("unauthenticated connections"), `${DEFAULT_LINK_SERVER_LIMITS.maxUnauthenticatedConnections} per link port`);
    assert.equal(DEFAULT_LINK_SERVER_LIMITS.helloTimeoutMs, DEFAULT_HELLO_TIMEOUT_MS);
    assert.equal(row("PING payload"), `at most ${MAX_PING_PAYLOAD} bytes`);
    assert.equal(row("queued control replies"), `${MAX_QUEUED_CONTROL_REPLY_BYTES / 1024} KiB`);
    assert.equal(row("unsent bytes on a link"), `${MAX_UNSENT_LINK_BYTES / (1024 * 1024)} MiB`);
    assert.equal(row("dead after"), `${DEAD_AFTER_MS / 1000} s without receiving any byte`);
  });
});

// ---- frame handling, with an in-memory socket ----

/** Just enough of a TLS socket for LinkSession; what is written stays "unsent" until taken. */
class MemorySocket extends EventEmitter {
  readonly written: Buffer[] = [];
  writableLength = 0;
  readonly writableHighWaterMark = 1024 * 1024;
  /** The session writes the frames of a turn when the turn ends; frames() flushes them first. */
  flushWriter: (() => void) | undefined;
  destroyed = false;
  setNoDelay(): this {
    return this;
  }
  cork(): void {}
  uncork(): void {}
  write(chunk: Buffer): boolean {
    this.written.push(Buffer.from(chunk));
    this.writableLength += chunk.length;
    return this.writableLength < 1024 * 1024;
  }
  end(): void {}
  destroy(): void {
    this.destroyed = true;
  }
  frames(): Array<{ type: number; payload: Buffer }> {
    this.flushWriter?.();
    const out: Array<{ type: number; payload: Buffer }> = [];
    new FrameParser({
      onFrame: (type, _stream, payload) => out.push({ type, payload: Buffer.from(payload) }),
      onData: (_stream, piece) => out.push({ type: FrameType.Data, payload: Buffer.from(piece) }),
      onProtocolError: (message) => assert.fail(message),
    }).push(Buffer.concat(this.written));
    return out;
  }
}

class RecordingOwner implements SessionOwner {
  down: string[] = [];
  failLinkState: Error | undefined;
  sessionUp(): void {}
  sessionDown(_session: LinkSession, reason: string): void {
    this.down.push(reason);
  }
  sessionUpdated(): void {}
  incomingStream(): void {}
  linkState(_session: LinkSession, _adverts: LinkStateAdvert[]): void {
    if (this.failLinkState) throw this.failLinkState;
  }
}

function memorySession(): { socket: MemorySocket; owner: RecordingOwner; link: LinkSession; feed: (...frames: Buffer[]) => void } {
  const socket = new MemorySocket();
  const owner = new RecordingOwner();
  const local: Hello = { v: PROTOCOL_VERSION, siteId: LISTENING_SITE, siteName: "local", instance: 1, version: "test", window: 1 << 20 };
  const link = new LinkSession(socket as unknown as tls.TLSSocket, "acceptor", local, owner, "memory link");
  socket.flushWriter = () => link.flush();
  link.start();
  return { socket, owner, link, feed: (...frames) => socket.emit("data", Buffer.concat(frames)) };
}

describe("control frames cannot grow the listening site's memory", () => {
  test("before HELLO, a PING is a protocol error and is not answered", () => {
    const { socket, owner, link, feed } = memorySession();
    feed(frame(FrameType.Ping, 0, Buffer.alloc(8)));
    assert.equal(link.state, "closed");
    assert.equal(owner.down[0], `protocol error: control frame of type ${FrameType.Ping} before the link handshake completed`);
    assert.equal(socket.frames().filter((f) => f.type === FrameType.Pong).length, 0);
  });

  test("a PING larger than the limit is a protocol error; one at the limit is answered", () => {
    const { socket, owner, link, feed } = memorySession();
    feed(helloFrame(DIALING_SITE), frame(FrameType.Ping, 0, Buffer.alloc(MAX_PING_PAYLOAD, 7)));
    assert.equal(link.state, "up");
    assert.equal(socket.frames().filter((f) => f.type === FrameType.Pong).length, 1);
    feed(frame(FrameType.Ping, 0, Buffer.alloc(MAX_PING_PAYLOAD + 1)));
    assert.equal(link.state, "closed");
    assert.equal(owner.down[0], `protocol error: PING payload of ${MAX_PING_PAYLOAD + 1} bytes exceeds the limit of ${MAX_PING_PAYLOAD}`);
  });

  test("replies that are never written out are dropped past the bound, with the reason", () => {
    const { socket, owner, link, feed } = memorySession();
    feed(helloFrame(DIALING_SITE));
    const ping = frame(FrameType.Ping, 0, Buffer.alloc(8));
    const pongSize = HEADER_SIZE + 8;
    const fit = Math.floor(MAX_QUEUED_CONTROL_REPLY_BYTES / pongSize);
    feed(...Array.from({ length: fit }, () => ping));
    assert.equal(link.state, "up", "up to the bound, every PING is answered");
    assert.equal(socket.frames().filter((f) => f.type === FrameType.Pong).length, fit);
    feed(ping);
    assert.equal(link.state, "closed");
    assert.match(owner.down[0] ?? "", /^the remote site does not read the replies to its control frames: \d+ bytes of replies are waiting to be sent \(limit 262144\)$/);
  });

  test("a link whose socket does not drain is dropped once its unsent bytes pass the bound", async () => {
    const { socket, owner, link, feed } = memorySession();
    feed(helloFrame(DIALING_SITE));
    const big = { filler: "x".repeat(4 * 1024 * 1024 - 64) };
    for (let i = 0; i * 4 * 1024 * 1024 <= MAX_UNSENT_LINK_BYTES; i++) link.sendLinkState(big);
    await new Promise((resolve) => setImmediate(resolve)); // the batched writes are flushed
    assert.equal(link.state, "closed");
    assert.equal(socket.destroyed, true);
    assert.match(owner.down[0] ?? "", /^the remote site does not read from the link: \d+ bytes are waiting to be sent \(limit 33554432\)$/);
  });
});

describe("relays respect the next link's write buffer", () => {
  test("a relay holds data while the next link is blocked, whatever credit that hop granted, and sends it on drain", () => {
    const upstream = memorySession();
    const downstream = memorySession();
    upstream.feed(helloFrame(DIALING_SITE));
    downstream.feed(helloFrame(DIALING_SITE));
    const [fromUpstream, towardDownstream] = RelayEnd.pair(() => undefined);
    upstream.link.attach(1, fromUpstream);
    downstream.link.openStream(towardDownstream, { key: "k", dest: "d", origin: "o", hops: 3 });
    // Generous credit from the downstream peer, then a write buffer it does not drain.
    towardDownstream.sendCredit = 1 << 30;
    downstream.link.sendLinkState({ filler: "x".repeat(1024 * 1024) });
    assert.equal(downstream.link.blocked, true);
    const dataFrames = () => downstream.socket.frames().filter((f) => f.type === FrameType.Data).length;
    upstream.feed(frame(FrameType.Data, 1, Buffer.alloc(100_000, 1)));
    assert.equal(dataFrames(), 0, "nothing is added to a blocked link");
    const windows = () => upstream.socket.frames().filter((f) => f.type === FrameType.Window).length;
    assert.equal(windows(), 0, "no credit goes back upstream for data still held");
    downstream.socket.writableLength = 0;
    downstream.socket.emit("drain");
    assert.ok(dataFrames() > 0, "the held data goes on once the link drains");
    upstream.link.close("test over");
    downstream.link.close("test over");
  });
});

describe("link-state handling", () => {
  const advert = { id: "x", name: "x", instance: 1, seq: 1, links: {}, connectors: {}, listeners: {} };

  test("a malformed advert is still the peer's protocol error", () => {
    const { owner, link, feed } = memorySession();
    feed(helloFrame(DIALING_SITE), frame(FrameType.LinkState, 0, Buffer.from(JSON.stringify([{ ...advert, seq: -1 }]))));
    assert.equal(link.state, "closed");
    assert.match(owner.down[0] ?? "", /^protocol error: bad link-state update: /);
  });

  test("a failure while applying a valid update is this site's, not the peer's: the link stays up", () => {
    const { socket, owner, link, feed } = memorySession();
    feed(helloFrame(DIALING_SITE));
    owner.failLinkState = new Error("route computation failed");
    assert.doesNotThrow(() => feed(frame(FrameType.LinkState, 0, Buffer.from(JSON.stringify([advert])))), "the fault is logged, not thrown into the socket's handler");
    assert.equal(link.state, "up");
    assert.deepEqual(owner.down, []);
    assert.equal(socket.frames().filter((f) => f.type === FrameType.GoAway).length, 0, "no GOAWAY blames the peer");
    link.close("test over");
  });
});

describe("the router with default limits", () => {
  test("the link server of a Router applies the limits from its configuration", async () => {
    const router = new Router({ siteId: LISTENING_SITE, siteName: "listening", version: "test" });
    try {
      const status = await router.setLinkServer({
        host: "127.0.0.1",
        port: 0,
        credentials: { ca: siteCa.cert, cert: serverCert.cert, key: serverCert.key },
        limits: { handshakeTimeoutMs: 300 },
      });
      assert.equal(status.state, "listening");
      const socket = await rawConnect(router.linkServerPort as number);
      await within(2_500, "the router's link server closing a silent connection", closed(socket));
    } finally {
      await router.close();
    }
  });
});
