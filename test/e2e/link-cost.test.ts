/**
 * `skupper link update NAME --cost N` on an open link: both ends show the new cost while the
 * link, and the connections over it, stay up; and where a service is reachable over two paths
 * (A—C directly, or A—B—C), new connections take whichever the costs make cheaper.
 */
import assert from "node:assert/strict";
import type net from "node:net";
import { after, before, describe, test } from "node:test";
import { delay, eventually, freePort, Sandbox } from "../helpers/cli.js";
import { connect, LoopbackNetwork, outcome, roundTrip, serve, type Backend } from "../helpers/network.js";

describe("link cost on an open link, with sites A, B, C and a direct link A—C", () => {
  let sandbox: Sandbox;
  let network: LoopbackNetwork;
  let direct: string;
  let servicePort: number;
  const backends: Backend[] = [];
  const sockets: net.Socket[] = [];

  before(async () => {
    sandbox = await Sandbox.create("link-cost");
    network = new LoopbackNetwork(sandbox, sandbox.home());
    await Promise.all([network.createSite("a"), network.createSite("b", { linkAccess: true }), network.createSite("c", { linkAccess: true })]);
    await network.link("a", "b");
    direct = await network.link("a", "c");
    const echo = await serve((socket) => socket.pipe(socket));
    backends.push(echo);
    await network.run("c", ["connector", "create", "svc", String(echo.port), "--host", "127.0.0.1"]);
    servicePort = await freePort();
    await network.run("a", ["listener", "create", "svc", String(servicePort), "--wait", "ready"]);
  });

  after(async () => {
    for (const s of sockets) s.destroy();
    await Promise.all(backends.map((b) => b.close()));
    await sandbox.cleanup();
  });

  /** A connection to the service on C that has echoed once, and how it ends (watched from the start, so a reset is never unhandled). */
  async function open(label: string): Promise<{ socket: net.Socket; ended: Promise<string> }> {
    const socket = await connect(servicePort);
    sockets.push(socket);
    const ended = outcome(socket);
    assert.equal(await roundTrip(socket, label), label);
    return { socket, ended };
  }

  /** "open" when the connection has not ended by now. */
  function stillOpen(ended: Promise<string>): Promise<string> {
    return Promise.race([ended, new Promise<string>((resolve) => setImmediate(() => resolve("open")))]);
  }

  async function setCost(cost: number): Promise<void> {
    const out = await network.run("a", ["link", "update", direct, "--cost", String(cost)]);
    assert.match(out, new RegExp(`Link "${direct}" is updated`));
  }

  async function routeCost(expected: string, why: string, timeoutMs = 20_000): Promise<void> {
    await eventually(`A to reach C at cost ${expected} (${why})`, async () => (await network.costTo("a", "c")) === expected, timeoutMs);
  }

  test("both ends show the new cost, and the link and a connection over it stay up", async () => {
    await setCost(1);
    await routeCost("1", "the direct link");
    const before = (await network.linkRows("c")).find((r) => r.NAME === direct && r.DIRECTION === "incoming");
    assert.equal(before?.STATUS, "Ready");
    const { socket: conn, ended } = await open("before the update");

    await setCost(7);
    const outgoing = (await network.linkRows("a")).find((r) => r.NAME === direct);
    assert.deepEqual([outgoing?.STATUS, outgoing?.COST], ["Ready", "7"], "`link status` on A shows the new cost");
    const shown = await network.run("a", ["link", "status", direct]);
    assert.match(shown, /^Cost\t: 7$/m);
    const incoming = await eventually("C to show the new cost on the incoming link", async () =>
      (await network.linkRows("c")).find((r) => r.NAME === direct && r.DIRECTION === "incoming" && r.COST === "7"),
    );
    assert.equal(incoming.STATUS, "Ready");
    assert.equal(await network.costTo("a", "c"), "7", "with no other path, C is now 7 away");

    // Had the link been re-established, the connection over it would have been reset.
    assert.equal(await roundTrip(conn, "after the update"), "after the update", "the connection over the link is still open");
    assert.equal(await stillOpen(ended), "open", "the connection was neither ended nor reset");
  });

  test("with two paths to the service, new connections follow the cheaper one as the cost changes", async () => {
    const viaB = await network.link("c", "b");
    try {
      // Raised above the two hops through B: new connections go through B.
      await setCost(5);
      await routeCost("2", "A—B—C is cheaper than 5");
      const throughB = await open("through B");

      // Lowered below them: new connections take the direct link again.
      await setCost(1);
      await routeCost("1", "the direct link is cheaper than 2");
      const throughDirect = await open("direct");
      assert.equal(await stillOpen(throughB.ended), "open", "lowering the cost left the connection through B open");

      // Which path each one took shows when the B path is cut: only the connection through B is reset.
      await network.run("c", ["link", "delete", viaB]);
      const bOutcome = await Promise.race([throughB.ended, delay(5_000).then(() => "still open 5 s after the B path was cut")]);
      assert.equal(bOutcome, "reset", "the connection opened at cost 5 went through B");
      assert.equal(await stillOpen(throughDirect.ended), "open", "the connection opened at cost 1 was not ended when the B path was cut");
      assert.equal(await roundTrip(throughDirect.socket, "still here"), "still here", "the connection opened at cost 1 went directly");
    } finally {
      await network.run("c", ["link", "delete", viaB]).catch(() => undefined);
    }
  });
});
