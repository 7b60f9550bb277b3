/**
 * `skupper revoke-access` on a listening site with linked sites, a service used across a link,
 * and tokens still outstanding: every incoming link goes down and stays down, the service stops
 * being reachable, the outstanding tokens are refused, and a token issued afterwards works.
 */
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import { after, before, describe, test } from "node:test";
import { eventually, freePort, holdsFor, Sandbox, skupper } from "../helpers/cli.js";
import { connect, LoopbackNetwork, roundTrip, serve, type Backend } from "../helpers/network.js";

describe("revoke-access on a listening site", () => {
  let sandbox: Sandbox;
  let network: LoopbackNetwork;
  const backends: Backend[] = [];

  before(async () => {
    sandbox = await Sandbox.create("revoke");
    network = new LoopbackNetwork(sandbox, sandbox.home());
    await Promise.all([
      network.createSite("west", { linkAccess: true }),
      network.createSite("east1"),
      network.createSite("east2"),
      network.createSite("newcomer"),
    ]);
  });

  after(async () => {
    await Promise.all(backends.map((b) => b.close()));
    await sandbox.cleanup();
  });

  async function issue(file: string, ...flags: string[]): Promise<{ file: string; name: string }> {
    const path = sandbox.file(file);
    await network.run("west", ["token", "issue", path, ...flags]);
    const name = /name: (\S+)/.exec(await fs.readFile(path, "utf8"))?.[1];
    assert.ok(name, `${file} names its token`);
    return { file: path, name };
  }

  async function redeem(site: string, token: { file: string }) {
    return skupper(["-n", site, "token", "redeem", token.file, "--timeout", "20s"], { home: network.home });
  }

  async function incoming(): Promise<Array<Record<string, string>>> {
    return (await network.linkRows("west")).filter((r) => r.DIRECTION === "incoming");
  }

  /** Whether a client can get an echo through west's listener right now. */
  async function serviceAnswers(port: number): Promise<boolean> {
    const socket = await connect(port).catch(() => undefined);
    if (!socket) return false;
    try {
      return (await roundTrip(socket, "hello?", 2_000).catch(() => "")) === "hello?";
    } finally {
      socket.destroy();
    }
  }

  test("every incoming link goes down and stays down, outstanding tokens are refused, a new token works", async () => {
    // Two linked sites; a three-use token with two uses left and a token never redeemed.
    const single = await issue("single.yaml");
    const multi = await issue("multi.yaml", "--redemptions-allowed", "3");
    const unused = await issue("unused.yaml");
    assert.equal((await redeem("east1", single)).code, 0);
    assert.equal((await redeem("east2", multi)).code, 0);
    const links = { east1: single.name, east2: multi.name };
    for (const [site, name] of Object.entries(links)) {
      await eventually(`${site}'s link to be Ready`, async () => (await network.linkRows(site)).find((r) => r.NAME === name && r.STATUS === "Ready"));
    }
    await eventually("west to see both incoming links", async () => (await incoming()).filter((r) => r.STATUS === "Ready").length === 2);

    // A service on east1 used from west, so "down" is also seen as traffic that stops.
    const echo = await serve((socket) => socket.pipe(socket));
    backends.push(echo);
    const port = await freePort();
    await network.run("east1", ["connector", "create", "echo", String(echo.port), "--host", "127.0.0.1"]);
    await network.run("west", ["listener", "create", "echo", String(port), "--wait", "ready"]);
    assert.ok(await eventually("the service on east1 to answer on west", () => serviceAnswers(port)));

    const revoked = await network.run("west", ["revoke-access"]);
    assert.match(revoked, /Access to site "west" has been revoked/);

    for (const [site, name] of Object.entries(links)) {
      const row = await eventually(`${site}'s link to be refused for its credentials`, async () =>
        (await network.linkRows(site)).find((r) => r.NAME === name && r.STATUS !== "Ready" && /certificate|\bCA\b/i.test(r.MESSAGE ?? "")),
      );
      assert.equal(row.STATUS, "Error", `${site}: ${row.MESSAGE}`);
    }
    assert.deepEqual(await incoming(), [], "west lists no incoming link");
    await eventually("the service on east1 to be unreachable from west", async () => !(await serviceAnswers(port)));

    // The connecting sites keep retrying; none of the retries may get a link back.
    const checks = await holdsFor(
      "the revoked links staying down",
      async () => {
        const [rows1, rows2, westRows, answers] = await Promise.all([
          network.linkRows("east1"),
          network.linkRows("east2"),
          incoming(),
          serviceAnswers(port),
        ]);
        const up = [...rows1, ...rows2].filter((r) => r.STATUS === "Ready");
        if (up.length > 0) return `Ready again: ${up.map((r) => r.NAME).join(", ")}`;
        if (westRows.length > 0) return `west lists incoming links: ${westRows.map((r) => r["REMOTE SITE"]).join(", ")}`;
        if (answers) return "the service answers through a revoked link";
        return true;
      },
      6_000,
    );
    assert.ok(checks >= 2);

    // Tokens issued before the revocation are refused, and leave nothing behind.
    for (const token of [unused, multi]) {
      const result = await redeem("newcomer", token);
      assert.equal(result.code, 1, `${token.name} is refused: ${result.stdout}${result.stderr}`);
      assert.match(result.stderr, new RegExp(`Token "${token.name}" could not be redeemed`));
      assert.doesNotMatch(result.stderr, /\n\s+at /, "no stack trace");
    }
    assert.equal((await network.run("newcomer", ["get", "links", "-o", "name"])).trim(), "", "the refused tokens made no link");
    assert.match(await network.run("west", ["get", "accessgrants"]), /^No AccessGrant resources found/, "west has no grant left to redeem");

    // A token issued after the revocation works.
    const fresh = await issue("fresh.yaml");
    const result = await redeem("newcomer", fresh);
    assert.equal(result.code, 0, result.stderr);
    await eventually("the newcomer's link to be Ready", async () =>
      (await network.linkRows("newcomer")).find((r) => r.NAME === fresh.name && r.STATUS === "Ready"),
    );
    const rows = await eventually("west to see the newcomer's link, and only it", async () => {
      const list = await incoming();
      return list.length === 1 && list[0]?.STATUS === "Ready" ? list : undefined;
    });
    assert.equal(rows[0]?.["REMOTE SITE"], "newcomer");
    assert.deepEqual(
      (await Promise.all(Object.keys(links).map((site) => network.linkRows(site)))).flat().filter((r) => r.STATUS === "Ready"),
      [],
      "the revoked sites are still not linked",
    );
  });
});
