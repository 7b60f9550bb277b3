/**
 * The Site and RouterAccess reconcilers of the SiteController, and the network view it
 * publishes: which Site is active, its router, CAs, link and grant servers; their status;
 * failures shown and healed by the retry; restarts on existing state.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { NETWORK_STATUS_SCHEMA } from "../../src/api/index.js";
import { describeCertificate, isIssuedBy } from "../../src/certs/index.js";
import { GRANT_CA, GRANT_SERVER, SITE_CA, SITE_SERVER } from "../../src/controller/index.js";
import {
  assertFailureShown,
  condition,
  connector,
  GRANT_PORT,
  grant,
  harness,
  HOST,
  link,
  LINK_PORT,
  linkAccessSite,
  listener,
  logLines,
  routerAccess,
  site,
  statusWriteCounts,
  tlsSecret,
  VERSION,
  withSite,
} from "../helpers/controller-harness.js";

describe("Site", () => {
  test("create: a router for the site, a site CA, and a Ready status without Resolved (no link access)", async (t) => {
    const h = harness(t, { siteId: "11111111-1111-4111-8111-111111111111" });
    await h.start();
    assert.equal(h.planes.instances.length, 0, "no Site, no router");
    await h.resources.create(site("west"));
    const status = await h.untilStatus("Site", "west", "Ready");
    assert.equal(h.planes.instances.length, 1);
    assert.deepEqual(h.router.identity, { siteId: "11111111-1111-4111-8111-111111111111", siteName: "west", namespace: "default", version: VERSION });
    assert.equal(h.router.linkServerConfig, undefined);
    assert.deepEqual(status.conditions?.map((c) => `${c.type}=${c.status}`), ["Configured=True", "Running=True", "Ready=True"]);
    assert.equal(status.defaultIssuer, "skupper-site-ca");
    assert.equal(status.observedGeneration, 1);
    assert.equal(status.sitesInNetwork, 1);
    assert.equal(status.endpoints, undefined);
    const ca = h.host.credentials.saved.get(SITE_CA);
    assert.ok(ca, "the site CA is created");
    assert.equal(describeCertificate(ca.cert).isCA, true);
    assert.equal(h.host.credentials.saved.has(SITE_SERVER), false, "no server certificate without link access");
  });

  test("update: link access on configures the link and grant servers with certificates from the site's CAs; off removes Resolved", async (t) => {
    const h = await withSite(t);
    const updated = await h.resources.update(linkAccessSite("west"));
    assert.equal(updated.metadata.generation, 2);
    const on = await h.untilStatus("Site", "west", "Ready", (s) => s.observedGeneration === 2);
    assert.equal(condition(on, "Resolved")?.status, "True");
    assert.deepEqual(on.endpoints, [{ name: "inter-router", host: HOST, port: String(LINK_PORT), group: "skupper-router" }]);

    const siteCa = h.host.credentials.saved.get(SITE_CA)?.cert ?? "";
    const server = h.router.linkServerConfig;
    assert.equal(server?.port, LINK_PORT);
    assert.equal(server?.credentials.ca, siteCa);
    assert.ok(isIssuedBy(server?.credentials.cert ?? "", siteCa), "the link server certificate is issued by the site CA");
    assert.ok(describeCertificate(server?.credentials.cert ?? "").hosts.includes(HOST));
    assert.equal(h.grantServer.configs.length, 1);
    assert.equal(h.grantServer.configs[0]?.port, GRANT_PORT);
    assert.ok(isIssuedBy(h.grantServer.configs[0]?.cert ?? "", h.host.credentials.saved.get(GRANT_CA)?.cert ?? ""));
    assert.equal(h.grantServer.configs[0]?.cert, h.host.credentials.saved.get(GRANT_SERVER)?.cert);

    await h.resources.update(site("west"));
    const off = await h.untilStatus("Site", "west", "Ready", (s) => s.observedGeneration === 3);
    assert.equal(condition(off, "Resolved"), undefined);
    assert.equal(off.endpoints, undefined);
    assert.equal(h.router.linkServerConfig, undefined);
    assert.equal(h.grantServer.listening, false);
  });

  test("a labels-only update keeps generation and writes no status", async (t) => {
    const h = await withSite(t);
    const mark = h.resources.log.length;
    const labelled = site("west");
    labelled.metadata.labels = { env: "test" };
    assert.equal((await h.resources.update(labelled)).metadata.generation, 1);
    await h.settled();
    assert.equal((await h.status("Site", "west"))?.observedGeneration, 1);
    assert.deepEqual(statusWriteCounts(h, mark), {});
    assert.equal(h.planes.instances.length, 1, "the router is not restarted");
  });

  test("invalid settings and an edge site with link access are Configured Error", async (t) => {
    const h = harness(t);
    await h.resources.create(linkAccessSite("west", { "link-port": "70000" }));
    await h.start();
    const bad = await h.untilStatus("Site", "west", "Error");
    assert.equal(bad.message, 'setting "link-port" must be a port number between 1 and 65535 (got "70000")');
    assert.equal(condition(bad, "Configured")?.reason, "Error");
    assert.equal(condition(bad, "Running")?.status, "True");
    assert.equal(h.router.linkServerConfig, undefined);
    assert.equal(h.grantServer.listening, false);
    assert.equal(bad.endpoints, undefined, "no endpoints are published while nothing listens for links");
    assert.deepEqual(
      { ...condition(bad, "Resolved"), lastTransitionTime: undefined },
      { type: "Resolved", status: "False", reason: "Pending", message: bad.message, lastTransitionTime: undefined },
      "Resolved is not True while neither server listens",
    );

    const edge = linkAccessSite("west");
    edge.spec.edge = true;
    await h.resources.update(edge);
    const status = await h.untilStatus("Site", "west", "Error", (s) => s.observedGeneration === 2);
    assert.equal(status.message, "Edge sites cannot accept incoming links from remote sites");
  });

  test("a grant server port in use is a Resolved Error, and is tried again until it is free", async (t) => {
    const h = harness(t);
    h.grantServer.failConfigure = Object.assign(new Error("listen EADDRINUSE: address already in use"), { code: "EADDRINUSE" });
    h.grantServer.failConfigureTimes = 3;
    await h.resources.create(linkAccessSite("west"));
    await h.start();
    const status = await h.untilStatus("Site", "west", "Error");
    assert.equal(status.message, `the grant server port ${GRANT_PORT} is already in use; choose another one`);
    assert.equal(condition(status, "Resolved")?.reason, "Error");
    assert.equal(condition(status, "Configured")?.status, "True");
    // The fake refuses three times: a later retry binds it, with no change to the Site.
    const healed = await h.untilStatus("Site", "west", "Ready");
    assert.equal(healed.observedGeneration, 1);
    assert.equal(h.grantServer.listening, true);
  });

  test("a second Site is refused; deleting the active one makes the second active with a router of its own", async (t) => {
    const h = await withSite(t, site("a"));
    await h.resources.create(listener("web"));
    await h.untilStatus("Listener", "web", "Pending");
    await h.resources.create(site("b"));
    const refused = await h.untilStatus("Site", "b", "Error");
    const why = 'An active site already exists in the namespace (a); only one site per namespace runs, so this Site has no effect while Site "a" exists';
    assert.equal(refused.message, why);
    assert.equal(condition(refused, "Configured")?.message, why);
    assert.equal(condition(refused, "Running")?.status, "False", "only the active Site's Running is True");
    assert.equal(h.planes.instances.length, 1);

    await h.resources.delete("Site", "a");
    await h.untilStatus("Site", "b", "Ready");
    await h.until("Site a to be finalized", async () => (await h.get("Site", "a")) === undefined);
    assert.equal(h.planes.instances.length, 2);
    assert.equal(h.planes.instances[0]?.closed, true);
    assert.equal(h.router.identity.siteName, "b");
    assert.equal(h.router.closed, false);
    assert.deepEqual(h.router.listenerConfigs.map((c) => c.name), ["web"], "the new router gets the listeners");
    assert.equal((await h.untilStatus("Listener", "web", "Pending")).message, "No matching connectors");
  });

  test("deleting the active Site stops the router and the grant server; dependents say there is no active site", async (t) => {
    const h = await withSite(t, linkAccessSite("west"));
    await h.resources.create(listener("web"));
    await h.resources.create(connector("db", 5432));
    await h.resources.create(await tlsSecret("to-east"));
    await h.resources.create(link("to-east"));
    await h.resources.create(routerAccess("west-access", 46000));
    await h.resources.create(grant("g1"));
    await h.untilStatus("AccessGrant", "g1", "Ready");
    await h.untilStatus("RouterAccess", "west-access", "Ready");

    await h.resources.delete("Site", "west");
    await h.until("Site west to be finalized", async () => (await h.get("Site", "west")) === undefined);
    assert.equal(h.router.closed, true);
    assert.equal(h.grantServer.listening, false);
    assert.equal((await h.untilStatus("Listener", "web", "Error")).message, "No active site");
    assert.equal((await h.untilStatus("Connector", "db", "Error")).message, "No active site");
    assert.equal((await h.untilStatus("Link", "to-east", "Error")).message, "No active site in namespace");
    assert.equal((await h.untilStatus("RouterAccess", "west-access", "Error")).message, "No active site");
    const g1 = await h.untilStatus("AccessGrant", "g1", "Pending");
    assert.equal(g1.message, "Link access is not enabled for this site");
    assert.equal(g1.url, undefined);
    assert.equal(h.planes.instances.length, 1, "no router is started for a deleted site");
    const view = await h.until("the network status without a site", () => h.host.state.networkStatus?.siteName === "" && h.host.state.networkStatus);
    assert.equal(view.router, undefined);
    assert.equal(view.linkAccess, undefined);
  });

  test("the site CA cannot be saved: the Site shows the failure with the retry time, then becomes Ready by itself", async (t) => {
    const h = harness(t);
    h.host.credentials.failNext("save", { name: SITE_CA });
    await h.resources.create(site("west"));
    await h.start();
    await h.untilStatus("Site", "west", "Ready");
    assertFailureShown(h, "Site", "west", /^configuring link access failed: injected failure: save skupper-site-ca; retrying in 1 s$/);
    assert.ok(h.host.credentials.saved.has(SITE_CA));
    assert.equal((await h.get("Site", "west"))?.metadata.generation, 1);
  });

  test("a Site status write that fails is shown and retried", async (t) => {
    const h = await withSite(t);
    h.resources.failNext("updateStatus", { kind: "Site", name: "west" });
    await h.resources.update(linkAccessSite("west"));
    const status = await h.untilStatus("Site", "west", "Ready", (s) => s.observedGeneration === 2);
    assertFailureShown(h, "Site", "west", /^reconciling Site\/west failed: injected failure: updateStatus Site\/west; retrying in 1 s$/);
    assert.equal(condition(status, "Configured")?.status, "True");
    assert.equal(condition(status, "Resolved")?.status, "True");
  });

  test("a restart keeps the site CA and server certificate, configures the new router the same, and rewrites no status", async (t) => {
    const h = await withSite(t, linkAccessSite("west"));
    await h.resources.create(routerAccess("west-access", 46000));
    await h.untilStatus("RouterAccess", "west-access", "Ready");
    await h.untilStatus("Site", "west", "Ready", (s) => s.endpoints?.[0]?.port === "46000");
    const credentials = new Map(h.host.credentials.saved);
    const linkServer = h.router.linkServerConfig;
    const stored = await h.resources.list("Site");

    await h.stop();
    const mark = h.resources.log.length;
    await h.start();
    await h.settled();
    assert.equal(h.planes.instances.length, 2);
    assert.deepEqual(h.router.linkServerConfig, linkServer);
    assert.deepEqual(new Map(h.host.credentials.saved), credentials);
    assert.deepEqual(statusWriteCounts(h, mark), {});
    assert.deepEqual(await h.resources.list("Site"), stored);
  });
});

describe("RouterAccess", () => {
  test("create, update, delete: its port and hosts become the site's link server and endpoints", async (t) => {
    const h = await withSite(t, linkAccessSite("west"));
    await h.resources.create(routerAccess("west-access", 46000, ["west.example.com"]));
    const created = await h.untilStatus("RouterAccess", "west-access", "Ready");
    assert.deepEqual(created.endpoints, [{ name: "inter-router", host: "west.example.com", port: "46000", group: "skupper-router" }]);
    assert.equal(created.observedGeneration, 1);
    await h.until("the link server on port 46000", () => h.router.linkServerConfig?.port === 46000);
    assert.ok(describeCertificate(h.router.linkServerConfig?.credentials.cert ?? "").hosts.includes("west.example.com"));
    await h.untilStatus("Site", "west", "Ready", (s) => s.endpoints?.[0]?.host === "west.example.com");

    assert.equal((await h.resources.update(routerAccess("west-access", 46001, ["west.example.com"]))).metadata.generation, 2);
    const updated = await h.untilStatus("RouterAccess", "west-access", "Ready", (s) => s.observedGeneration === 2);
    assert.equal(updated.endpoints?.[0]?.port, "46001");
    await h.until("the link server on port 46001", () => h.router.linkServerConfig?.port === 46001);

    await h.resources.delete("RouterAccess", "west-access");
    await h.until("RouterAccess to be finalized", async () => (await h.get("RouterAccess", "west-access")) === undefined);
    await h.until("the link server back on the Site's port", () => h.router.linkServerConfig?.port === LINK_PORT);
    await h.untilStatus("Site", "west", "Ready", (s) => s.endpoints?.[0]?.host === HOST);
  });

  test("without link access it is Error 'Link access is not enabled'; without a site 'No active site'", async (t) => {
    const h = harness(t);
    await h.start();
    await h.resources.create(routerAccess("west-access", 46000));
    const noSite = await h.untilStatus("RouterAccess", "west-access", "Error");
    assert.equal(noSite.message, "No active site");
    await h.resources.create(site("west"));
    const noAccess = await h.untilStatus("RouterAccess", "west-access", "Error", (s) => s.message !== "No active site");
    assert.equal(noAccess.message, "Link access is not enabled");
    assert.equal(condition(noAccess, "Configured")?.status, "True");
    assert.equal(noAccess.endpoints, undefined);
  });

  test("with invalid Site settings it is Configured Error and not Resolved, with no endpoints", async (t) => {
    const h = harness(t);
    await h.resources.create(linkAccessSite("west", { "grant-server-port": "0" }));
    await h.resources.create(routerAccess("west-access", 46000, ["west.example.com"]));
    await h.start();
    const status = await h.untilStatus("RouterAccess", "west-access", "Error");
    assert.equal(status.message, 'setting "grant-server-port" must be a port number between 1 and 65535 (got "0")');
    assert.equal(condition(status, "Resolved")?.status, "False");
    assert.equal(condition(status, "Resolved")?.reason, "Pending");
    assert.equal(status.endpoints, undefined);
  });

  test("a RouterAccess status write that fails is shown and retried", async (t) => {
    const h = await withSite(t, linkAccessSite("west"));
    h.resources.failNext("updateStatus", { kind: "RouterAccess" });
    await h.resources.create(routerAccess("west-access", 46000));
    await h.untilStatus("RouterAccess", "west-access", "Ready");
    assertFailureShown(h, "RouterAccess", "west-access", /^reconciling RouterAccess\/west-access failed: injected failure: updateStatus RouterAccess\/west-access/);
  });
});

describe("network status", () => {
  test("is published with the schema, the site, its link access and the grant server CA", async (t) => {
    const h = await withSite(t, linkAccessSite("west"));
    const view = await h.until("a network status with link access", () => h.host.state.networkStatus?.linkAccess && h.host.state.networkStatus);
    assert.equal(view.schema, NETWORK_STATUS_SCHEMA);
    assert.equal(view.siteId, h.host.state.siteId);
    assert.equal(view.siteName, "west");
    assert.equal(view.namespace, "default");
    assert.equal(view.version, VERSION);
    assert.deepEqual(view.linkAccess, { hosts: [HOST], linkPort: LINK_PORT, grantServerPort: GRANT_PORT, linkServer: "OK", grantServer: "OK" });
    assert.equal(view.grantServerCa, h.host.credentials.saved.get(GRANT_CA)?.cert);
    assert.equal(view.router?.siteName, "west");
  });

  test("a publication that fails is retried without any change", async (t) => {
    const h = harness(t);
    const mark = logLines.length;
    h.host.state.failNext("publishNetworkStatus", { times: 2 });
    await h.resources.create(site("west"));
    await h.start();
    const view = await h.until("the network status to be published", () => h.host.state.networkStatus);
    assert.equal(view.siteName, "west");
    const failures = logLines.slice(mark).filter((line) => /failed: injected failure: publishNetworkStatus; retrying in 1 s/.test(line));
    assert.equal(failures.length, 2, failures.join("\n"));
    assert.equal(view.schema, NETWORK_STATUS_SCHEMA);
  });

  test("without link access it has no linkAccess and no grant server CA; router events reach it", async (t) => {
    const h = await withSite(t);
    await h.until("a network status", () => h.host.state.networkStatus);
    assert.equal(h.host.state.networkStatus?.linkAccess, undefined);
    assert.equal(h.host.state.networkStatus?.grantServerCa, undefined);
    await h.resources.create(await tlsSecret("to-east"));
    await h.resources.create(link("to-east"));
    await h.untilStatus("Link", "to-east", "Pending");
    h.router.setLinkState("to-east", "up", { remoteSiteId: "east-id", remoteSiteName: "east" });
    const up = await h.until("the link up in the network status", () => h.host.state.networkStatus?.router?.outgoing.find((o) => o.state === "up"));
    assert.equal(up.remoteSiteId, "east-id");
    const status = await h.untilStatus("Site", "west", "Ready", (s) => s.sitesInNetwork === 2);
    assert.deepEqual(status.network?.map((s) => s.name), ["west", "east"]);
  });
});
