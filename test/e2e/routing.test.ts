/**
 * Multi-hop routing on loopback: three sites in a line A—B—C, a cheaper direct link added and
 * removed, and one service offered by two sites.
 */
import assert from "node:assert/strict";
import type net from "node:net";
import { after, before, describe, test } from "node:test";
import { eventually, freePort, Sandbox, sitePid } from "../helpers/cli.js";
import { connect, identityBackend, LoopbackNetwork, outcome, roundTrip, type Backend } from "../helpers/network.js";

/** Connects and resolves with the name the backend greets with, and the open socket. */
async function greeting(port: number, timeoutMs = 5_000): Promise<{ name: string; socket: net.Socket }> {
  const socket = await connect(port);
  const name = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no greeting within ${timeoutMs} ms`)), timeoutMs);
    socket.once("data", (d: Buffer) => {
      clearTimeout(timer);
      resolve(d.toString());
    });
    socket.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
  return { name, socket };
}

describe("three sites in a line A—B—C", () => {
  let sandbox: Sandbox;
  let network: LoopbackNetwork;
  const backends: Backend[] = [];
  const sockets: net.Socket[] = [];
  let servicePort: number;

  before(async () => {
    sandbox = await Sandbox.create("routing");
    network = new LoopbackNetwork(sandbox, sandbox.home());
    await network.line();
    const backendC = await identityBackend("C");
    backends.push(backendC);
    await network.run("c", ["connector", "create", "svc", String(backendC.port), "--host", "127.0.0.1"]);
    servicePort = await freePort();
    await network.run("a", ["listener", "create", "svc", String(servicePort), "--wait", "ready"]);
  });

  after(async () => {
    for (const s of sockets) s.destroy();
    await Promise.all(backends.map((b) => b.close()));
    await sandbox.cleanup();
  });

  test("a service on C is used from A through B; a cheaper direct link takes new connections; when it dies they go back through B", async () => {
    assert.equal(await eventually("A to reach C at cost 2, through B", async () => (await network.costTo("a", "c")) === "2" && "2"), "2");
    const viaB = await greeting(servicePort);
    sockets.push(viaB.socket);
    assert.equal(viaB.name, "C");

    const direct = await network.link("a", "c", 1);
    await eventually("A to reach C at cost 1, directly", async () => (await network.costTo("a", "c")) === "1");
    const viaDirect = await greeting(servicePort);
    sockets.push(viaDirect.socket);
    assert.equal(await roundTrip(viaDirect.socket, "over the direct link"), "over the direct link");

    const directEnded = outcome(viaDirect.socket);
    const deletion = network.run("a", ["link", "delete", direct]);
    assert.equal(await directEnded, "reset", "a stream over the removed link is reset, not ended cleanly");
    const died = Date.now();
    const next = await eventually(
      "a new connection through B after the direct link died",
      () => greeting(servicePort, 500).catch(() => undefined),
      1_000,
      20,
    );
    sockets.push(next.socket);
    assert.ok(Date.now() - died <= 1_000);
    assert.equal(await roundTrip(next.socket, "through B again"), "through B again");
    assert.equal(await roundTrip(viaB.socket, "still here"), "still here", "the connection through B was never disturbed");
    await deletion;
  });

  test("a frozen site is detected by heartbeats within 3 s, and its link returns when it resumes", async () => {
    const pidB = await sitePid(network.home, "b");
    assert.ok(pidB, "site b runs");
    const linkToB = (await network.linkRows("a")).find((r) => r["REMOTE SITE"] === "b");
    assert.equal(linkToB?.STATUS, "Ready");
    process.kill(pidB, "SIGSTOP"); // its sockets stay open; only its silence can tell
    try {
      const frozen = Date.now();
      const down = await eventually(
        "A to declare the link to the frozen site down",
        async () => (await network.linkRows("a")).find((r) => r.NAME === linkToB?.NAME && r.STATUS !== "Ready"),
        4_000,
      );
      assert.ok(Date.now() - frozen <= 4_000);
      assert.match(down.MESSAGE ?? "", /heartbeat|timed out|not respond/i, `the message says why: ${down.MESSAGE}`);
    } finally {
      process.kill(pidB, "SIGCONT");
    }
    await eventually("the link to come back after the site resumes", async () =>
      (await network.linkRows("a")).find((r) => r.NAME === linkToB?.NAME && r.STATUS === "Ready"), 15_000);
  });

  test("two connectors for one key on different sites: connections are spread; when one site stops, all new ones reach the other", async () => {
    const backendB = await identityBackend("B");
    backends.push(backendB);
    const backendC = await identityBackend("C");
    backends.push(backendC);
    await network.run("b", ["connector", "create", "spread", String(backendB.port), "--host", "127.0.0.1"]);
    await network.run("c", ["connector", "create", "spread", String(backendC.port), "--host", "127.0.0.1"]);
    const port = await freePort();
    await network.run("a", ["listener", "create", "spread", String(port), "--wait", "ready"]);
    await eventually("A to see the connectors on both B and C", async () => {
      const out = await network.run("a", ["network", "status"]);
      return /spread\s+a\s+b, c/.test(out);
    });

    const held = [];
    for (let i = 0; i < 10; i++) held.push(await greeting(port));
    sockets.push(...held.map((h) => h.socket));
    const counts = { B: 0, C: 0 } as Record<string, number>;
    for (const h of held) counts[h.name] = (counts[h.name] ?? 0) + 1;
    assert.ok((counts.B ?? 0) > 0 && (counts.C ?? 0) > 0, `held connections are spread over both sites: ${JSON.stringify(counts)}`);

    const pidC = await sitePid(network.home, "c");
    assert.ok(pidC, "site c runs");
    process.kill(pidC, "SIGKILL");
    await eventually("A to lose C", async () => (await network.costTo("a", "c")) === undefined || (await network.costTo("a", "c")) === "-");
    const afterStop = await Promise.all(Array.from({ length: 20 }, () => greeting(port)));
    sockets.push(...afterStop.map((h) => h.socket));
    assert.deepEqual(
      afterStop.map((h) => h.name),
      Array(20).fill("B"),
      "every new connection is served by the site still running",
    );
  });
});

describe("two sites linked in both directions", () => {
  let sandbox: Sandbox;
  let network: LoopbackNetwork;
  let backend: Backend;
  let servicePort: number;
  const sockets: net.Socket[] = [];

  before(async () => {
    sandbox = await Sandbox.create("both-ways");
    network = new LoopbackNetwork(sandbox, sandbox.home());
    await network.createSite("a", { linkAccess: true });
    await network.createSite("b", { linkAccess: true });
    backend = await identityBackend("B");
    await network.run("b", ["connector", "create", "svc", String(backend.port), "--host", "127.0.0.1"]);
    servicePort = await freePort();
  });

  after(async () => {
    for (const s of sockets) s.destroy();
    await backend.close();
    await sandbox.cleanup();
  });

  /** The names of `site`'s Ready links to or from `other`, as `direction name`. */
  async function readyLinks(site: string, other: string): Promise<string[]> {
    return (await network.linkRows(site))
      .filter((r) => r["REMOTE SITE"] === other && r.STATUS === "Ready")
      .map((r) => `${r.DIRECTION} ${r.NAME}`)
      .sort();
  }

  test("with a link each way the path costs 1, not 2; deleting either one leaves the service reachable through the other", async () => {
    const aToB = await network.link("a", "b");
    const bToA = await network.link("b", "a");
    await network.run("a", ["listener", "create", "svc", String(servicePort), "--wait", "ready"]);
    assert.deepEqual(await eventually("A to see both links", async () => {
      const links = await readyLinks("a", "b");
      return links.length === 2 && links;
    }), [`incoming ${bToA}`, `outgoing ${aToB}`]);
    assert.equal(await network.costTo("a", "b"), "1", "two links between the same sites are one hop of cost 1");
    const first = await greeting(servicePort);
    sockets.push(first.socket);
    assert.equal(first.name, "B");

    // Delete A's own link: B's link to A carries new connections.
    await network.run("a", ["link", "delete", aToB]);
    await eventually("A to be left with B's link only", async () => (await readyLinks("a", "b")).join() === `incoming ${bToA}`);
    assert.equal(await network.costTo("a", "b"), "1");
    const overBToA = await eventually("a connection over B's link", () => greeting(servicePort, 1_000).catch(() => undefined), 5_000);
    sockets.push(overBToA.socket);
    assert.equal(await roundTrip(overBToA.socket, "over B's link"), "over B's link");

    // A links again, then B deletes its link: A's new link carries them.
    const again = await network.link("a", "b");
    await eventually("A to see both links again", async () => (await readyLinks("a", "b")).length === 2);
    await network.run("b", ["link", "delete", bToA]);
    await eventually("A to be left with its new link only", async () => (await readyLinks("a", "b")).join() === `outgoing ${again}`);
    const overAgain = await eventually("a connection over A's new link", () => greeting(servicePort, 1_000).catch(() => undefined), 5_000);
    sockets.push(overAgain.socket);
    assert.equal(await roundTrip(overAgain.socket, "over A's link"), "over A's link");
    assert.equal(await network.costTo("a", "b"), "1");
  });
});
