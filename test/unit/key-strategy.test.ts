/**
 * Listeners with several routing keys (MultiKeyListener): how a key is chosen for each new
 * connection (src/router/strategy.ts), and a router that fails over from the preferred key to
 * the next as connectors come and go, with real TCP backends behind memory links.
 */
import assert from "node:assert/strict";
import { afterEach, describe, test } from "node:test";
import { setLogLevel } from "../../src/common/log.js";
import { Router } from "../../src/router/router.js";
import { chooseKey, reachableKeys, type KeyStrategy } from "../../src/router/strategy.js";
import { freePort } from "../helpers/cli.js";
import { forgetSockets, linkRouters, until } from "../helpers/memory-link.js";
import { connect, roundTrip, serve, type Backend } from "../helpers/network.js";

setLogLevel("error");

describe("choosing a key", () => {
  const priority: KeyStrategy = { kind: "priority", keys: ["primary", "secondary", "last"] };

  test("priority: the first reachable key in order; none when none is reachable", () => {
    assert.equal(chooseKey(priority, () => true), "primary");
    assert.equal(chooseKey(priority, (k) => k !== "primary"), "secondary");
    assert.equal(chooseKey(priority, (k) => k === "last"), "last");
    assert.equal(chooseKey(priority, () => false), undefined);
    assert.deepEqual(reachableKeys(priority, (k) => k !== "secondary"), ["primary", "last"]);
  });

  test("weighted: in proportion to the weights, among reachable keys only", () => {
    const weighted: KeyStrategy = { kind: "weighted", weights: { a: 1, b: 3, gone: 100 } };
    const reachable = (k: string) => k !== "gone";
    // random() spans [0, 4): a takes [0, 1), b [1, 4).
    assert.equal(chooseKey(weighted, reachable, () => 0), "a");
    assert.equal(chooseKey(weighted, reachable, () => 0.24), "a");
    assert.equal(chooseKey(weighted, reachable, () => 0.26), "b");
    assert.equal(chooseKey(weighted, reachable, () => 0.999), "b");
    const counts = { a: 0, b: 0 };
    let seed = 1;
    const lcg = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
    for (let i = 0; i < 4000; i++) counts[chooseKey(weighted, reachable, lcg) as "a" | "b"]++;
    assert.ok(counts.b > 2.5 * counts.a && counts.b < 3.5 * counts.a, `a ${counts.a}, b ${counts.b}`);
    assert.equal(chooseKey(weighted, () => false), undefined);
  });
});

describe("a multi-key listener on a router", () => {
  const cleanup: Array<() => unknown> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
    forgetSockets();
  });

  async function backend(name: string): Promise<Backend> {
    const b = await serve((socket) => {
      socket.write(`${name}\n`);
      socket.pipe(socket);
    });
    cleanup.push(() => b.close());
    return b;
  }

  /** Connects to the listener and reads which backend answered. */
  async function answeredBy(port: number): Promise<string> {
    const socket = await connect(port);
    cleanup.push(() => socket.destroy());
    socket.on("error", () => undefined);
    const greeting = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no greeting within 5 s")), 5_000);
      socket.once("data", (d: Buffer) => {
        clearTimeout(timer);
        resolve(d.toString().trim());
      });
    });
    assert.equal(await roundTrip(socket, "ping"), "ping");
    return greeting;
  }

  test("priority: connections go to the first key with a connector, fail over to the next, and come back", async () => {
    const a = new Router({ siteId: "id-a", siteName: "a", version: "test" });
    const b = new Router({ siteId: "id-b", siteName: "b", version: "test" });
    cleanup.push(() => a.close(), () => b.close());
    const link = linkRouters(a, b);
    cleanup.push(link.close);
    const [primary, secondary] = [await backend("primary"), await backend("secondary")];
    const port = await freePort();
    a.setListeners([{ name: "db", host: "127.0.0.1", port, routingKey: "", strategy: { kind: "priority", keys: ["db-primary", "db-secondary"] } }]);
    const connectors = {
      primary: { name: "primary", host: "127.0.0.1", port: primary.port, routingKey: "db-primary" },
      secondary: { name: "secondary", host: "127.0.0.1", port: secondary.port, routingKey: "db-secondary" },
    };
    const listener = () => a.status().listeners[0];

    b.setConnectors([connectors.secondary]);
    await until("the listener to open with only the secondary key reachable", () => listener()?.state === "listening");
    assert.deepEqual(listener()?.reachableKeys, ["db-secondary"]);
    assert.equal(await answeredBy(port), "secondary");

    b.setConnectors([connectors.primary, connectors.secondary]);
    await until("A to see the primary key", () => listener()?.reachableKeys?.length === 2);
    assert.deepEqual(listener()?.reachableKeys, ["db-primary", "db-secondary"]);
    assert.equal(await answeredBy(port), "primary");
    assert.ok(b.status().listeners.length === 0 && a.status().network.find((s) => s.id === "id-a")?.listeners["db-primary"] === 1, "A advertises a listener for each key");

    b.setConnectors([connectors.secondary]);
    await until("A to lose the primary key", () => listener()?.reachableKeys?.length === 1);
    assert.equal(await answeredBy(port), "secondary");

    b.setConnectors([]);
    await until("the listener to stop taking connections with no key reachable", () => listener()?.state !== "listening");
    assert.equal(listener()?.hasMatchingConnector, false);
  });
});
