/**
 * The grant server's bounds, over real sockets on 127.0.0.1: no client holds a connection past
 * the handshake, header, request and idle limits (counted from accept), connections beyond the
 * cap are closed at once, and a redemption whose response cannot be delivered is taken back.
 * Limits are set short here; the defaults are in docs/grant-protocol.md §2.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setLogSink } from "../../src/common/log.js";
import { connectionLimits, DEFAULT_CONNECTION_LIMITS, redeemToken, RedemptionError, type GrantServer } from "../../src/grants/index.js";
import { eventually } from "../helpers/cli.js";
import {
  closedWithin,
  connectTcp,
  connectTls,
  createAuthorities,
  IssuingLedger,
  readUntilClosed,
  startGrantServer,
  trickle,
  type Authorities,
} from "../helpers/grant-fixtures.js";

setLogSink(() => undefined);

/** Timers never fire early, but a loaded machine may run them late: allow that much. */
const LATE_MS = 2000;
const EARLY_MS = 50;

const identity = { name: "east-token", subject: "east", siteId: "site-east", siteName: "east" };

let authorities: Authorities;
const servers: GrantServer[] = [];

before(async () => {
  authorities = await createAuthorities();
});

after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function serve(limits: Parameters<typeof startGrantServer>[2]) {
  const ledger = new IssuingLedger(authorities.siteCa);
  const started = await startGrantServer(ledger, authorities, limits);
  servers.push(started.server);
  return { ledger, ...started };
}

function tokenFor(port: number, uid: string, code = "correct-code") {
  return { url: `https://127.0.0.1:${port}/${uid}`, code, ca: authorities.grantCa.cert };
}

describe("limits", () => {
  test("the documented defaults: 5 s handshake, 10 s headers, 15 s request, 5 s idle, 64 connections", () => {
    assert.deepEqual(
      { ...DEFAULT_CONNECTION_LIMITS },
      { handshakeTimeoutMs: 5000, headersTimeoutMs: 10_000, requestTimeoutMs: 15_000, idleTimeoutMs: 5000, maxConnections: 64 },
    );
  });

  test("inconsistent limits are refused with a sentence", () => {
    assert.throws(() => connectionLimits({ maxConnections: 0 }), /maxConnections must be a positive integer \(got 0\)/);
    assert.throws(() => connectionLimits({ headersTimeoutMs: 20_000 }), /handshakeTimeoutMs <= headersTimeoutMs <= requestTimeoutMs/);
  });
});

describe("connection deadlines, counted from accept", () => {
  const limits = { handshakeTimeoutMs: 300, headersTimeoutMs: 600, requestTimeoutMs: 900, idleTimeoutMs: 10_000 };

  test("a TCP connection that never starts TLS is closed at the handshake limit", async () => {
    const { port } = await serve(limits);
    const since = Date.now();
    const socket = await connectTcp(port);
    const elapsed = await closedWithin(socket, since, limits.handshakeTimeoutMs + LATE_MS);
    assert.ok(elapsed >= limits.handshakeTimeoutMs - EARLY_MS, `closed after ${elapsed} ms, before the handshake limit`);
  });

  test("a TLS connection that sends no request is closed at the headers limit", async () => {
    const { port, ledger } = await serve(limits);
    const since = Date.now();
    const socket = await connectTls(port, authorities.grantCa.cert);
    const elapsed = await closedWithin(socket, since, limits.headersTimeoutMs + LATE_MS);
    assert.ok(elapsed >= limits.headersTimeoutMs - EARLY_MS, `closed after ${elapsed} ms, before the headers limit`);
    assert.equal(ledger.issued.length, 0);
  });

  test("headers sent a byte at a time are cut off at the headers limit", async () => {
    const { port } = await serve(limits);
    const since = Date.now();
    const socket = await connectTls(port, authorities.grantCa.cert);
    trickle(socket, `POST /g HTTP/1.1\r\nHost: 127.0.0.1\r\nx-slow: ${"a".repeat(200)}\r\n\r\n`, 20);
    const elapsed = await closedWithin(socket, since, limits.headersTimeoutMs + LATE_MS);
    assert.ok(elapsed >= limits.headersTimeoutMs - EARLY_MS, `closed after ${elapsed} ms, before the headers limit`);
  });

  test("a body sent a byte at a time is cut off at the request limit, without a redemption", async () => {
    const { port, ledger } = await serve(limits);
    const grant = ledger.add({ uid: "g-slow-body" });
    const since = Date.now();
    const socket = await connectTls(port, authorities.grantCa.cert);
    socket.write("POST /g-slow-body HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 12\r\n\r\n");
    trickle(socket, "correct-code", 100);
    const elapsed = await closedWithin(socket, since, limits.requestTimeoutMs + LATE_MS);
    assert.ok(elapsed >= limits.requestTimeoutMs - EARLY_MS, `closed after ${elapsed} ms, before the request limit`);
    assert.equal(grant.made, 0);
    assert.equal(ledger.issued.length, 0);
  });

  test("a connection on which nothing moves is closed at the idle limit", async () => {
    const idle = { handshakeTimeoutMs: 5000, headersTimeoutMs: 10_000, requestTimeoutMs: 15_000, idleTimeoutMs: 300 };
    const { port } = await serve(idle);
    const socket = await connectTls(port, authorities.grantCa.cert);
    socket.write("POST /g HTTP/1.1\r\n");
    const since = Date.now();
    const elapsed = await closedWithin(socket, since, idle.idleTimeoutMs + LATE_MS);
    assert.ok(elapsed >= idle.idleTimeoutMs - EARLY_MS, `closed after ${elapsed} ms, before the idle limit`);
  });

  test("a prompt redemption is not disturbed by the deadlines", async () => {
    const { port, ledger } = await serve(limits);
    const grant = ledger.add({ uid: "g-prompt" });
    const credentials = await redeemToken(tokenFor(port, "g-prompt"), identity);
    assert.equal(credentials.links.length, 1);
    assert.equal(grant.made, 1);
  });
});

describe("connection cap", () => {
  test("100 idle connections: those over the cap are closed at once, the rest at the handshake limit, and a redemption then succeeds", async () => {
    const limits = { handshakeTimeoutMs: 500, headersTimeoutMs: 1000, requestTimeoutMs: 1500, maxConnections: 64 };
    const { server, port, ledger } = await serve(limits);
    const grant = ledger.add({ uid: "g-busy" });
    const since = Date.now();
    const idle = await Promise.all(Array.from({ length: 100 }, () => connectTcp(port).catch(() => undefined)));
    await eventually("the connections over the cap to be dropped", () => server.connections.dropped === 36 && server.connections.open === 64, 3000, 10);
    assert.ok(Date.now() - since < limits.handshakeTimeoutMs, "the excess was closed before any deadline");

    // A client that retries (as the site process does) gets through once the idle ones are gone.
    const credentials = await eventually(
      "a redemption to get through",
      async () => {
        try {
          return await redeemToken(tokenFor(port, "g-busy"), identity, 2000);
        } catch (err) {
          if (err instanceof RedemptionError && err.reason === "transport") return undefined;
          throw err;
        }
      },
      limits.handshakeTimeoutMs + LATE_MS + 2000,
      20,
    );
    assert.equal(credentials.secret.metadata.name, "east-token");
    assert.equal(grant.made, 1);
    for (const socket of idle) if (socket) await closedWithin(socket, since, limits.handshakeTimeoutMs + LATE_MS);
    await eventually("every connection to be released", () => server.connections.open === 0, 3000, 10);
  });
});

describe("undelivered response", () => {
  test("a redemption whose client is gone before the answer is taken back, and the grant is not blocked", async () => {
    const { server, port, ledger } = await serve({});
    const grant = ledger.add({ uid: "g-gone" });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let reachedIssue!: () => void;
    const atIssue = new Promise<void>((resolve) => (reachedIssue = resolve));
    ledger.beforeIssue = async () => {
      reachedIssue();
      await gate;
    };

    const socket = await connectTls(port, authorities.grantCa.cert);
    socket.write("POST /g-gone HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 12\r\n\r\ncorrect-code");
    await atIssue;
    socket.destroy();
    await eventually("the server to see the client go", () => server.connections.open === 0, 3000, 10);
    ledger.beforeIssue = undefined;
    release();

    await eventually("the redemption to be taken back", () => ledger.unrecorded === 1, 3000, 10);
    assert.equal(ledger.recorded, 1, "it was counted before the answer was sent");
    assert.equal(grant.made, 0, "and taken back when the answer could not be delivered");

    const credentials = await redeemToken(tokenFor(port, "g-gone"), identity, 3000);
    assert.equal(credentials.links.length, 1, "the single redemption is still available");
    assert.equal(grant.made, 1);
  });

  test("an oversized body is refused with a 400 the client can read, not a reset", async () => {
    const { port, ledger } = await serve({});
    ledger.add({ uid: "g-big" });
    const socket = await connectTls(port, authorities.grantCa.cert);
    const answer = readUntilClosed(socket);
    socket.write(`POST /g-big HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 20000\r\n\r\n${"x".repeat(20_000)}`);
    assert.match(await answer, /^HTTP\/1\.1 400 Bad Request\r\n[\s\S]*\r\n\r\nRequest body not valid\n$/);
    assert.equal(ledger.issued.length, 0);
  });
});

describe("methods", () => {
  test("CONNECT (found by the fuzz test) is answered 405 like any other method, not dropped", async () => {
    const { port } = await serve({});
    const socket = await connectTls(port, authorities.grantCa.cert);
    const answer = readUntilClosed(socket);
    socket.write("CONNECT /g HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    assert.match(await answer, /^HTTP\/1\.1 405 Method Not Allowed\r\n[\s\S]*Allow: POST\r\n[\s\S]*\r\n\r\nOnly POST is supported\n$/);
  });
});
