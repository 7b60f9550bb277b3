/** The observer server's settings, event stream and limits, and the console's model of a view. */
import assert from "node:assert/strict";
import http from "node:http";
import { after, describe, test } from "node:test";
import { NETWORK_STATUS_SCHEMA, type NetworkStatus } from "../../src/api/index.js";
import { isLoopback, observerConfig, ObserverServer } from "../../src/console/index.js";
import { buildModel, formatRate, type ConsoleView } from "../../src/console/web/model.js";
import { freePort } from "../helpers/cli.js";

function view(overrides: Partial<NonNullable<ConsoleView["router"]>> = {}): ConsoleView {
  return {
    schema: NETWORK_STATUS_SCHEMA,
    siteId: "a",
    siteName: "west",
    namespace: "west",
    version: "test",
    inputProblems: [],
    router: {
      siteId: "a",
      siteName: "west",
      linkServer: { state: "disabled", message: "" },
      outgoing: [{ name: "to-east", state: "up", message: "", cost: 1, remoteSiteId: "b", remoteSiteName: "east", rttMs: 2, since: 1000, bytesIn: 1000, bytesOut: 1000 }],
      incoming: [],
      listeners: [],
      connectors: [],
      network: [
        { id: "a", name: "west", links: { b: 1 }, connectors: {}, listeners: {}, reachable: true, cost: 0 },
        { id: "b", name: "east", links: { a: 1, c: 1 }, rtt: { c: 3 }, connectors: {}, listeners: {}, reachable: true, cost: 1 },
        { id: "c", name: "north", links: { b: 1 }, connectors: { echo: 1 }, listeners: {}, reachable: true, cost: 2 },
      ],
      ...overrides,
    },
  } as ConsoleView;
}

describe("the console's model", () => {
  test("sites and links from the link-state database and this site's own links", () => {
    const model = buildModel(view(), 0);
    assert.deepEqual(model.sites.map((s) => s.name), ["west", "east", "north"]);
    assert.deepEqual(model.links.map((l) => [l.id, l.state, l.rttMs]), [["a|b", "up", 2], ["b|c", "up", 3]]);
    assert.equal(model.services[0]?.routingKey, "echo");
  });

  test("throughput from two views' byte counters; – without counters", () => {
    const first = buildModel(view(), 0);
    const second = buildModel(view({ outgoing: [{ name: "to-east", state: "up", message: "", cost: 1, remoteSiteId: "b", remoteSiteName: "east", since: 1000, bytesIn: 3000, bytesOut: 2000 }] }), 2000, first);
    assert.equal(second.links.find((l) => l.id === "a|b")?.rate, 1500);
    assert.equal(formatRate(second.links.find((l) => l.id === "b|c")?.rate), "–");
  });

  test("a link that goes down keeps its far site and says why; one that leaves the view is shown gone", () => {
    const first = buildModel(view(), 0);
    const down = buildModel(
      view({
        outgoing: [{ name: "to-east", state: "connecting", message: "connect ECONNREFUSED 127.0.0.1:1", cost: 1, since: 5000 }],
        network: [{ id: "a", name: "west", links: {}, connectors: {}, listeners: {}, reachable: true, cost: 0 }],
      }),
      1000,
      first,
    );
    const link = down.links.find((l) => l.id === "a|b");
    assert.equal(link?.state, "down");
    assert.equal(link?.detail, "connecting");
    assert.equal(link?.message, "connect ECONNREFUSED 127.0.0.1:1");
    assert.equal(down.sites.find((s) => s.id === "b")?.reachable, false);
    assert.equal(down.links.find((l) => l.id === "b|c")?.detail, "gone");
  });
});

describe("observer settings", () => {
  test("off without a port; loopback by default; problems turn it off", () => {
    assert.deepEqual(observerConfig(undefined), { enabled: false, problems: [] });
    assert.deepEqual(observerConfig({ "observer-port": "9090" }), { enabled: true, port: 9090, host: "127.0.0.1", problems: [] });
    assert.deepEqual(observerConfig({ "observer-port": "9090", "observer-host": "[::1]" }), observerConfig({ "observer-port": "9090", "observer-host": "::1" }));
    assert.equal(observerConfig({ "observer-port": "70000" }).problems.length, 1);
    assert.equal(observerConfig({ "observer-port": "80", "observer-host": "localhost" }).problems.length, 1);
    assert.ok(isLoopback("127.0.0.2") && isLoopback("::1") && !isLoopback("0.0.0.0") && !isLoopback("10.0.0.1") && !isLoopback("::"));
  });
});

describe("the observer server", () => {
  const servers: ObserverServer[] = [];
  after(async () => {
    for (const s of servers) await s.close();
  });

  function start(viewOf: () => NetworkStatus, options = {}) {
    const server = new ObserverServer({ view: viewOf, credential: async () => "secret" }, { pushIntervalMs: 200, ...options });
    servers.push(server);
    return server;
  }

  function events(port: number, count: number): Promise<Array<{ status: number; data?: string }>> {
    return new Promise((resolve, reject) => {
      const got: Array<{ status: number; data?: string }> = [];
      const req = http.get({ host: "127.0.0.1", port, path: "/api/events" }, (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          resolve([{ status: res.statusCode ?? 0 }]);
          return;
        }
        let buffer = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          buffer += chunk;
          for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
            const message = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const data = /^data: (.*)$/m.exec(message)?.[1];
            if (data) got.push({ status: 200, data });
            if (got.length === count) {
              req.destroy();
              resolve(got);
            }
          }
        });
      });
      req.on("error", reject);
    });
  }

  test("pushes the view at once, when it changes and on every tick; bounds the streams", async () => {
    let n = 0;
    const server = start(() => ({ ...view(), siteName: `west-${n++}` }) as NetworkStatus, { maxEventClients: 1 });
    const port = await freePort();
    const state = await server.configure(observerConfig({ "observer-port": String(port) }));
    assert.equal(state.state, "listening");
    const streaming = events(port, 3);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(await events(port, 1), [{ status: 503 }], "a second stream is refused");
    server.changed();
    const got = await streaming;
    assert.equal(new Set(got.map((g) => JSON.parse(g.data as string).siteName)).size, 3, "three distinct views");
  });

  test("a port in use is an error that says so; a new port rebinds", async () => {
    const busy = http.createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => busy.listen(port, "127.0.0.1", resolve));
    const server = start(() => view() as NetworkStatus, { retryMs: 60_000 });
    try {
      const state = await server.configure(observerConfig({ "observer-port": String(port) }));
      assert.equal(state.state, "error");
      assert.match(state.message, /already in use/);
    } finally {
      busy.close();
    }
    const other = await freePort();
    assert.equal((await server.configure(observerConfig({ "observer-port": String(other) }))).state, "listening");
    assert.equal((await server.configure(observerConfig({}))).state, "off");
  });
});
