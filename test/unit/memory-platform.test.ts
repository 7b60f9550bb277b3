/**
 * The platform in memory (src/platform/memory): the ResourceStore contract, what only the
 * memory store promises (counter resourceVersions, events in order and never for status, name
 * checks), the failures tests inject and the records they assert on; and the fake data plane
 * (test/helpers/fake-data-plane.ts) the controller's tests use in place of the router.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { API_VERSION, NETWORK_STATUS_SCHEMA, type Kind, type Listener, type NetworkStatus } from "../../src/api/index.js";
import { ConflictError, InvalidInputError } from "../../src/common/errors.js";
import { MemoryCredentialStore, MemoryResourceStore, MemorySiteState, memorySiteHost } from "../../src/platform/memory/index.js";
import type { SiteRequestHandler } from "../../src/platform/types.js";
import type { OutgoingLinkConfig } from "../../src/router/links.js";
import { FakeDataPlane, fakeDataPlaneFactory } from "../helpers/fake-data-plane.js";
import { describeResourceStoreContract, WatchRecorder } from "../helpers/resource-store-contract.js";

describeResourceStoreContract("MemoryResourceStore", async () => ({ store: new MemoryResourceStore(), close: async () => {} }));

function listener(name: string, port = 8080): Listener {
  return { apiVersion: API_VERSION, kind: "Listener", metadata: { name }, spec: { routingKey: name, host: "127.0.0.1", port } };
}

const ready = { status: "Ready", message: "OK" } as const;

describe("MemoryResourceStore", () => {
  test("resourceVersion counts stored changes, status included; a write that changes nothing keeps it and reports nothing", async () => {
    const store = new MemoryResourceStore();
    const watch = new WatchRecorder(store);
    const created = await store.create(listener("web"));
    assert.equal(created.metadata.resourceVersion, "1");
    assert.equal((await store.updateStatus("Listener", "web", ready))?.metadata.resourceVersion, "2");
    assert.equal((await store.updateStatus("Listener", "web", ready))?.metadata.resourceVersion, "2");
    assert.equal((await store.update(listener("web")))?.metadata.resourceVersion, "2");
    assert.equal((await store.update(listener("web", 9090)))?.metadata.resourceVersion, "3");
    await store.delete("Listener", "web");
    assert.equal((await store.get("Listener", "web"))?.metadata.resourceVersion, "4");
    await watch.next({ type: "deleted" });
    assert.deepEqual(
      watch.events.map((e) => e.type),
      ["added", "modified", "deleted"],
    );
    watch.stop();
  });

  test("stores resources in its namespace; refuses a bad namespace, kind or name before storing anything", async () => {
    assert.throws(() => new MemoryResourceStore("Not_A_Namespace"), InvalidInputError);
    const store = new MemoryResourceStore("west");
    assert.equal((await store.create(listener("web"))).metadata.namespace, "west");
    for (const name of ["../x", "UPPER", "", "a/b"]) {
      await assert.rejects(store.create({ ...listener("x"), metadata: { name } }), InvalidInputError);
      await assert.rejects(store.get("Listener", name), InvalidInputError);
      await assert.rejects(store.delete("Listener", name), InvalidInputError);
    }
    await assert.rejects(store.list("Nope" as Kind), InvalidInputError);
    await assert.rejects(store.updateStatus("Nope" as Kind, "web", ready as never), InvalidInputError);
    assert.deepEqual((await store.list("Listener")).map((l) => l.metadata.name), ["web"]);
  });

  test("watch delivers asynchronously and in order, never for a status write, and nothing after unwatch", async () => {
    const store = new MemoryResourceStore();
    await store.create(listener("a"));
    const watch = new WatchRecorder(store);
    assert.equal(watch.events.length, 0, "not even the initial sync is delivered synchronously");
    await store.updateStatus("Listener", "a", ready);
    await store.create(listener("b"));
    await store.update(listener("b", 9090));
    await store.delete("Listener", "a");
    await store.finalize("Listener", "a");
    await watch.next({ type: "deleted", name: "a" }, 4);
    assert.deepEqual(
      watch.events.map((e) => `${e.type} ${e.kind}/${e.name}`),
      ["added Listener/a", "added Listener/b", "modified Listener/b", "deleted Listener/a", "deleted Listener/a"],
    );

    watch.stop();
    const stopped: string[] = [];
    const unwatch = store.watch((e) => stopped.push(e.name));
    const creating = store.create(listener("c"));
    unwatch();
    await creating;
    await store.create(listener("d"));
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.deepEqual(stopped, [], "events already queued are dropped too");
    assert.equal(watch.events.length, 5);
  });

  test("failNext makes the next matching call reject with a clear message, once, before it changes anything", async () => {
    const store = new MemoryResourceStore();
    await store.create(listener("x"));
    store.failNext("updateStatus");
    await assert.rejects(store.updateStatus("Listener", "x", ready), { message: "injected failure: updateStatus Listener/x" });
    assert.equal((await store.get("Listener", "x"))?.status, undefined);
    assert.equal(store.pendingFaults, 0);
    assert.deepEqual((await store.updateStatus("Listener", "x", ready))?.status, ready);

    store.failNext("delete");
    await assert.rejects(store.delete("Listener", "x"), /injected failure: delete Listener\/x/);
    assert.ok(await store.get("Listener", "x"));
  });

  test("failNext narrows by kind and name, repeats `times` times and throws the error given", async () => {
    const store = new MemoryResourceStore();
    const error = new ConflictError("someone else wrote it");
    store.failNext("create", { kind: "Listener", name: "b", times: 2, error });
    await store.create(listener("a"));
    await store.create({ apiVersion: API_VERSION, kind: "Connector", metadata: { name: "b" }, spec: { routingKey: "b", host: "h", port: 1 } });
    await assert.rejects(store.create(listener("b")), (err) => err === error);
    await assert.rejects(store.create(listener("b")), (err) => err === error);
    await store.create(listener("b"));
    assert.throws(() => store.failNext("update", { times: 0 }), RangeError);
  });

  test("log records each write call in order, failures with their message; writes counts those that resolved", async () => {
    const store = new MemoryResourceStore();
    await store.create(listener("x"));
    store.clearLog();
    store.failNext("update");
    await assert.rejects(store.update(listener("x", 1)));
    await store.updateStatus("Listener", "x", ready);
    await store.updateStatus("Listener", "missing", ready);
    await store.delete("Listener", "x");
    await store.finalize("Listener", "x");
    await store.get("Listener", "x");
    assert.deepEqual(store.log, [
      { op: "update", kind: "Listener", name: "x", error: "injected failure: update Listener/x" },
      { op: "updateStatus", kind: "Listener", name: "x" },
      { op: "updateStatus", kind: "Listener", name: "missing" },
      { op: "delete", kind: "Listener", name: "x" },
      { op: "finalize", kind: "Listener", name: "x" },
    ]);
    assert.equal(store.writes, 4);
    assert.equal(store.log.filter((r) => r.op === "updateStatus").length, 2);
  });
});

describe("MemoryCredentialStore", () => {
  const credentials = { ca: "CA PEM", cert: "CERT PEM", key: "KEY PEM" };

  test("saves, loads and removes copies of credentials by name", async () => {
    const store = new MemoryCredentialStore();
    assert.equal(await store.load("site-ca"), undefined);
    const given = { ...credentials };
    await store.save("site-ca", given);
    given.key = "changed";
    const loaded = await store.load("site-ca");
    assert.deepEqual(loaded, credentials);
    loaded!.cert = "changed";
    assert.deepEqual(store.saved.get("site-ca"), credentials);
    await store.remove("site-ca");
    assert.equal(await store.load("site-ca"), undefined);
    await store.remove("site-ca");
  });

  test("failNext makes a save or load reject, optionally for one name only", async () => {
    const store = new MemoryCredentialStore();
    store.failNext("save");
    await assert.rejects(store.save("site-ca", credentials), { message: "injected failure: save site-ca" });
    assert.equal(store.saved.size, 0);
    await store.save("site-ca", credentials);
    await store.save("link-server", credentials);
    store.failNext("load", { name: "link-server" });
    assert.deepEqual(await store.load("site-ca"), credentials);
    await assert.rejects(store.load("link-server"), /injected failure: load link-server/);
    assert.deepEqual(await store.load("link-server"), credentials);
  });
});

describe("MemorySiteState", () => {
  const view: NetworkStatus = { schema: NETWORK_STATUS_SCHEMA, siteId: "s1", siteName: "west", namespace: "default", version: "test", inputProblems: [] };
  const pending = {
    secret: { apiVersion: "v1" as const, kind: "Secret" as const, metadata: { name: "link-east" }, data: {} },
    links: [],
  };

  test("has the siteId it was given, or one random id that stays the same", async () => {
    assert.deepEqual(await new MemorySiteState("fixed").identity(), { siteId: "fixed" });
    const state = new MemorySiteState();
    const { siteId } = await state.identity();
    assert.match(siteId, /^[0-9a-f-]{36}$/);
    assert.deepEqual(await state.identity(), { siteId });
    assert.notEqual((await new MemorySiteState().identity()).siteId, siteId);
  });

  test("keeps the last network status published and the pending redemptions", async () => {
    const state = new MemorySiteState();
    await state.publishNetworkStatus(view);
    await state.publishNetworkStatus({ ...view, inputProblems: ["bad.yaml: not valid YAML"] });
    assert.deepEqual(state.networkStatus?.inputProblems, ["bad.yaml: not valid YAML"]);
    assert.equal(state.publishCount, 2);

    await state.savePendingRedemption("token-1", pending);
    const listed = await state.pendingRedemptions();
    assert.deepEqual([...listed.keys()], ["token-1"]);
    listed.clear();
    assert.equal(state.redemptions.size, 1, "the map returned is a copy");
    await state.removePendingRedemption("token-1");
    assert.equal((await state.pendingRedemptions()).size, 0);
  });

  test("failNext makes a write reject without keeping it", async () => {
    const state = new MemorySiteState();
    state.failNext("savePendingRedemption");
    await assert.rejects(state.savePendingRedemption("token-1", pending), { message: "injected failure: savePendingRedemption" });
    assert.equal(state.redemptions.size, 0);
  });
});

describe("memorySiteHost", () => {
  test("puts the memory stores together and records the request handler it serves, until stopped", async () => {
    const host = memorySiteHost({ namespace: "west", siteId: "site-1" });
    assert.equal(host.namespace, "west");
    assert.equal(host.resources.namespace, "west");
    assert.deepEqual(await host.state.identity(), { siteId: "site-1" });
    assert.equal(host.requestHandler(), undefined);
    const handler: SiteRequestHandler = {
      generateLink: async () => assert.fail("not called"),
      revokeAccess: async () => {},
    };
    const stop = await host.serveRequests(handler);
    assert.equal(host.requestHandler(), handler);
    await stop();
    assert.equal(host.requestHandler(), undefined);
    assert.equal(memorySiteHost().namespace, "default");
  });
});

describe("FakeDataPlane", () => {
  const identity = { siteId: "site-1", siteName: "west", namespace: "default", version: "test" };
  const credentials = { ca: "ca", cert: "cert", key: "key" };
  const link = (name: string, cost = 1): OutgoingLinkConfig => ({ name, endpoints: [{ host: "east", port: 55671 }], cost, credentials });
  const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

  test("keeps the last configuration of each setter and logs every call; onChange is called once per burst", async () => {
    let changes = 0;
    const dataPlane = new FakeDataPlane(identity, { onChange: () => changes++ });
    dataPlane.setListeners([{ name: "web", host: "127.0.0.1", port: 8080, routingKey: "web" }]);
    dataPlane.setConnectors([{ name: "db", host: "10.0.0.1", port: 5432, routingKey: "db" }]);
    dataPlane.setListeners([]);
    assert.equal(changes, 0, "onChange comes later");
    await nextTurn();
    assert.equal(changes, 1);
    assert.deepEqual(dataPlane.calls, ["setListeners", "setConnectors", "setListeners"]);
    assert.deepEqual(dataPlane.listenerConfigs, []);
    assert.deepEqual(dataPlane.connectorConfigs.map((c) => c.name), ["db"]);
    await dataPlane.setLinkServer({ port: 55671, credentials });
    await nextTurn();
    assert.equal(changes, 2);
    assert.equal(dataPlane.changes, 2);
  });

  test("outgoing links are connecting until the test brings them up or fails them; an up link adds its site to the network", async () => {
    const dataPlane = new FakeDataPlane(identity);
    dataPlane.setOutgoingLinks([link("to-east", 2), link("to-north")]);
    assert.deepEqual(dataPlane.status().outgoing.map((l) => l.state), ["connecting", "connecting"]);
    assert.deepEqual(dataPlane.status().network.map((s) => s.id), ["site-1"]);

    dataPlane.setLinkState("to-east", "up", { remoteSiteId: "site-2", remoteSiteName: "east" });
    dataPlane.setLinkState("to-north", "error", { message: "connection refused" });
    const status = dataPlane.status();
    assert.deepEqual(status.outgoing[0], { name: "to-east", state: "up", message: "OK", cost: 2, since: status.outgoing[0]!.since, remoteSiteId: "site-2", remoteSiteName: "east" });
    assert.equal(status.outgoing[1]?.message, "connection refused");
    assert.deepEqual(status.network.map((s) => [s.id, s.name, s.cost]), [["site-1", "west", 0], ["site-2", "east", 2]]);
    assert.deepEqual(status.network[0]?.links, { "site-2": 2 });

    dataPlane.setOutgoingLinks([link("to-north")]);
    dataPlane.setOutgoingLinks([link("to-north"), link("to-east")]);
    assert.equal(dataPlane.status().outgoing[1]?.state, "connecting", "a link configured anew starts over");
    assert.throws(() => dataPlane.setLinkState("to-west", "up"), /no outgoing link "to-west"/);
  });

  test("a routing key matches when this site has the other side, or as setMatching says", () => {
    const dataPlane = new FakeDataPlane(identity);
    dataPlane.setListeners([{ name: "web", host: "127.0.0.1", port: 8080, routingKey: "web" }]);
    dataPlane.setConnectors([{ name: "db", host: "10.0.0.1", port: 5432, routingKey: "db" }]);
    assert.equal(dataPlane.status().listeners[0]?.hasMatchingConnector, false);
    assert.equal(dataPlane.status().connectors[0]?.hasMatchingListener, false);
    dataPlane.setMatching("web", true);
    dataPlane.setMatching("db", true);
    assert.equal(dataPlane.status().listeners[0]?.hasMatchingConnector, true);
    assert.equal(dataPlane.status().connectors[0]?.hasMatchingListener, true);
    dataPlane.setMatching("web", undefined);
    dataPlane.setConnectors([{ name: "web-backend", host: "10.0.0.2", port: 80, routingKey: "web" }]);
    assert.equal(dataPlane.status().listeners[0]?.hasMatchingConnector, true);
    assert.deepEqual(dataPlane.status().network[0]?.connectors, { web: 1 });
  });

  test("the link server is listening while configured, disabled otherwise", async () => {
    const dataPlane = new FakeDataPlane(identity);
    assert.equal(dataPlane.status().linkServer.state, "disabled");
    assert.deepEqual(await dataPlane.setLinkServer({ port: 55671, credentials }), { state: "listening", message: "OK" });
    assert.equal(dataPlane.status().linkServer.state, "listening");
    assert.equal((await dataPlane.setLinkServer(undefined)).state, "disabled");
  });

  test("failNext makes a setter throw once without applying its configuration", async () => {
    const dataPlane = new FakeDataPlane(identity);
    dataPlane.failNext("setListeners");
    assert.throws(() => dataPlane.setListeners([{ name: "web", host: "127.0.0.1", port: 8080, routingKey: "web" }]), /injected failure: setListeners/);
    assert.deepEqual(dataPlane.listenerConfigs, []);
    dataPlane.setListeners([{ name: "web", host: "127.0.0.1", port: 8080, routingKey: "web" }]);
    assert.equal(dataPlane.listenerConfigs.length, 1);
    dataPlane.failNext("setLinkServer", { error: new Error("port in use") });
    await assert.rejects(dataPlane.setLinkServer({ port: 55671, credentials }), /port in use/);
    assert.deepEqual(dataPlane.calls, ["setListeners", "setListeners", "setLinkServer"]);
  });

  test("close marks it closed and stops onChange; the factory keeps every instance", async () => {
    const { factory, instances } = fakeDataPlaneFactory();
    let changes = 0;
    const dataPlane = factory(identity, { onChange: () => changes++ });
    assert.equal(instances[0], dataPlane);
    dataPlane.setConnectors([]);
    await dataPlane.close();
    await nextTurn();
    assert.equal(changes, 0);
    assert.equal(instances[0]?.closed, true);
    factory({ ...identity, siteId: "site-2" }, {});
    assert.deepEqual(instances.map((i) => i.identity.siteId), ["site-1", "site-2"]);
  });
});
