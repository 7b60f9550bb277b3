/**
 * Traffic in the network view, with three real site processes in a line A—B—C: a client of A's
 * listener uses C's connector through B, and `network status -o json` at C (the far end, which
 * only hears of A through B) shows who used the service and how much, from the summary A sent
 * over the links; the text output shows it in human units.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { NetworkView } from "../../src/cli/commands/network.js";
import { eventually, freePort, Sandbox } from "../helpers/cli.js";
import { connect, LoopbackNetwork, serve, transfer, type Backend } from "../helpers/network.js";

describe("traffic between three sites in a line", () => {
  let sandbox: Sandbox;
  let network: LoopbackNetwork;
  let backend: Backend;
  let servicePort: number;

  before(async () => {
    sandbox = await Sandbox.create("traffic");
    network = new LoopbackNetwork(sandbox, sandbox.home());
    await network.line();
    backend = await serve((socket) => socket.pipe(socket));
    await network.run("c", ["connector", "create", "echo", String(backend.port), "--host", "127.0.0.1"]);
    servicePort = await freePort();
    await network.run("a", ["listener", "create", "echo", String(servicePort), "--wait", "ready"]);
  });

  after(async () => {
    await backend?.close();
    await sandbox?.cleanup();
  });

  test("network status at C shows the bytes and connections of A's clients to the service, by routing key", async () => {
    const bytes = 3 * 1024 * 1024;
    const socket = await connect(servicePort);
    const result = await transfer(socket, bytes);
    assert.equal(result.received, bytes);
    assert.equal(result.receivedHash, result.sentHash);

    // Summaries go out at most every 5 s: A's reaches C through B within two rounds.
    const view = await eventually(
      "C to show A's traffic to the echo service",
      async () => {
        const status = JSON.parse(await network.run("c", ["network", "status", "-o", "json"])) as NetworkView;
        const flow = status.services.find((s) => s.routingKey === "echo")?.traffic?.find((f) => f.from === "a" && f.to === "c");
        return flow && flow.bytesToService === bytes && flow.bytesFromService === bytes && flow.opened === 1 && flow.active === 0 ? status : undefined;
      },
      20_000,
      250,
    );
    const a = view.sites.find((s) => s.name === "a");
    assert.deepEqual(a?.traffic, [{ routingKey: "echo", role: "listener", peer: "c", opened: 1, active: 0, bytesIn: bytes, bytesOut: bytes }]);
    const c = view.sites.find((s) => s.name === "c");
    assert.deepEqual(c?.traffic, [{ routingKey: "echo", role: "connector", peer: "a", opened: 1, active: 0, bytesIn: bytes, bytesOut: bytes }]);
    // C's own link to B, with its bytes; and B's RTT to C, which only B's summary carries.
    const link = view.links?.find((l) => l.direction === "outgoing" && l.remoteSite === "b");
    assert.ok(link && (link.bytesIn ?? 0) > bytes && (link.bytesOut ?? 0) > bytes, JSON.stringify(view.links));
    await eventually(
      "C to learn B's RTT to C from B's summary",
      async () => {
        const status = JSON.parse(await network.run("c", ["network", "status", "-o", "json"])) as NetworkView;
        return status.sites.find((s) => s.name === "b")?.links.some((l) => l.to === "c" && typeof l.rttMs === "number");
      },
      15_000,
      250,
    );

    const text = await network.run("c", ["network", "status"]);
    assert.match(text, /^echo\s+a\s+c\s+0 open, 1 in all\s+3\.0 MiB\s+3\.0 MiB\s*$/m);
    assert.match(text, /^ROUTING KEY\s+LISTENERS AT\s+CONNECTORS AT/m, "the services table is still there");
  });

  test("Prometheus metrics on the observer port: A's listener and B's relay count a new connection and its bytes", async () => {
    const ports = { a: await freePort(), b: await freePort() };
    await network.run("a", ["site", "update", "--observer-port", String(ports.a)]);
    await network.run("b", ["site", "update", "--observer-port", String(ports.b)]);
    const scrape = async (site: "a" | "b"): Promise<string | undefined> => {
      try {
        const res = await fetch(`http://127.0.0.1:${ports[site]}/metrics`);
        return res.status === 200 && /^text\/plain; version=0\.0\.4/.test(res.headers.get("content-type") ?? "") ? await res.text() : undefined;
      } catch {
        return undefined;
      }
    };
    await eventually("both observer ports to serve metrics", async () => (await scrape("a")) !== undefined && (await scrape("b")) !== undefined, 10_000, 100);

    const bytes = 1024 * 1024;
    const result = await transfer(await connect(servicePort), bytes);
    assert.equal(result.received, bytes);

    const sample = (text: string, name: string, labels: string[]): number | undefined => {
      const line = text.split("\n").find((l) => l.startsWith(`${name}{`) && labels.every((label) => l.includes(label)));
      return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
    };
    const a = await eventually("A's metrics to count the connection", async () => {
      const text = await scrape("a");
      return text && sample(text, "skupper_connections_opened_total", ['routing_key="echo"', 'role="listener"']) === 1 ? text : undefined;
    }, 10_000, 100);
    assert.equal(sample(a, "skupper_connection_bytes_total", ['routing_key="echo"', 'role="listener"', 'way="out"']), bytes, "what the client sent");
    assert.equal(sample(a, "skupper_connections_active", ['routing_key="echo"', 'role="listener"']), 0);
    assert.equal(sample(a, "skupper_link_up", ['remote_site="b"']), 1);
    assert.match(a, /^process_cpu_user_seconds_total /m, "the process metrics are there");
    const b = (await scrape("b")) ?? "";
    assert.equal(sample(b, "skupper_connections_opened_total", ['routing_key="echo"', 'role="relay"']), 1, "B counts the stream it relays");
    assert.ok((sample(b, "skupper_connection_bytes_total", ['routing_key="echo"', 'role="relay"', 'way="in"']) ?? 0) >= bytes, b);

    await network.run("b", ["site", "update", "--observer-port", ""]);
    await eventually("B's observer port to close when turned off", async () => (await scrape("b")) === undefined, 10_000, 100);
  });
});
