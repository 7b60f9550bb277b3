/**
 * Routers joined by memory links (src/router/router.ts): A ─ B ─ C, with a listener on A, the
 * connector (a real TCP backend on 127.0.0.1) on C, and B relaying. Covers a connection reaching
 * the connector through the relay hop, resets crossing it, and how a site answers an OPEN it
 * cannot serve (hop limit, unreachable destination, no connector, backend refused).
 */
import assert from "node:assert/strict";
import net from "node:net";
import { afterEach, describe, test } from "node:test";
import { setLogLevel } from "../../src/common/log.js";
import { FrameType, ResetCode } from "../../src/router/frames.js";
import { Router } from "../../src/router/router.js";
import { createCA, issueCertificate } from "../../src/certs/index.js";
import { freePort } from "../helpers/cli.js";
import { forgetSockets, linkRouters, TestEndpoint, until, type MemorySocket } from "../helpers/memory-link.js";
import { serve } from "../helpers/network.js";
import { exchangeOutcome, routerLine, testRouter, type RouterLine } from "../helpers/router-line.js";

setLogLevel("error");

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
  forgetSockets();
});

const router = (name: string): Router => testRouter(name, cleanup);
const line = (handler: (socket: net.Socket) => void): Promise<RouterLine> => routerLine(handler, cleanup);

function openFrames(socket: MemorySocket): Array<{ key: string; dest: string; origin: string; hops: number }> {
  return socket.tap.of(FrameType.Open).map((f) => JSON.parse(f.payload!.toString()));
}

const exchange = exchangeOutcome;

const within = <T>(what: string, promise: Promise<T>, ms = 1500): Promise<T> =>
  Promise.race([promise, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms).unref())]);

describe("a service across a relay", () => {
  test("a client of A's listener reaches C's connector through B; the OPEN loses one hop at B", async () => {
    const n = await line((s) => {
      let got = "";
      s.on("data", (d) => (got += d));
      s.on("end", () => s.end(`C got: ${got}`));
    });
    const result = await within("the exchange", exchange(n.listenerPort, "hello C"));
    assert.deepEqual(result, { reply: "C got: hello C", end: "end" });
    assert.deepEqual(openFrames(n.ab.socketA), [{ key: "svc", dest: "id-c", origin: "id-a", hops: 32 }]);
    // B opened the second hop on its acceptor side of the C link: even stream ids.
    assert.deepEqual(openFrames(n.cb.socketB), [{ key: "svc", dest: "id-c", origin: "id-a", hops: 31 }]);
    assert.equal(n.cb.socketB.tap.of(FrameType.Open)[0]?.stream, 2);
    await until("connections to be released", () => n.a.status().listeners[0]?.connections === 0 && n.c.status().connectors[0]?.connections === 0);
  });

  test("a backend that resets its connection makes the client see a reset through the relay", async () => {
    const n = await line((s) => s.once("data", () => s.resetAndDestroy()));
    const result = await within("the exchange", exchange(n.listenerPort, "anything"));
    assert.equal(result.end, "ECONNRESET");
    const resetAtRelay = n.cb.socketA.tap.resets()[0];
    assert.equal(resetAtRelay?.code, ResetCode.Cancelled, "C reset the stream");
    assert.deepEqual(n.ab.socketB.tap.resets()[0], { ...resetAtRelay, stream: 1 }, "B passed the same code and reason on to A");
  });

  test("when the link B ─ C breaks mid-stream, the client is reset and A's listener closes", async () => {
    let backendSocket: net.Socket | undefined;
    const n = await line((s) => (backendSocket = s));
    const client = net.connect({ port: n.listenerPort, host: "127.0.0.1" });
    const outcome = new Promise<string>((resolve) => {
      client.once("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
      client.once("end", () => resolve("end"));
    });
    await until("the backend connection", () => backendSocket !== undefined);
    n.cb.socketA.cut();
    assert.equal(await within("the client's outcome", outcome), "ECONNRESET");
    const reset = n.ab.socketB.tap.resets()[0];
    assert.equal(reset?.code, ResetCode.LinkLost);
    await until("A's listener to stop listening", () => n.a.status().listeners[0]?.state === "waiting");
  });
});

describe("two sites joined by several links", () => {
  const selfLinks = (r: Router) => r.status().network.find((site) => site.id === r.siteId)?.links;

  test("A dials B twice and B dials A once: one neighbour at the cheapest cost; streams take the cheapest link, then the next as each goes", async () => {
    const a = router("a");
    const b = router("b");
    const ab1 = linkRouters(a, b, { cost: 1, name: "a-to-b-1" });
    const ab3 = linkRouters(a, b, { cost: 3, name: "a-to-b-3" });
    const ba2 = linkRouters(b, a, { cost: 2, name: "b-to-a-2" });
    cleanup.push(ab1.close, ab3.close, ba2.close);
    const backend = await serve((s) => s.on("data", (d) => s.end(`b:${d}`)));
    cleanup.push(() => backend.close());
    const listenerPort = await freePort();
    b.setConnectors([{ name: "svc", host: "127.0.0.1", port: backend.port, routingKey: "svc" }]);
    a.setListeners([{ name: "svc", host: "127.0.0.1", port: listenerPort, routingKey: "svc" }]);
    await until("A's listener to open", () => a.status().listeners[0]?.state === "listening");
    await until("three links up on both sides", () => a.status().incoming.length === 1 && b.status().incoming.length === 2);
    assert.deepEqual(selfLinks(a), { "id-b": 1 }, "A advertises B once, at the cheapest link's cost");
    assert.deepEqual(selfLinks(b), { "id-a": 1 });
    assert.equal(a.status().network.find((site) => site.id === "id-b")?.cost, 1, "the two ends are not added up");

    // Each link is cut in turn; A's side of it is socketA when A dials, socketB when B does.
    const opensOn = () => [ab1.socketA, ab3.socketA, ba2.socketB].map((s) => s.tap.of(FrameType.Open).length);
    assert.deepEqual(await within("the exchange", exchange(listenerPort, "1")), { reply: "b:1", end: "end" });
    assert.deepEqual(opensOn(), [1, 0, 0], "the cost-1 link carries the stream");

    ab1.socketA.cut();
    await until("A to advertise B at cost 2", () => selfLinks(a)?.["id-b"] === 2);
    assert.deepEqual(await within("the exchange", exchange(listenerPort, "2")), { reply: "b:2", end: "end" });
    assert.deepEqual(opensOn(), [1, 0, 1], "the cost-2 link B dialed takes over");

    ba2.socketA.cut();
    await until("A to advertise B at cost 3", () => selfLinks(a)?.["id-b"] === 3);
    assert.deepEqual(await within("the exchange", exchange(listenerPort, "3")), { reply: "b:3", end: "end" });
    assert.deepEqual(opensOn(), [1, 1, 1], "then the last one");

    ab3.socketA.cut();
    await until("B to be gone and A's listener to close", () => selfLinks(a)?.["id-b"] === undefined && a.status().listeners[0]?.state === "waiting");
  });

  test("an advert is not sent back to the neighbour it came from, over another link between the two", async () => {
    const a = router("a");
    const b = router("b");
    const c = router("c");
    const ab1 = linkRouters(a, b);
    const ab2 = linkRouters(a, b);
    cleanup.push(ab1.close, ab2.close);
    await until("both links up", () => b.status().incoming.length === 2 && selfLinks(a)?.["id-b"] === 1);
    const cb = linkRouters(c, b);
    cleanup.push(cb.close);
    await until("A to reach C through B", () => a.status().network.find((site) => site.id === "id-c")?.reachable === true);
    // Give anything A would write back a chance to cross: a full round trip over both links.
    a.setConnectors([{ name: "flush", host: "127.0.0.1", port: 1, routingKey: "flush" }]);
    await until("B to see A's new advert", () => b.status().network.find((site) => site.id === "id-a")?.connectors.flush === 1);
    const advertsFromA = [ab1.socketA, ab2.socketA]
      .flatMap((s) => s.tap.of(FrameType.LinkState))
      .flatMap((f) => JSON.parse(f.payload!.toString()) as Array<{ id: string }>)
      .map((advert) => advert.id);
    assert.ok(advertsFromA.length > 0);
    assert.deepEqual([...new Set(advertsFromA)], ["id-a"], "A only ever sent B its own advert");
  });
});

describe("an OPEN a site cannot serve is refused with a reason", () => {
  async function probe(n: RouterLine, request: { key: string; dest: string; hops: number }): Promise<{ code?: number; message?: string }> {
    const end = new TestEndpoint();
    n.ab.session.openStream(end, { ...request, origin: "id-a" });
    await until("the RESET", () => end.reset !== undefined);
    return { code: end.reset!.code!, message: end.reset!.message! };
  }

  test("hop limit reached at the relay (code 2)", async () => {
    const n = await line(() => undefined);
    assert.deepEqual(await probe(n, { key: "svc", dest: "id-c", hops: 0 }), { code: ResetCode.Unreachable, message: "hop limit exceeded" });
    assert.equal(n.cb.socketB.tap.of(FrameType.Open).length, 0, "nothing was sent on toward C");
  });

  test("a destination the relay cannot reach (code 2)", async () => {
    const n = await line(() => undefined);
    assert.deepEqual(await probe(n, { key: "svc", dest: "id-nowhere", hops: 5 }), { code: ResetCode.Unreachable, message: "site id-nowhere is not reachable from b" });
  });

  test("no connector for the key at the destination (code 3), relayed back with its reason", async () => {
    const n = await line(() => undefined);
    assert.deepEqual(await probe(n, { key: "other", dest: "id-c", hops: 5 }), { code: ResetCode.NoConnector, message: 'no connector for "other" at site c' });
  });

  test("a backend that refuses the connection (code 4)", async () => {
    const n = await line(() => undefined);
    const closedPort = await freePort();
    n.c.setConnectors([{ name: "svc", host: "127.0.0.1", port: closedPort, routingKey: "svc" }]);
    assert.deepEqual(await probe(n, { key: "svc", dest: "id-c", hops: 5 }), {
      code: ResetCode.BackendFailed,
      message: `cannot connect to the backend 127.0.0.1:${closedPort}: connection refused`,
    });
    assert.equal(n.c.status().connectors[0]?.connections, 0, "the failed connection is not counted");
  });

  test("removing the connector resets its open connections (code 8) across the relay", async () => {
    let connected = false;
    const n = await line(() => (connected = true));
    const end = new TestEndpoint();
    n.ab.session.openStream(end, { key: "svc", dest: "id-c", origin: "id-a", hops: 5 });
    await until("ACCEPT", () => end.has("accept") && connected);
    n.c.setConnectors([]);
    await until("the RESET", () => end.reset !== undefined);
    assert.deepEqual({ code: end.reset!.code, message: end.reset!.message }, { code: ResetCode.Removed, message: "connector removed" });
  });
});

describe("routers over real TLS links", () => {
  test("B enables link access, A links to it: both report the link, and a connection reaches B's connector", async () => {
    const ca = await createCA("site-b");
    const server = await issueCertificate(ca, { commonName: "skupper-site-server", hosts: ["127.0.0.1"], usage: "server" });
    const client = await issueCertificate(ca, { commonName: "a", usage: "client" });
    const a = router("a");
    const b = router("b");
    const linkPort = await freePort();
    assert.deepEqual(await b.setLinkServer({ host: "127.0.0.1", port: linkPort, credentials: { ca: ca.cert, cert: server.cert, key: server.key } }), { state: "listening", message: "OK" });
    a.setOutgoingLinks([{ name: "to-b", cost: 3, endpoints: [{ host: "127.0.0.1", port: linkPort }], credentials: { ca: ca.cert, cert: client.cert, key: client.key } }]);
    await until("the link to be up on both sides", () => a.status().outgoing[0]?.state === "up" && b.status().incoming.length === 1);
    assert.deepEqual(
      (({ name, remoteSiteName, cost, message }) => ({ name, remoteSiteName, cost, message }))(a.status().outgoing[0]!),
      { name: "to-b", remoteSiteName: "b", cost: 3, message: "OK" },
    );
    assert.deepEqual((({ name, remoteSiteName, cost }) => ({ name, remoteSiteName, cost }))(b.status().incoming[0]!), { name: "to-b", remoteSiteName: "a", cost: 3 });

    const backend = await serve((s) => s.on("data", (d) => s.end(`b:${d}`)));
    cleanup.push(() => backend.close());
    const listenerPort = await freePort();
    b.setConnectors([{ name: "svc", host: "127.0.0.1", port: backend.port, routingKey: "svc" }]);
    a.setListeners([{ name: "svc", host: "127.0.0.1", port: listenerPort, routingKey: "svc" }]);
    await until("A's listener to open", () => a.status().listeners[0]?.state === "listening");
    assert.equal(a.status().network.find((site) => site.id === "id-b")?.cost, 3);
    assert.deepEqual(await within("the exchange", exchange(listenerPort, "hi")), { reply: "b:hi", end: "end" });

    // B turns link access off: the link goes down with B's reason, and A's listener closes.
    await b.setLinkServer(undefined);
    await until("A to see the link go", () => a.status().outgoing[0]?.state === "connecting");
    assert.equal(a.status().outgoing[0]?.message, "the remote site closed the link: link access was disabled");
    await until("A's listener to close", () => a.status().listeners[0]?.state === "waiting");
    // A keeps trying, and says why it cannot connect. (Closing the routers now, between two
    // attempts, also keeps clear of the dialer's connect-timer leak: see links.test.ts.)
    await until("A's next attempt to be refused", () => /^connection refused by 127\.0\.0\.1:/.test(a.status().outgoing[0]?.message ?? ""));
  });
});
