/**
 * What the data plane tells operators (src/observability, src/router/traffic.ts): the events on
 * diagnostics_channel for links and streams (direct and relayed, ended and reset), that nothing
 * is built when nobody listens, that RTT changes flood no advert, the bounds, rate and validation
 * of traffic summaries, and the Prometheus text after traffic. Routers on memory links, with
 * real TCP clients and backends on 127.0.0.1, and one pair over real TLS.
 */
import assert from "node:assert/strict";
import diagnostics from "node:diagnostics_channel";
import net from "node:net";
import { afterEach, describe, test } from "node:test";
import { createCA, issueCertificate } from "../../src/certs/index.js";
import { setLogLevel, setLogSink } from "../../src/common/log.js";
import { startEventLog } from "../../src/observability/log.js";
import {
  build,
  CHANNELS,
  subscribe,
  type LinkDownMessage,
  type LinkUpMessage,
  type StreamCloseMessage,
  type StreamOpenMessage,
} from "../../src/observability/events.js";
import { startSiteMetrics } from "../../src/observability/metrics.js";
import { FrameType, ResetCode } from "../../src/router/frames.js";
import { Router, type RouterOptions } from "../../src/router/router.js";
import { boundServices, MAX_SUMMARY_SERVICES, parseTrafficSummary, type TrafficService, type TrafficSummary } from "../../src/router/traffic.js";
import { freePort } from "../helpers/cli.js";
import { fakeSession, forgetSockets, frame, goAwayReason, linkRouters, peerHello, settle, until } from "../helpers/memory-link.js";
import { serve } from "../helpers/network.js";
import { exchangeOutcome, routerLine, testRouter } from "../helpers/router-line.js";

setLogLevel("error");

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
  forgetSockets();
});

const router = (name: string, options: RouterOptions = {}): Router => testRouter(name, cleanup, options);

/** Collects the messages of every channel while the test runs. */
function record(): { linkUp: LinkUpMessage[]; linkDown: LinkDownMessage[]; open: StreamOpenMessage[]; close: StreamCloseMessage[] } {
  const seen = { linkUp: [] as LinkUpMessage[], linkDown: [] as LinkDownMessage[], open: [] as StreamOpenMessage[], close: [] as StreamCloseMessage[] };
  cleanup.push(
    subscribe(CHANNELS.linkUp, (m) => seen.linkUp.push(m)),
    subscribe(CHANNELS.linkDown, (m) => seen.linkDown.push(m)),
    subscribe(CHANNELS.streamOpen, (m) => seen.open.push(m)),
    subscribe(CHANNELS.streamClose, (m) => seen.close.push(m)),
  );
  return seen;
}

/** A ─ B ─ C (A and C dial B), backend behind C's connector "svc-backend" (routing key "svc"), listener on A. */
const line = (handler: (socket: net.Socket) => void, options: RouterOptions = {}) => routerLine(handler, cleanup, { router: options, connectorName: "svc-backend" });
const exchange = exchangeOutcome;

const echoUpper = (s: net.Socket) => {
  let got = "";
  s.on("data", (d) => (got += d));
  s.on("end", () => s.end(got.toUpperCase() + "!"));
};

describe("stream events", () => {
  test("a stream A → C through B: open and close at each site, with role, key, remote site and bytes; B counts it as relayed", async () => {
    const seen = record();
    const n = await line(echoUpper);
    assert.deepEqual(await exchange(n.listenerPort, "hello C"), { reply: "HELLO C!", end: "end" });
    await until("a close at each of the three sites", () => new Set(seen.close.map((m) => m.siteId)).size === 3);
    const at = (site: string) => seen.close.find((m) => m.siteId === site)!;
    const summary = (m: StreamCloseMessage) => ({
      role: m.stream.role,
      key: m.stream.routingKey,
      remote: m.stream.remoteSiteName,
      outcome: m.outcome,
      bytesIn: m.bytesIn,
      bytesOut: m.bytesOut,
    });
    // The client sent 7 bytes toward the service and got 8 back: out at A, in at B and C.
    assert.deepEqual(summary(at("id-a")), { role: "listener", key: "svc", remote: "c", outcome: "end", bytesIn: 8, bytesOut: 7 });
    assert.deepEqual(summary(at("id-b")), { role: "relay", key: "svc", remote: "a", outcome: "end", bytesIn: 7, bytesOut: 8 });
    assert.deepEqual(summary(at("id-c")), { role: "connector", key: "svc", remote: "a", outcome: "end", bytesIn: 7, bytesOut: 8 });
    assert.equal(at("id-a").stream.resource, "svc");
    assert.equal(at("id-c").stream.resource, "svc-backend");
    for (const m of seen.close) {
      assert.equal(m.resetCode, undefined);
      assert.ok(m.durationMs >= 0);
      const open = seen.open.find((o) => o.siteId === m.siteId && o.stream.id === m.stream.id);
      assert.ok(open, `an open event came first at ${m.siteId}`);
      assert.equal(open.stream, m.stream, "the same stream info in both");
      assert.deepEqual({ bytesIn: open.stats.bytesIn, bytesOut: open.stats.bytesOut }, { bytesIn: m.bytesIn, bytesOut: m.bytesOut }, "the live stats reached the final counts");
    }
    // The relay shows up in B's counters too, and the listener's and connector's counters in status.
    const listener = n.a.status().listeners[0]!;
    assert.deepEqual([listener.opened, listener.bytesOut, listener.bytesIn, listener.refused, listener.reset], [1, 7, 8, 0, 0]);
    const connector = n.c.status().connectors[0]!;
    assert.deepEqual([connector.opened, connector.bytesIn, connector.bytesOut], [1, 7, 8]);
  });

  test("the live stats of an open stream grow before it closes", async () => {
    const seen = record();
    let backendSocket: net.Socket | undefined;
    const n = await line((s) => {
      backendSocket = s;
      s.on("data", () => undefined);
    });
    const client = net.connect({ port: n.listenerPort, host: "127.0.0.1" });
    cleanup.push(() => client.destroy());
    await until("the backend connection", () => backendSocket !== undefined);
    client.write(Buffer.alloc(10_000));
    const open = () => seen.open.find((m) => m.siteId === "id-c")!;
    await until("C's live stats to count the bytes", () => open().stats.bytesIn === 10_000);
    assert.equal(seen.close.filter((m) => m.siteId === "id-c").length, 0, "still open");
  });

  test("a backend reset is a reset with its code at both ends; a refused backend is refused with code 4", async () => {
    const seen = record();
    const n = await line((s) => s.once("data", () => s.resetAndDestroy()));
    assert.equal((await exchange(n.listenerPort, "x")).end, "ECONNRESET");
    await until("closes at A and C", () => seen.close.some((m) => m.siteId === "id-a") && seen.close.some((m) => m.siteId === "id-c"));
    for (const site of ["id-a", "id-b", "id-c"]) {
      const m = seen.close.find((c) => c.siteId === site)!;
      assert.deepEqual([m.outcome, m.resetCode], ["reset", ResetCode.Cancelled], site);
    }
    await until("A's listener counts the reset", () => n.a.status().listeners[0]?.reset === 1);

    seen.close.length = 0;
    await n.backend.close();
    assert.equal((await exchange(n.listenerPort, "x")).end, "ECONNRESET");
    await until("a close at A", () => seen.close.some((m) => m.siteId === "id-a"));
    const atA = seen.close.find((m) => m.siteId === "id-a")!;
    assert.deepEqual([atA.outcome, atA.resetCode], ["refused", ResetCode.BackendFailed]);
    assert.match(atA.reason ?? "", /connection refused/);
    await until("C's connector counts the refusal", () => n.c.status().connectors[0]?.refused === 1);
  });

  test("with nobody subscribed, no message is built; with a subscriber, they are", async () => {
    const calls = { count: 0 };
    const original = { ...build };
    for (const name of Object.keys(build) as Array<keyof typeof build>) {
      (build as Record<string, unknown>)[name] = (...args: unknown[]) => {
        calls.count++;
        return (original[name] as (...a: unknown[]) => unknown)(...args);
      };
    }
    cleanup.push(() => Object.assign(build, original));
    for (const name of Object.values(CHANNELS)) assert.equal(diagnostics.channel(name).hasSubscribers, false, `${name} has no subscriber left from another test`);
    const n = await line(echoUpper);
    assert.equal((await exchange(n.listenerPort, "quiet")).reply, "QUIET!");
    n.ab.socketA.cut(); // a link going down, too
    await until("A to see the link go", () => n.a.status().listeners[0]?.state === "waiting");
    assert.equal(calls.count, 0);

    const seen = record();
    const e = await line(echoUpper);
    assert.equal((await exchange(e.listenerPort, "loud")).reply, "LOUD!");
    await until("events", () => seen.close.length >= 3);
    assert.ok(calls.count > 0, "the same run with a subscriber builds messages");
  });
});

describe("a connection joined locally", () => {
  test("listener and connector on one site: counted on both, as two streams with the site itself as the remote", async () => {
    const seen = record();
    const a = router("a");
    const backend = await serve(echoUpper);
    cleanup.push(() => backend.close());
    const port = await freePort();
    a.setConnectors([{ name: "local-backend", host: "127.0.0.1", port: backend.port, routingKey: "local" }]);
    a.setListeners([{ name: "local", host: "127.0.0.1", port, routingKey: "local" }]);
    await until("the listener to open", () => a.status().listeners[0]?.state === "listening");
    assert.deepEqual(await exchange(port, "hey"), { reply: "HEY!", end: "end" });
    await until("both streams closed", () => seen.close.length === 2);
    assert.deepEqual(
      seen.close.map((m) => [m.stream.role, m.stream.remoteSiteId, m.outcome, m.bytesIn, m.bytesOut]).sort(),
      [
        ["connector", "id-a", "end", 3, 4],
        ["listener", "id-a", "end", 4, 3],
      ],
    );
    const { listeners, connectors } = a.status();
    assert.deepEqual([listeners[0]?.opened, listeners[0]?.bytesOut, listeners[0]?.bytesIn], [1, 3, 4]);
    assert.deepEqual([connectors[0]?.opened, connectors[0]?.bytesIn, connectors[0]?.bytesOut], [1, 3, 4]);
  });
});

describe("link events", () => {
  test("link up and down carry the link, the remote site, live stats and the reason", async () => {
    const seen = record();
    const a = router("a");
    const b = router("b");
    const ab = linkRouters(a, b, { name: "a-to-b" });
    await until("up at both ends", () => seen.linkUp.length === 2);
    const dialer = seen.linkUp.find((m) => m.siteId === "id-a")!;
    assert.deepEqual(
      { name: dialer.link.name, direction: dialer.link.direction, remote: dialer.link.remoteSiteName, cost: dialer.link.cost, reconnects: dialer.reconnects },
      { name: "a-to-b", direction: "outgoing", remote: "b", cost: 1, reconnects: 0 },
    );
    const acceptor = seen.linkUp.find((m) => m.siteId === "id-b")!;
    assert.deepEqual([acceptor.link.name, acceptor.link.direction, acceptor.link.remoteSiteId], ["a-to-b", "incoming", "id-a"]);
    assert.ok(dialer.link.stats.bytesOut > 0 && dialer.link.stats.bytesIn > 0);
    ab.socketA.cut();
    await until("down at both ends", () => seen.linkDown.length === 2);
    assert.ok(seen.linkDown.every((m) => m.reason.length > 0));

    // The same link again: its reconnect is counted.
    linkRouters(a, b, { name: "a-to-b" });
    await until("up again", () => seen.linkUp.length === 4);
    assert.deepEqual(seen.linkUp.slice(2).map((m) => m.reconnects), [1, 1]);
    assert.equal(b.status().incoming[0]?.reconnects, 1);
  });
});

describe("the site log", () => {
  test("logs incoming links coming and going, from the link events", async () => {
    const lines: string[] = [];
    setLogSink((line) => lines.push(line));
    setLogLevel("info");
    cleanup.push(() => setLogLevel("error"), () => setLogSink((line) => process.stderr.write(line + "\n")));
    cleanup.push(startEventLog());
    const a = router("a");
    const b = router("b");
    const ab = linkRouters(a, b, { name: "a-to-b" });
    await until("the up line", () => lines.some((l) => l.includes('incoming link "a-to-b" from site a is up')));
    ab.socketA.cut();
    await until("the down line", () => lines.some((l) => /incoming link "a-to-b" from site a is down: ./.test(l)));
    assert.ok(!lines.some((l) => l.includes("incoming link") && l.includes("from site b")), "outgoing links are their dialer's to log");
  });
});

describe("RTT and adverts", () => {
  test("RTT changes flood no advert; they travel in the traffic summary, which the other site shows", async () => {
    const a = router("a", { trafficIntervalMs: 20 });
    const b = router("b", { trafficIntervalMs: 20 });
    const ab = linkRouters(a, b);
    await until("the link up", () => a.status().network.length === 2 && b.status().network.length === 2);
    await settle();
    const adverts = () => ab.socketA.tap.of(FrameType.LinkState).length + ab.socketB.tap.of(FrameType.LinkState).length;
    const before = adverts();
    for (const rtt of [3, 30, 0.5, 12]) {
      ab.session.rttMs = rtt;
      a.sessionUpdated(ab.session); // what a repeated HELLO does: the advert is rebuilt
      await until(`B to learn A's RTT of ${rtt} ms`, () => b.status().network.find((s) => s.id === "id-a")?.rtt?.["id-b"] === rtt);
    }
    assert.equal(adverts(), before, "no LINK_STATE frame while only RTT changed");
    assert.ok(ab.socketA.tap.of(FrameType.Traffic).length >= 4);
    assert.equal(a.status().network.find((s) => s.id === "id-a")?.rtt?.["id-b"], 12, "a site shows its own RTT too");
    const advert = JSON.parse(ab.socketA.tap.of(FrameType.LinkState)[0]!.payload!.toString())[0];
    assert.equal(advert.rtt, undefined, "the advert carries no RTT");
  });

  test("an advert from an older site with an rtt map is accepted, and its RTT is shown", () => {
    const { link, feed, owner } = fakeSession();
    feed(frame(FrameType.Hello, 0, JSON.stringify(peerHello)));
    feed(frame(FrameType.LinkState, 0, JSON.stringify([{ id: "old", name: "old", instance: 1, seq: 1, links: { x: 1 }, rtt: { x: 0.7 }, connectors: {}, listeners: {} }])));
    assert.equal(link.state, "up");
    assert.deepEqual((owner.states[0] as Array<{ rtt: unknown }>)[0]!.rtt, { x: 0.7 });
    link.close("test over");
  });
});

describe("traffic summaries", () => {
  const service = (i: number, bytes: number): TrafficService => ({ routingKey: `k${i}`, role: "listener", peer: "p", opened: 1, active: 0, bytesIn: bytes, bytesOut: 0 });

  test("a summary keeps the biggest entries, and counts what it dropped", () => {
    const all = Array.from({ length: MAX_SUMMARY_SERVICES + 10 }, (_, i) => service(i, i * 100));
    const { services, dropped } = boundServices(all);
    assert.equal(services.length, MAX_SUMMARY_SERVICES);
    assert.deepEqual(dropped, { entries: 10, opened: 10, bytes: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].reduce((n, i) => n + i * 100, 0) });
    assert.ok(!services.some((s) => s.routingKey === "k0"), "the smallest went");
    const few = boundServices(all.slice(0, 3));
    assert.deepEqual(few, { services: all.slice(0, 3), dropped: { entries: 0, opened: 0, bytes: 0 } });
  });

  test("a site sends its summary at most once per interval, and only when it changed", async () => {
    const a = router("a", { trafficIntervalMs: 100 });
    const b = router("b", { trafficIntervalMs: 100 });
    const ab = linkRouters(a, b);
    await until("the link up", () => a.status().network.length === 2);
    ab.session.rttMs = 1;
    await until("A's first summary", () => ab.socketA.tap.of(FrameType.Traffic).length >= 1, 1000);
    // Unchanged (and RTT jitter within 20 %): nothing more.
    const quiet = ab.socketA.tap.of(FrameType.Traffic).length;
    const stopJitter = setInterval(() => (ab.session.rttMs = 1 + Math.random() * 0.1), 5);
    await new Promise((resolve) => setTimeout(resolve, 350));
    clearInterval(stopJitter);
    assert.equal(ab.socketA.tap.of(FrameType.Traffic).length, quiet, "no summary for an unchanged state");
    // Changing all the time: one per interval at most.
    const start = Date.now();
    const busy = setInterval(() => (ab.session.rttMs = 1 + ((ab.session.rttMs ?? 1) * 7) % 50), 2);
    await new Promise((resolve) => setTimeout(resolve, 600));
    clearInterval(busy);
    const sent = ab.socketA.tap.of(FrameType.Traffic).length - quiet;
    const elapsed = Date.now() - start;
    assert.ok(sent >= 2, `summaries were sent while things changed (${sent})`);
    assert.ok(sent <= Math.ceil(elapsed / 100) + 1, `${sent} summaries in ${elapsed} ms is more than one per 100 ms`);
  });

  test("summaries flood over a relay: C learns who used its service from A's summary", async () => {
    const n = await line(echoUpper, { trafficIntervalMs: 20 });
    assert.equal((await exchange(n.listenerPort, "abc")).reply, "ABC!");
    await until("C to hold A's summary with the traffic", () => {
      const a = n.c.status().network.find((s) => s.id === "id-a");
      return a?.traffic?.services.some((t) => t.routingKey === "svc" && t.role === "listener" && t.peer === "id-c" && t.bytesOut === 3 && t.bytesIn === 4 && t.opened === 1) === true;
    });
    const own = n.c.status().network.find((s) => s.id === "id-c")?.traffic?.services;
    assert.deepEqual(own, [{ routingKey: "svc", role: "connector", peer: "id-a", opened: 1, active: 0, bytesIn: 3, bytesOut: 4 }]);
    assert.equal(n.b.status().network.find((s) => s.id === "id-b")?.traffic?.services.length, 0, "a relay's own summary lists no service");
  });

  const good: TrafficSummary = {
    id: "site-x",
    instance: 1,
    seq: 1,
    at: 1,
    rtt: { "site-y": 0.4 },
    services: [{ routingKey: "k", role: "connector", peer: "site-y", opened: 1, active: 1, bytesIn: 1, bytesOut: 1 }],
    dropped: { entries: 0, opened: 0, bytes: 0 },
  };

  test("a valid summary parses to itself", () => {
    assert.deepEqual(parseTrafficSummary(JSON.parse(JSON.stringify(good))), good);
  });

  const bad: Array<[string, unknown, RegExp]> = [
    ["not a list", good, /traffic payload is not a list/],
    ["too many services", [{ ...good, services: Array(MAX_SUMMARY_SERVICES + 1).fill(good.services[0]) }], /field "services" \(more than 64 entries\)/],
    ["negative bytes", [{ ...good, services: [{ ...good.services[0], bytesIn: -1 }] }], /service field "bytesIn" is not valid/],
    ["fractional count", [{ ...good, services: [{ ...good.services[0], opened: 1.5 }] }], /service field "opened" is not valid/],
    ["unknown role", [{ ...good, services: [{ ...good.services[0], role: "relay" }] }], /service field "role" is not valid/],
    ["a routing key too long", [{ ...good, services: [{ ...good.services[0], routingKey: "k".repeat(300) }] }], /service field "routingKey" is not valid/],
    ["RTT not a number", [{ ...good, rtt: { y: "1" } }], /field "rtt" is not valid/],
    ["no dropped counts", [{ ...good, dropped: undefined }], /field "dropped" is not valid/],
  ];
  for (const [what, payload, reason] of bad) {
    test(`a summary with ${what} is the peer's protocol error: the link is closed with the reason`, () => {
      const { link, feed, socket } = fakeSession();
      feed(frame(FrameType.Hello, 0, JSON.stringify(peerHello)));
      feed(frame(FrameType.Traffic, 0, JSON.stringify(payload)));
      assert.equal(link.state, "closed");
      assert.match(goAwayReason(socket) ?? "", /^protocol error: bad traffic summary: /);
      assert.match(goAwayReason(socket) ?? "", reason);
    });
  }

  test("a summary of a site the network does not know is not stored or passed on", async () => {
    const a = router("a", { trafficIntervalMs: 20 });
    const b = router("b", { trafficIntervalMs: 20 });
    linkRouters(a, b);
    await until("the link up", () => b.status().network.length === 2);
    const session = [...(b as unknown as { peers: Map<string, Set<unknown>> }).peers.values()][0]!.values().next().value;
    b.traffic(session as never, [{ ...good, id: "made-up" }]);
    assert.equal(b.status().network.find((s) => s.id === "made-up"), undefined);
  });
});

describe("metrics", () => {
  test("after traffic, the metrics text has the link, connection, byte and duration series; stop() unsubscribes", async () => {
    const n = await line(echoUpper);
    const metrics = startSiteMetrics(n.a);
    cleanup.push(() => metrics.stop());
    assert.equal((await exchange(n.listenerPort, "hello")).reply, "HELLO!");
    await until("A's listener to count the connection", () => n.a.status().listeners[0]?.opened === 1 && n.a.status().listeners[0]?.connections === 0);
    const { contentType, body } = await metrics.metrics();
    assert.match(contentType, /^text\/plain; version=0\.0\.4/);
    const labels = 'routing_key="svc",role="listener",remote_site="c",remote_site_id="id-c"';
    for (const line of [
      `skupper_connections_opened_total{${labels}} 1`,
      `skupper_connections_active{${labels}} 0`,
      `skupper_connection_bytes_total{${labels},way="out"} 5`,
      `skupper_connection_bytes_total{${labels},way="in"} 6`,
      `skupper_connection_duration_seconds_count{${labels}} 1`,
      `skupper_link_up{link="id-a-to-id-b",direction="outgoing",remote_site="b",remote_site_id="id-b"} 1`,
    ]) {
      assert.ok(body.includes(line), `missing: ${line}\n${body.split("\n").filter((l) => l.startsWith("skupper_")).join("\n")}`);
    }
    assert.match(body, /^skupper_link_bytes_total\{link="id-a-to-id-b",direction="outgoing",remote_site="b",remote_site_id="id-b",way="out"\} [1-9]\d*$/m);
    assert.match(body, /^process_cpu_user_seconds_total \d/m);
    assert.match(body, /^nodejs_eventloop_lag_seconds /m);
    assert.ok(!body.includes('remote_site="a"'), "only site A's own events (B and C run in this process too)");
    metrics.stop();
    assert.equal(diagnostics.channel(CHANNELS.streamOpen).hasSubscribers, false);
  });

  test("metrics started late take in the links and streams already open; grant redemptions are counted by outcome", async () => {
    let backendSocket: net.Socket | undefined;
    const n = await line((s) => (backendSocket = s));
    const client = net.connect({ port: n.listenerPort, host: "127.0.0.1" });
    cleanup.push(() => client.destroy());
    await until("the backend connection", () => backendSocket !== undefined);
    const metrics = startSiteMetrics(n.c, { defaultMetrics: false });
    cleanup.push(() => metrics.stop());
    diagnostics.channel(CHANNELS.grantRedemption).publish({ outcome: "expired" });
    const { body } = await metrics.metrics();
    assert.ok(body.includes('skupper_connections_active{routing_key="svc",role="connector",remote_site="a",remote_site_id="id-a"} 1'), body);
    assert.ok(body.includes('skupper_link_up{link="id-c-to-id-b",direction="outgoing",remote_site="b",remote_site_id="id-b"} 1'), body);
    assert.ok(body.includes('skupper_grant_redemptions_total{outcome="expired"} 1'), body);
  });
});

describe("over real TLS", () => {
  test("a link's bytes, reconnects and last error, and the far site's summary, in status", async () => {
    const ca = await createCA("site-b");
    const server = await issueCertificate(ca, { commonName: "skupper-site-server", hosts: ["127.0.0.1"], usage: "server" });
    const client = await issueCertificate(ca, { commonName: "a", usage: "client" });
    const a = router("a", { trafficIntervalMs: 50 });
    const b = router("b", { trafficIntervalMs: 50 });
    const linkPort = await freePort();
    const credentials = { ca: ca.cert, cert: client.cert, key: client.key };
    // First nobody listens: the link records why it failed.
    a.setOutgoingLinks([{ name: "to-b", cost: 1, endpoints: [{ host: "127.0.0.1", port: linkPort }], credentials }]);
    await until("a failed attempt", () => a.status().outgoing[0]?.lastError !== undefined, 3000);
    assert.match(a.status().outgoing[0]!.lastError!.message, /connection refused/);
    await b.setLinkServer({ host: "127.0.0.1", port: linkPort, credentials: { ca: ca.cert, cert: server.cert, key: server.key } });
    await until("the link up", () => a.status().outgoing[0]?.state === "up", 5000);
    const backend = await serve(echoUpper);
    cleanup.push(() => backend.close());
    const listenerPort = await freePort();
    b.setConnectors([{ name: "svc", host: "127.0.0.1", port: backend.port, routingKey: "svc" }]);
    a.setListeners([{ name: "svc", host: "127.0.0.1", port: listenerPort, routingKey: "svc" }]);
    await until("A's listener to open", () => a.status().listeners[0]?.state === "listening");
    const payload = "x".repeat(100_000);
    assert.equal((await exchange(listenerPort, payload)).reply.length, 100_001);
    const link = a.status().outgoing[0]!;
    assert.ok((link.bytesOut ?? 0) > 100_000 && (link.bytesIn ?? 0) > 100_000, JSON.stringify(link));
    assert.equal(link.reconnects, 0);
    await until("A to hold B's summary", () =>
      a.status().network.find((s) => s.id === "id-b")?.traffic?.services.some((t) => t.role === "connector" && t.bytesIn === 100_000 && t.bytesOut === 100_001) === true,
    );
    const incoming = b.status().incoming[0]!;
    assert.ok((incoming.bytesIn ?? 0) > 100_000);
  });
});
