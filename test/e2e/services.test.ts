/**
 * Services across two linked sites on loopback: real clients (HTTP, bulk transfers, half-close,
 * 1,000 concurrent connections) through a listener on one site and a connector on the other.
 */
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { after, before, describe, test } from "node:test";
import { eventually, freePort, Sandbox } from "../helpers/cli.js";
import { connect, ending, exchange, LoopbackNetwork, outcome, roundTrip, serve, transfer, type Backend, type Transfer } from "../helpers/network.js";

describe("services between two linked sites", () => {
  let sandbox: Sandbox;
  let network: LoopbackNetwork;
  const backends: Backend[] = [];

  before(async () => {
    sandbox = await Sandbox.create("services");
    network = new LoopbackNetwork(sandbox, sandbox.home());
    await network.createSite("west", { linkAccess: true });
    await network.createSite("east");
    await network.link("east", "west");
  });

  after(async () => {
    await Promise.all(backends.map((b) => b.close()));
    await sandbox.cleanup();
  });

  async function expose(name: string, backend: Backend, options: { listenerSite?: string; connectorSite?: string } = {}): Promise<number> {
    backends.push(backend);
    const port = await freePort();
    await network.run(options.connectorSite ?? "east", ["connector", "create", name, String(backend.port), "--host", "127.0.0.1"]);
    await network.run(options.listenerSite ?? "west", ["listener", "create", name, String(port), "--wait", "ready"]);
    return port;
  }

  test("an HTTP server on one site answers an HTTP client on the other", async () => {
    const server = http.createServer((req, res) => {
      let body = "";
      req.on("data", (d) => (body += d));
      req.on("end", () => res.end(`${req.method} ${req.url} ${body.length}`));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    const backend: Backend = {
      port: (server.address() as net.AddressInfo).port,
      connections: () => 0,
      close: () => new Promise((resolve) => server.close(() => resolve())),
    };
    const port = await expose("web", backend);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    try {
      const request = (i: number) =>
        new Promise<string>((resolve, reject) => {
          const req = http.request({ port, host: "127.0.0.1", path: `/item/${i}`, method: "POST", agent }, (res) => {
            let text = "";
            res.setEncoding("utf8");
            res.on("data", (d) => (text += d));
            res.on("end", () => resolve(`${res.statusCode} ${text}`));
          });
          req.on("error", reject);
          req.end("x".repeat(i * 1000));
        });
      const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => request(i)));
      answers.forEach((answer, i) => assert.equal(answer, `200 POST /item/${i} ${i * 1000}`));
    } finally {
      agent.destroy();
    }
  });

  test("100 MiB of random bytes each way at once arrive intact (SHA-256)", async () => {
    const size = 100 * 1024 * 1024;
    let backendSide: Promise<Transfer> | undefined;
    const port = await expose(
      "bulk",
      await serve((socket) => {
        backendSide = transfer(socket, size);
      }),
    );
    const client = await connect(port);
    const clientSide = await transfer(client, size);
    const serverSide = await (backendSide as Promise<Transfer>);
    assert.equal(clientSide.received, size, "the client received every byte");
    assert.equal(serverSide.received, size, "the backend received every byte");
    assert.equal(serverSide.receivedHash, clientSide.sentHash, "client → backend bytes are intact");
    assert.equal(clientSide.receivedHash, serverSide.sentHash, "backend → client bytes are intact");
  });

  test("half-close: the client shuts its write side and still receives the whole echo", async () => {
    const port = await expose("half", await serve((socket) => socket.pipe(socket)));
    const payload = Buffer.alloc(3 * 1024 * 1024 + 17, "abcdefgh");
    const echoed = await exchange(port, payload);
    assert.equal(echoed.length, payload.length);
    assert.ok(echoed.equals(payload));
  });

  test("1,000 concurrent connections are all served correctly", async () => {
    const port = await expose("many", await serve((socket) => socket.pipe(socket)));
    const sockets = await Promise.all(Array.from({ length: 1000 }, () => connect(port)));
    try {
      const replies = await Promise.all(sockets.map((s, i) => roundTrip(s, `connection ${i};`, 30_000)));
      replies.forEach((reply, i) => assert.equal(reply, `connection ${i};`));
    } finally {
      for (const s of sockets) s.destroy();
    }
  });

  test("without a connector the listener refuses connections; adding one makes them succeed", async () => {
    const port = await freePort();
    await network.run("west", ["listener", "create", "later", String(port)]);
    const status = await network.run("west", ["listener", "status", "later"]);
    assert.match(status, /later/);
    await assert.rejects(connect(port), /ECONNREFUSED/, "nothing offers the key, so the port is closed");

    const backend = await serve((socket) => socket.end("served"));
    backends.push(backend);
    await network.run("east", ["connector", "create", "later", String(backend.port), "--host", "127.0.0.1"]);
    const reply = await eventually("the listener to serve once a connector exists", () => exchange(port, "").catch(() => undefined), 5_000);
    assert.equal(reply.toString(), "served");
  });

  test("a backend that refuses: the client is closed promptly, without data", async () => {
    const dead = await freePort();
    const port = await freePort();
    await network.run("east", ["connector", "create", "dead", String(dead), "--host", "127.0.0.1"]);
    await network.run("west", ["listener", "create", "dead", String(port), "--wait", "ready"]);
    const started = Date.now();
    // Watched from the first moment: the RST can come so fast that it is what the connect reports.
    const socket = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true });
    socket.write("anyone there?");
    const result = await ending(socket);
    const elapsed = Date.now() - started;
    socket.destroy();
    // An orderly end would tell the client "that was the whole answer"; a failed backend must not.
    assert.deepEqual(result, { how: "reset", received: 0 }, "the client gets an RST (ECONNRESET) and not a single byte");
    assert.ok(elapsed < 3_000, `closed promptly, not after a timeout (${elapsed} ms)`);
  });

  test("deleting the connector, or the listener, closes the connections through it", async () => {
    const echo = await serve((socket) => socket.pipe(socket));
    const port = await expose("doomed", echo);
    const first = await connect(port);
    assert.equal(await roundTrip(first, "ping"), "ping");
    const firstEnded = outcome(first);
    await network.run("east", ["connector", "delete", "doomed"]);
    assert.equal(await firstEnded, "reset", "a connection cut short is reset, not ended cleanly");

    await network.run("east", ["connector", "create", "doomed", String(echo.port), "--host", "127.0.0.1"]);
    const second = await eventually("a new connection after re-creating the connector", async () => {
      const s = await connect(port).catch(() => undefined);
      if (!s) return undefined;
      const ok = await roundTrip(s, "pong", 2_000).catch(() => undefined);
      if (ok !== "pong") s.destroy();
      return ok === "pong" ? s : undefined;
    }, 5_000);
    const secondEnded = outcome(second);
    await network.run("west", ["listener", "delete", "doomed"]);
    assert.equal(await secondEnded, "reset");
    await assert.rejects(connect(port), /ECONNREFUSED/, "the deleted listener's port is closed");
  });

  test("listener and connector status say whether a match exists anywhere", async () => {
    const port = await freePort();
    await network.run("west", ["listener", "create", "lonely", String(port)]);
    // The status must say "no match" outright; a status not written yet is not an answer.
    await eventually("the listener's status to say it has no matching connector", async () => {
      const l = JSON.parse(await network.run("west", ["get", "listener", "lonely", "-o", "json"]));
      return l.status?.hasMatchingConnector === false;
    });
    await network.run("east", ["connector", "create", "lonely", "9", "--host", "127.0.0.1"]);
    await eventually("the listener to see the connector", async () => {
      const l = JSON.parse(await network.run("west", ["get", "listener", "lonely", "-o", "json"]));
      return l.status?.hasMatchingConnector === true;
    });
    await eventually("the connector to see the listener", async () => {
      const c = JSON.parse(await network.run("east", ["get", "connector", "lonely", "-o", "json"]));
      return c.status?.hasMatchingListener === true;
    });
  });

  test("turning link access off ends the incoming links, and the site keeps applying changes", async () => {
    await network.run("west", ["site", "update", "--enable-link-access=false", "--timeout", "20s"]);
    await eventually("east's link to go down", async () => (await network.linkRows("east")).find((r) => r.STATUS !== "Ready"), 10_000);
    assert.deepEqual((await network.linkRows("west")).filter((r) => r.DIRECTION === "incoming"), []);
    const port = await freePort();
    await network.run("west", ["listener", "create", "after-access-off", String(port), "--wait", "configured", "--timeout", "10s"]);
  });
});
