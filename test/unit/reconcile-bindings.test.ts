/**
 * The Link, Listener, Connector and Secret reconcilers of the SiteController, on the in-memory
 * platform with a fake router: what the router is told, the status each resource gets, deletes
 * (finalized, and the router loses the configuration), failures shown on the resource and
 * healed by the retry, router events, and restarts on existing state.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  assertFailureShown,
  condition,
  connector,
  harness,
  link,
  linkAccessSite,
  listener,
  site,
  statusWriteCounts,
  tlsSecret,
  withSite,
} from "../helpers/controller-harness.js";

describe("Listener", () => {
  test("create: the router gets the listener; the status says Configured, waiting for a connector", async (t) => {
    const h = await withSite(t);
    await h.resources.create(listener("web", 8080, "web-key"));
    const status = await h.untilStatus("Listener", "web", "Pending");
    assert.deepEqual(h.router.listenerConfigs, [{ name: "web", host: "127.0.0.1", port: 8080, routingKey: "web-key" }]);
    assert.equal(status.message, "No matching connectors");
    assert.equal(condition(status, "Configured")?.status, "True");
    assert.equal(condition(status, "Matched")?.message, "No matching connectors");
    assert.equal(status.hasMatchingConnector, false);
    assert.equal(status.observedGeneration, 1);
  });

  test("update: the router gets the new port; generation and observedGeneration advance together", async (t) => {
    const h = await withSite(t);
    await h.resources.create(listener("web", 8080));
    await h.untilStatus("Listener", "web", "Pending");
    const updated = await h.resources.update(listener("web", 9090));
    assert.equal(updated.metadata.generation, 2);
    await h.untilStatus("Listener", "web", "Pending", (s) => s.observedGeneration === 2);
    assert.deepEqual(h.router.listenerConfigs.map((c) => c.port), [9090]);
  });

  test("a labels-only update does not advance generation, and writes no status", async (t) => {
    const h = await withSite(t);
    await h.resources.create(listener("web"));
    await h.untilStatus("Listener", "web", "Pending");
    const mark = h.resources.log.length;
    const labelled = listener("web");
    labelled.metadata.labels = { team: "blue" };
    const updated = await h.resources.update(labelled);
    await h.settled();
    assert.equal(updated.metadata.generation, 1);
    assert.equal((await h.status("Listener", "web"))?.observedGeneration, 1);
    assert.deepEqual(statusWriteCounts(h, mark), {});
  });

  test("delete: the router loses the listener and the resource disappears once finalized", async (t) => {
    const h = await withSite(t);
    await h.resources.create(listener("web"));
    await h.resources.create(listener("db", 5432));
    await h.untilStatus("Listener", "web", "Pending");
    await h.resources.delete("Listener", "web");
    await h.until("Listener web to be finalized", async () => (await h.get("Listener", "web")) === undefined);
    assert.deepEqual(h.router.listenerConfigs.map((c) => c.name), ["db"]);
    assert.ok(h.resources.log.some((r) => r.op === "finalize" && r.kind === "Listener" && r.name === "web" && !r.error));
  });

  test("a delete whose finalize fails once is finalized by the retry", async (t) => {
    const h = await withSite(t);
    await h.resources.create(listener("web"));
    await h.untilStatus("Listener", "web", "Pending");
    h.resources.failNext("finalize", { kind: "Listener", name: "web" });
    await h.resources.delete("Listener", "web");
    await h.until("Listener web to be finalized", async () => (await h.get("Listener", "web")) === undefined);
    assert.deepEqual(
      h.resources.log.filter((r) => r.op === "finalize" && r.name === "web").map((r) => r.error ?? "ok"),
      ["injected failure: finalize Listener/web", "ok"],
    );
    assert.equal(h.router.listenerConfigs.length, 0);
    assert.deepEqual(h.writesOf("Listener", "web").filter((w) => w.status?.status === "Error"), [], "no failure is shown on a resource being deleted");
  });

  test("a router that fails to take the listeners: Error with Configured False and the retry time, then healed without a change", async (t) => {
    const h = await withSite(t);
    h.router.failNext("setListeners");
    await h.resources.create(listener("web"));
    const status = await h.untilStatus("Listener", "web", "Pending");
    assertFailureShown(h, "Listener", "web", /^configuring listeners failed: injected failure: setListeners; retrying in 1 s$/);
    assert.equal(condition(status, "Configured")?.status, "True");
    assert.equal(status.observedGeneration, 1);
    assert.equal((await h.get("Listener", "web"))?.metadata.generation, 1);
    assert.deepEqual(h.router.listenerConfigs.map((c) => c.name), ["web"]);
    assert.deepEqual(h.router.calls.filter((c) => c === "setListeners").length, 2);
  });

  test("a status write that fails: the failure is shown, then the real status is written by the retry", async (t) => {
    const h = await withSite(t);
    h.resources.failNext("updateStatus", { kind: "Listener", name: "web" });
    await h.resources.create(listener("web"));
    await h.untilStatus("Listener", "web", "Pending");
    assertFailureShown(h, "Listener", "web", /^reconciling Listener\/web failed: injected failure: updateStatus Listener\/web; retrying in 1 s$/);
    assert.equal(h.resources.pendingFaults, 0);
  });

  test("two listeners on one port: the second is Error; deleting the first makes the second Configured", async (t) => {
    const h = await withSite(t);
    await h.resources.create(listener("a", 8080, "key-a"));
    await h.resources.create(listener("b", 8080, "key-b"));
    const b = await h.untilStatus("Listener", "b", "Error");
    assert.equal(b.message, 'port 8080 is already mapped for host "127.0.0.1" (listener: "a")');
    assert.equal(condition(b, "Configured")?.reason, "Error");
    assert.deepEqual(h.router.listenerConfigs.map((c) => c.name), ["a"]);

    await h.resources.delete("Listener", "a");
    const healed = await h.untilStatus("Listener", "b", "Pending");
    assert.equal(condition(healed, "Configured")?.status, "True");
    assert.equal(healed.message, "No matching connectors");
    assert.deepEqual(h.router.listenerConfigs.map((c) => c.name), ["b"]);
  });

  test("the router's matching flips Matched and hasMatchingConnector", async (t) => {
    const h = await withSite(t);
    await h.resources.create(listener("web"));
    await h.untilStatus("Listener", "web", "Pending");
    h.router.setMatching("web", true);
    const matched = await h.untilStatus("Listener", "web", "Ready");
    assert.equal(matched.hasMatchingConnector, true);
    assert.equal(condition(matched, "Matched")?.status, "True");
    h.router.setMatching("web", false);
    const unmatched = await h.untilStatus("Listener", "web", "Pending");
    assert.equal(unmatched.hasMatchingConnector, false);
    assert.equal(unmatched.message, "No matching connectors");
  });

  test("an unsupported listener type is Error and not given to the router", async (t) => {
    const h = await withSite(t);
    const udp = listener("dns", 53);
    udp.spec.type = "udp";
    await h.resources.create(udp);
    const status = await h.untilStatus("Listener", "dns", "Error");
    assert.equal(status.message, 'listener type "udp" is not supported (only tcp)');
    assert.deepEqual(h.router.listenerConfigs, []);
  });
});

describe("Connector", () => {
  test("create, update, delete: the router follows, the status follows, the resource is finalized", async (t) => {
    const h = await withSite(t);
    await h.resources.create(connector("db", 5432, "db-key"));
    const created = await h.untilStatus("Connector", "db", "Pending");
    assert.equal(created.message, "No matching listeners");
    assert.equal(created.hasMatchingListener, false);
    assert.deepEqual(h.router.connectorConfigs, [{ name: "db", host: "127.0.0.1", port: 5432, routingKey: "db-key" }]);

    assert.equal((await h.resources.update(connector("db", 5433, "db-key"))).metadata.generation, 2);
    await h.untilStatus("Connector", "db", "Pending", (s) => s.observedGeneration === 2);
    assert.deepEqual(h.router.connectorConfigs.map((c) => c.port), [5433]);

    await h.resources.delete("Connector", "db");
    await h.until("Connector db to be finalized", async () => (await h.get("Connector", "db")) === undefined);
    assert.deepEqual(h.router.connectorConfigs, []);
  });

  test("a connector without a host is Error and not given to the router", async (t) => {
    const h = await withSite(t);
    const bad = connector("db");
    delete bad.spec.host;
    await h.resources.create(bad);
    const status = await h.untilStatus("Connector", "db", "Error");
    assert.equal(status.message, "Connector must define a non-empty spec.host");
    assert.deepEqual(h.router.connectorConfigs, []);
  });

  test("a router that fails to take the connectors: Error with the retry time, then healed", async (t) => {
    const h = await withSite(t);
    h.router.failNext("setConnectors");
    await h.resources.create(connector("db"));
    const status = await h.untilStatus("Connector", "db", "Pending", (s) => condition(s, "Configured")?.status === "True");
    assertFailureShown(h, "Connector", "db", /^configuring connectors failed: injected failure: setConnectors; retrying in 1 s$/);
    assert.equal(status.message, "No matching listeners");
    assert.deepEqual(h.router.connectorConfigs.map((c) => c.name), ["db"]);
  });

  test("a local listener of the same key matches; setMatching overrides what the router sees", async (t) => {
    const h = await withSite(t);
    await h.resources.create(connector("db", 5432, "db"));
    await h.resources.create(listener("db", 15432, "db"));
    const ready = await h.untilStatus("Connector", "db", "Ready");
    assert.equal(ready.hasMatchingListener, true);
    await h.untilStatus("Listener", "db", "Ready");
    h.router.setMatching("db", false);
    const unmatched = await h.untilStatus("Connector", "db", "Pending");
    assert.equal(condition(unmatched, "Matched")?.message, "No matching listeners");
    assert.equal((await h.status("Listener", "db"))?.status, "Pending");
  });
});

describe("Link and its Secret", () => {
  test("a Link without its Secret is Error; the Secret arriving configures it on the router", async (t) => {
    const h = await withSite(t);
    await h.resources.create(link("to-east"));
    const missing = await h.untilStatus("Link", "to-east", "Error");
    assert.equal(missing.message, 'TLS credentials secret "to-east" not found');
    assert.equal(condition(missing, "Configured")?.reason, "Error");
    assert.equal(h.router.outgoingLinkConfigs.length, 0);

    const secret = await tlsSecret("to-east");
    await h.resources.create(secret);
    const configured = await h.untilStatus("Link", "to-east", "Pending");
    assert.equal(configured.message, "Not operational");
    assert.equal(condition(configured, "Configured")?.status, "True");
    const [config] = h.router.outgoingLinkConfigs;
    assert.equal(config?.name, "to-east");
    assert.deepEqual(config?.endpoints, [{ host: "192.0.2.10", port: 55671 }]);
    assert.equal(config?.cost, 1);
    assert.equal(config?.credentials.cert, Buffer.from(secret.data?.["tls.crt"] ?? "", "base64").toString());
  });

  test("the router's link state: up makes the Link Ready with the remote site; error makes it Error", async (t) => {
    const h = await withSite(t);
    await h.resources.create(await tlsSecret("to-east"));
    await h.resources.create(link("to-east"));
    await h.untilStatus("Link", "to-east", "Pending");
    h.router.setLinkState("to-east", "up", { remoteSiteId: "east-id", remoteSiteName: "east" });
    const up = await h.untilStatus("Link", "to-east", "Ready");
    assert.equal(up.remoteSiteId, "east-id");
    assert.equal(up.remoteSiteName, "east");
    assert.equal(condition(up, "Operational")?.status, "True");
    h.router.setLinkState("to-east", "error", { message: "TLS: 192.0.2.10:55671 rejected this link's certificate (unknown CA)" });
    const down = await h.untilStatus("Link", "to-east", "Error");
    assert.equal(down.message, "TLS: 192.0.2.10:55671 rejected this link's certificate (unknown CA)");
    assert.equal(down.remoteSiteId, undefined);
  });

  test("update: the router gets the new cost; delete: the router loses the link and the Link is finalized", async (t) => {
    const h = await withSite(t);
    await h.resources.create(await tlsSecret("to-east"));
    await h.resources.create(link("to-east"));
    await h.untilStatus("Link", "to-east", "Pending");
    await h.resources.update(link("to-east", { cost: 5 }));
    await h.untilStatus("Link", "to-east", "Pending", (s) => s.observedGeneration === 2);
    assert.deepEqual(h.router.outgoingLinkConfigs.map((c) => c.cost), [5]);

    await h.resources.delete("Link", "to-east");
    await h.until("Link to-east to be finalized", async () => (await h.get("Link", "to-east")) === undefined);
    assert.deepEqual(h.router.outgoingLinkConfigs, []);
    assert.ok(await h.get("Secret", "to-east"), "the Secret is the user's: it stays");
  });

  test("a Secret replaced reaches the router; a Secret deleted takes the link off the router", async (t) => {
    const h = await withSite(t);
    await h.resources.create(await tlsSecret("creds"));
    await h.resources.create(link("to-east", { secret: "creds" }));
    await h.untilStatus("Link", "to-east", "Pending");
    const before = h.router.outgoingLinkConfigs[0]?.credentials.cert;
    const renewed = await tlsSecret("creds");
    await h.resources.update(renewed);
    const expected = Buffer.from(renewed.data?.["tls.crt"] ?? "", "base64").toString();
    await h.until("the router to get the renewed certificate", () => h.router.outgoingLinkConfigs[0]?.credentials.cert === expected);
    assert.notEqual(before, expected);

    await h.resources.delete("Secret", "creds");
    const status = await h.untilStatus("Link", "to-east", "Error");
    assert.equal(status.message, 'TLS credentials secret "creds" not found');
    assert.deepEqual(h.router.outgoingLinkConfigs, []);
  });

  test("a Secret that cannot be applied (router failure): the Link shows it, and the retry heals it", async (t) => {
    const h = await withSite(t);
    await h.resources.create(link("to-east"));
    await h.untilStatus("Link", "to-east", "Error");
    h.router.failNext("setOutgoingLinks");
    await h.resources.create(await tlsSecret("to-east"));
    const healed = await h.untilStatus("Link", "to-east", "Pending");
    assertFailureShown(h, "Link", "to-east", /^configuring links failed: injected failure: setOutgoingLinks; retrying in 1 s$/);
    assert.equal(condition(healed, "Configured")?.status, "True");
    assert.deepEqual(h.router.outgoingLinkConfigs.map((c) => c.name), ["to-east"]);
    assert.equal((await h.get("Link", "to-east"))?.metadata.generation, 1);
  });

  test("a Link status write that fails is shown and retried", async (t) => {
    const h = await withSite(t);
    await h.resources.create(await tlsSecret("to-east"));
    h.resources.failNext("updateStatus", { kind: "Link" });
    await h.resources.create(link("to-east"));
    await h.untilStatus("Link", "to-east", "Pending");
    assertFailureShown(h, "Link", "to-east", /^reconciling Link\/to-east failed: injected failure: updateStatus Link\/to-east/);
  });

  test("an event for one Link reconciles that Link, not the world", async (t) => {
    const h = await withSite(t);
    for (const name of ["a", "b", "c"]) {
      await h.resources.create(await tlsSecret(name));
      await h.resources.create(link(name));
    }
    await h.resources.create(listener("web"));
    await h.resources.create(connector("db"));
    for (const name of ["a", "b", "c"]) await h.untilStatus("Link", name, "Pending");
    await h.untilStatus("Listener", "web", "Pending");
    await h.untilStatus("Connector", "db", "Pending");

    const calls = h.router.calls.length;
    const processed = h.processed.length;
    await h.resources.update(link("b", { cost: 3 }));
    h.resources.clearLog();
    await h.untilStatus("Link", "b", "Pending", (s) => s.observedGeneration === 2);

    assert.deepEqual(h.resources.log, [{ op: "updateStatus", kind: "Link", name: "b" }]);
    assert.deepEqual(h.router.calls.slice(calls), ["setOutgoingLinks"]);
    assert.ok(processed > 0, "the harness sees the keys the queue processes");
    assert.deepEqual(h.processed.slice(processed).filter((k) => !k.startsWith("$")), ["Link/b"]);
    assert.equal((await h.status("Link", "a"))?.observedGeneration, 1);
  });
});

describe("bindings without an active site, and after a restart", () => {
  test("before any Site: Listener, Connector and Link say there is no active site; the Site arriving configures them", async (t) => {
    const h = harness(t);
    await h.start();
    await h.resources.create(listener("web"));
    await h.resources.create(connector("db", 5432));
    await h.resources.create(await tlsSecret("to-east"));
    await h.resources.create(link("to-east"));
    assert.equal((await h.untilStatus("Listener", "web", "Error")).message, "No active site");
    assert.equal((await h.untilStatus("Connector", "db", "Error")).message, "No active site");
    assert.equal((await h.untilStatus("Link", "to-east", "Error")).message, "No active site in namespace");
    assert.equal(h.planes.instances.length, 0);

    await h.resources.create(site("west"));
    await h.untilStatus("Listener", "web", "Pending");
    await h.untilStatus("Connector", "db", "Pending");
    await h.untilStatus("Link", "to-east", "Pending");
    assert.deepEqual(h.router.listenerConfigs.map((c) => c.name), ["web"]);
    assert.deepEqual(h.router.connectorConfigs.map((c) => c.name), ["db"]);
    assert.deepEqual(h.router.outgoingLinkConfigs.map((c) => c.name), ["to-east"]);
  });

  test("a restart configures the new router from the stored resources and rewrites no status", async (t) => {
    const h = harness(t);
    await h.resources.create(linkAccessSite("west"));
    await h.resources.create(listener("web"));
    await h.resources.create(connector("db", 5432));
    await h.resources.create(await tlsSecret("to-east"));
    await h.resources.create(link("to-east"));
    await h.start();
    await h.untilStatus("Listener", "web", "Pending");
    await h.untilStatus("Connector", "db", "Pending");
    await h.untilStatus("Link", "to-east", "Pending");
    await h.untilStatus("Site", "west", "Ready");
    const before = await Promise.all((["Listener", "Connector", "Link", "Site"] as const).map((k) => h.resources.list(k)));

    await h.stop();
    assert.equal(h.router.closed, true);
    const mark = h.resources.log.length;
    await h.start();
    await h.settled();
    assert.equal(h.planes.instances.length, 2);
    assert.deepEqual(h.router.listenerConfigs.map((c) => c.name), ["web"]);
    assert.deepEqual(h.router.connectorConfigs.map((c) => c.name), ["db"]);
    assert.deepEqual(h.router.outgoingLinkConfigs.map((c) => c.name), ["to-east"]);
    assert.deepEqual(statusWriteCounts(h, mark), {}, "nothing changed, so no status is written again");
    const after = await Promise.all((["Listener", "Connector", "Link", "Site"] as const).map((k) => h.resources.list(k)));
    assert.deepEqual(after, before);
  });

  test("a resource deleted while the controller was stopped is finalized at start and never configured", async (t) => {
    const h = await withSite(t);
    await h.resources.create(listener("web"));
    await h.resources.create(listener("db", 5432));
    await h.untilStatus("Listener", "web", "Pending");
    await h.stop();
    await h.resources.delete("Listener", "web");
    assert.ok((await h.get("Listener", "web"))?.metadata.deletionTimestamp, "kept until the controller finalizes it");
    await h.start();
    await h.until("Listener web to be finalized", async () => (await h.get("Listener", "web")) === undefined);
    assert.deepEqual(h.router.listenerConfigs.map((c) => c.name), ["db"]);
    assert.equal(h.router.calls.filter((c) => c === "setListeners").length, 1, "the new router was given the listeners once, without web");
  });
});
