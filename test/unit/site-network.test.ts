/**
 * A platform that exposes the site itself (Kubernetes): link access advertised where the
 * platform says (a NodePort's node address and ports), listeners placed by it, connectors whose
 * selector chooses backends; and the placement of listeners in a site's pod.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { API_VERSION, type Connector, type Listener } from "../../src/api/index.js";
import { describeCertificate } from "../../src/certs/index.js";
import { LISTENER_PORT_RANGE, placeListeners } from "../../src/platform/kubernetes/index.js";
import { MemorySiteNetwork } from "../../src/platform/memory/index.js";
import { condition, grant, harness, LINK_PORT, GRANT_PORT, site, type Harness } from "../helpers/controller-harness.js";
import type { TestContext } from "node:test";

function kubeListener(name: string, host: string, port: number): Listener {
  return { apiVersion: API_VERSION, kind: "Listener", metadata: { name }, spec: { routingKey: name, host, port } };
}

function selectorConnector(name: string, selector: string, includeNotReadyPods?: boolean): Connector {
  return { apiVersion: API_VERSION, kind: "Connector", metadata: { name }, spec: { routingKey: name, selector, port: 8080, ...(includeNotReadyPods ? { includeNotReadyPods } : {}) } };
}

/** A Site with link access on fixed bind ports, hosts left to the platform. */
function exposedSite(name: string, linkAccess = "nodeport") {
  return site(name, { linkAccess, settings: { "link-port": String(LINK_PORT), "grant-server-port": String(GRANT_PORT) } });
}

async function withNetwork(t: TestContext, network: MemorySiteNetwork, linkAccess?: string): Promise<Harness> {
  const h = harness(t, { network });
  await h.resources.create(exposedSite("west", linkAccess));
  await h.start();
  return h;
}

describe("link access exposed by the platform", () => {
  test("the site binds its own ports but advertises the platform's host and ports: endpoints, certificate, grant URLs", async (t) => {
    const network = new MemorySiteNetwork();
    network.exposure = () => ({ hosts: ["203.0.113.9"], linkPort: 31001, grantServerPort: 31002 });
    const h = await withNetwork(t, network);
    const status = await h.untilStatus("Site", "west", "Ready");
    assert.deepEqual(network.exposed.at(-1), { site: "west", ports: { linkPort: LINK_PORT, grantServerPort: GRANT_PORT } });
    assert.equal(h.router.linkServerConfig?.port, LINK_PORT, "the link server listens on the bind port");
    assert.equal(h.grantServer.configs.at(-1)?.port, GRANT_PORT);
    assert.deepEqual(status.endpoints, [{ name: "inter-router", host: "203.0.113.9", port: "31001", group: "skupper-router" }]);
    assert.ok(describeCertificate(h.router.linkServerConfig?.credentials.cert ?? "").hosts.includes("203.0.113.9"));
    await h.resources.create(grant("g"));
    const granted = await h.untilStatus("AccessGrant", "g", "Ready");
    assert.match(granted.url ?? "", /^https:\/\/203\.0\.113\.9:31002\/[0-9a-f-]+$/);
  });

  test("hosts the user configured come first; the platform's are added", async (t) => {
    const network = new MemorySiteNetwork();
    network.exposure = (ports) => ({ hosts: ["10.96.0.7"], ...ports });
    const h = harness(t, { network });
    await h.resources.create(site("west", { linkAccess: "default", settings: { "advertised-hosts": "west.example.com", "link-port": String(LINK_PORT), "grant-server-port": String(GRANT_PORT) } }));
    await h.start();
    const status = await h.untilStatus("Site", "west", "Ready");
    assert.deepEqual(status.endpoints?.map((e) => e.host), ["west.example.com", "10.96.0.7"]);
  });

  test("while the platform has no address (a load balancer without one) the Site says why, and becomes Ready once it has", async (t) => {
    const network = new MemorySiteNetwork();
    let address: string | undefined;
    network.exposure = (ports) => (address ? { hosts: [address], ...ports } : { pending: "waiting for the load balancer to get an address", retryAfterMs: 10 });
    const h = await withNetwork(t, network, "loadbalancer");
    const waiting = await h.untilStatus("Site", "west", "Error");
    assert.equal(condition(waiting, "Resolved")?.status, "False");
    assert.match(condition(waiting, "Resolved")?.message ?? "", /waiting for the load balancer to get an address/);
    assert.equal(waiting.endpoints, undefined);
    address = "198.51.100.4";
    const ready = await h.untilStatus("Site", "west", "Ready", undefined, 10_000);
    assert.deepEqual(ready.endpoints?.map((e) => e.host), ["198.51.100.4"]);
  });

  test("no address known and none configured: the Site asks for advertised-hosts", async (t) => {
    const network = new MemorySiteNetwork();
    network.exposure = (ports) => ({ hosts: [], ...ports });
    const h = await withNetwork(t, network);
    const status = await h.untilStatus("Site", "west", "Error");
    assert.match(status.message ?? "", /set the site setting "advertised-hosts"/);
  });

  test("turning link access off withdraws what the platform exposed", async (t) => {
    const network = new MemorySiteNetwork();
    const h = await withNetwork(t, network);
    await h.untilStatus("Site", "west", "Ready");
    const before = network.withdrawals;
    await h.resources.update(site("west"));
    await h.untilStatus("Site", "west", "Ready", (s) => s.observedGeneration === 2);
    assert.ok(network.withdrawals > before);
  });
});

describe("listeners placed by the platform", () => {
  test("each listens where the platform placed it; a placement problem shows on that listener only", async (t) => {
    const network = new MemorySiteNetwork();
    network.placements.set("web", { host: "0.0.0.0", port: 20000 });
    network.placements.set("bad", { problem: 'host "Bad_Name" is not a valid Service name on Kubernetes' });
    const h = await withNetwork(t, network);
    await h.resources.create(kubeListener("web", "web", 80));
    await h.resources.create(kubeListener("db", "db", 5432));
    await h.resources.create(kubeListener("bad", "Bad_Name", 8080));
    const bad = await h.untilStatus("Listener", "bad", "Error");
    assert.match(bad.message ?? "", /not a valid Service name/);
    await h.until("the router's listeners", () => h.router.listenerConfigs.length === 2);
    assert.deepEqual(
      h.router.listenerConfigs.map((c) => [c.name, c.host, c.port]).sort(),
      [
        ["db", "0.0.0.0", 5432],
        ["web", "0.0.0.0", 20000],
      ],
    );
    assert.deepEqual(network.published.at(-1)?.sort(), ["bad", "db", "web"]);
  });
});

describe("connectors with a selector", () => {
  test("one router connector per ready pod, following the pods; none ready is an Error that says so", async (t) => {
    const network = new MemorySiteNetwork();
    const h = await withNetwork(t, network);
    await h.untilStatus("Site", "west", "Ready");
    await h.resources.create(selectorConnector("backend", "app=backend"));
    const none = await h.untilStatus("Connector", "backend", "Error");
    assert.equal(none.message, 'No ready pods match the selector "app=backend"');

    network.setBackends("app=backend", ["10.244.0.7", "10.244.0.5"], ["10.244.0.9"]);
    await h.until("a connector per ready pod", () => h.router.connectorConfigs.length === 2);
    assert.deepEqual(
      h.router.connectorConfigs.map((c) => [c.name, c.host, c.port, c.routingKey]),
      [
        ["backend@10.244.0.5", "10.244.0.5", 8080, "backend"],
        ["backend@10.244.0.7", "10.244.0.7", 8080, "backend"],
      ],
    );
    await h.untilStatus("Connector", "backend", "Pending");

    network.setBackends("app=backend", ["10.244.0.5"]);
    await h.until("the pod gone from the router", () => h.router.connectorConfigs.length === 1 && h.router.connectorConfigs[0]?.host === "10.244.0.5");
  });

  test("includeNotReadyPods uses every running pod; a selector the platform refuses is shown", async (t) => {
    const network = new MemorySiteNetwork();
    const h = await withNetwork(t, network);
    await h.untilStatus("Site", "west", "Ready");
    network.setBackends("app=db", [], ["10.244.0.3"]);
    await h.resources.create(selectorConnector("db", "app=db", true));
    await h.until("the not-ready pod used", () => h.router.connectorConfigs.some((c) => c.name === "db@10.244.0.3"));
    network.setBackends("app in (", [], [], 'the selector "app in (" is not valid: unable to parse requirement');
    await h.resources.create(selectorConnector("broken", "app in ("));
    const broken = await h.untilStatus("Connector", "broken", "Error");
    assert.match(broken.message ?? "", /is not valid/);
  });

  test("a selector no connector uses any more is no longer watched", async (t) => {
    const network = new MemorySiteNetwork();
    const h = await withNetwork(t, network);
    await h.untilStatus("Site", "west", "Ready");
    await h.resources.create(selectorConnector("backend", "app=backend"));
    await h.until("a watch for the selector", () => network.openWatches === 1);
    await h.resources.delete("Connector", "backend");
    await h.until("the watch closed", () => network.openWatches === 0);
  });
});

describe("placeListeners (a listener's port in the site's pod)", () => {
  const l = (name: string, host: string, port: number) => kubeListener(name, host, port);

  test("its own port when free and unprivileged; otherwise the first free port of the range, in name order", () => {
    const placed = placeListeners([l("b-web", "web", 80), l("a-api", "api", 8080), l("c-api2", "api2", 8080), l("d-admin", "admin", 443)]);
    assert.deepEqual(placed.get("a-api"), { port: 8080 });
    assert.deepEqual(placed.get("b-web"), { port: LISTENER_PORT_RANGE.first });
    assert.deepEqual(placed.get("c-api2"), { port: LISTENER_PORT_RANGE.first + 1 });
    assert.deepEqual(placed.get("d-admin"), { port: LISTENER_PORT_RANGE.first + 2 });
  });

  test("the site's own ports are not given to a listener", () => {
    assert.deepEqual(placeListeners([l("x", "x", 55671)]).get("x"), { port: LISTENER_PORT_RANGE.first });
  });

  test("a host that is not a Service name, the site's own Service, or a Service name used twice is a problem", () => {
    const placed = placeListeners([l("a", "Web_1", 8080), l("b", "skupper-router", 8081), l("c", "db", 5432), l("d", "db", 5433)]);
    assert.match((placed.get("a") as { problem: string }).problem, /not a valid Service name/);
    assert.match((placed.get("b") as { problem: string }).problem, /site's own Service/);
    assert.deepEqual(placed.get("c"), { port: 5432 });
    assert.match((placed.get("d") as { problem: string }).problem, /already used by listener "c"/);
  });
});
