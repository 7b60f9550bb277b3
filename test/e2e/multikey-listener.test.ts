/**
 * A MultiKeyListener between two real sites: one port on site A whose connections go to the
 * first of its routing keys, in priority order, that has a reachable connector (on site B),
 * failing over to the next as connectors go and coming back as they return, with its status
 * saying which keys are reachable.
 */
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import { after, before, describe, test } from "node:test";
import { eventually, freePort, Sandbox } from "../helpers/cli.js";
import { exchange, identityBackend, LoopbackNetwork, type Backend } from "../helpers/network.js";

interface MultiKeyStatus {
  status?: { status?: string; message?: string; hasDestination?: boolean; strategy?: { priority?: { routingKeysReachable?: string[] } } };
}

describe("a MultiKeyListener with a priority strategy", () => {
  let sandbox: Sandbox;
  let network: LoopbackNetwork;
  let port: number;
  const backends: Backend[] = [];

  before(async () => {
    sandbox = await Sandbox.create("multikey");
    network = new LoopbackNetwork(sandbox, sandbox.home());
    await Promise.all([network.createSite("a"), network.createSite("b", { linkAccess: true })]);
    await network.link("a", "b");
    for (const name of ["primary", "secondary"]) {
      const backend = await identityBackend(name);
      backends.push(backend);
      await network.run("b", ["connector", "create", `db-${name}`, String(backend.port), "--host", "127.0.0.1", "--routing-key", `db-${name}`, "--wait", "none"]);
    }
    port = await freePort();
    const file = sandbox.file("mkl.yaml");
    await fs.writeFile(
      file,
      `apiVersion: skupper.io/v2alpha1
kind: MultiKeyListener
metadata:
  name: db
spec:
  host: 127.0.0.1
  port: ${port}
  strategy:
    priority:
      routingKeys: [db-primary, db-secondary]
`,
    );
    assert.match(await network.run("a", ["apply", "-f", file]), /MultiKeyListener "db" created\./);
  });

  after(async () => {
    await Promise.all(backends.map((b) => b.close()));
    await sandbox.cleanup();
  });

  async function status(): Promise<NonNullable<MultiKeyStatus["status"]>> {
    return ((JSON.parse(await network.run("a", ["get", "multikeylistener", "db", "-o", "json"])) as MultiKeyStatus).status ?? {});
  }

  async function reachable(keys: string[]): Promise<void> {
    await eventually(`A to see ${keys.join(", ") || "no key"} reachable`, async () => JSON.stringify((await status()).strategy?.priority?.routingKeysReachable ?? []) === JSON.stringify(keys));
  }

  /** Which backend answers a new connection to the listener. */
  async function answer(): Promise<string> {
    return (await exchange(port, "")).toString();
  }

  test("connections go to the first key with a connector; the status says Ready with both keys reachable", async () => {
    await reachable(["db-primary", "db-secondary"]);
    const ready = await status();
    assert.deepEqual([ready.status, ready.hasDestination], ["Ready", true]);
    assert.equal(await answer(), "primary");
    assert.equal(await answer(), "primary", "every time, not in turn");
  });

  test("without the preferred key's connector they fail over to the next key, and come back", async () => {
    await network.run("b", ["connector", "delete", "db-primary"]);
    await reachable(["db-secondary"]);
    assert.equal(await answer(), "secondary");
    await network.run("b", ["connector", "create", "db-primary", String(backends[0]!.port), "--host", "127.0.0.1", "--routing-key", "db-primary"]);
    await reachable(["db-primary", "db-secondary"]);
    assert.equal(await answer(), "primary");
  });

  test("with no key reachable it is not operational and says so", async () => {
    for (const name of ["db-primary", "db-secondary"]) await network.run("b", ["connector", "delete", name]);
    await reachable([]);
    const down = await status();
    assert.equal(down.hasDestination, false);
    assert.notEqual(down.status, "Ready");
    assert.match(down.message ?? "", /No matching connectors/);
  });
});
