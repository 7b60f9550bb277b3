/**
 * The TLS ends of links (src/router/links.ts) with real TLS 1.3 on 127.0.0.1 and certificates
 * from src/certs: the dialer's status and reconnect backoff (first retry after 125–250 ms,
 * doubling, reset once a link is up), endpoints tried in turn, configuration errors, graceful
 * stop and updates; the server's client-certificate check.
 */
import assert from "node:assert/strict";
import net from "node:net";
import tls from "node:tls";
import { afterEach, before, describe, test } from "node:test";
import { createCA, issueCertificate, type Credentials } from "../../src/certs/index.js";
import { setLogLevel } from "../../src/common/log.js";
import { PROTOCOL_VERSION } from "../../src/router/frames.js";
import { LINK_ALPN, LinkDialer, LinkServer, type DialerHost, type LinkServerHost, type OutgoingLinkConfig, type TlsCredentials } from "../../src/router/links.js";
import { LinkSession, type Hello, type SessionOwner } from "../../src/router/session.js";
import { freePort } from "../helpers/cli.js";
import { until } from "../helpers/memory-link.js";

setLogLevel("error");

const hello = (siteId: string): Hello => ({ v: PROTOCOL_VERSION, siteId, siteName: siteId, instance: 1, version: "test", window: 1 << 20 });

/** Plays the router for a dialer and a server: sessions, and what the dialer reports. */
class Host implements DialerHost, LinkServerHost {
  readonly history: Array<{ state: string; message: string; at: number }> = [];
  readonly accepted: LinkSession[] = [];
  readonly acceptorDown: string[] = [];
  readonly dialed: LinkSession[] = [];

  startSession(socket: tls.TLSSocket, dialer: LinkDialer): LinkSession {
    const owner: SessionOwner = {
      sessionUp: () => dialer.sessionUp(),
      sessionDown: (session, reason) => dialer.sessionDown(session, reason),
      sessionUpdated: () => undefined,
      incomingStream: () => undefined,
      linkState: () => undefined,
    };
    const session = new LinkSession(socket, "dialer", { ...hello("id-a"), linkName: dialer.name, cost: dialer.config.cost }, owner, dialer.name);
    this.dialed.push(session);
    session.start();
    return session;
  }

  dialerChanged(dialer: LinkDialer): void {
    this.history.push({ state: dialer.state, message: dialer.message, at: Date.now() });
  }

  acceptSession(socket: tls.TLSSocket): void {
    const owner: SessionOwner = {
      sessionUp: () => undefined,
      sessionDown: (_s, reason) => this.acceptorDown.push(reason),
      sessionUpdated: () => undefined,
      incomingStream: () => undefined,
      linkState: () => undefined,
    };
    const session = new LinkSession(socket, "acceptor", hello("id-b"), owner, "incoming");
    this.accepted.push(session);
    session.start();
  }
}

let siteCA: Credentials;
let serverCredentials: TlsCredentials;
let clientCredentials: TlsCredentials;
let strangerCredentials: TlsCredentials;
let expiredClient: TlsCredentials;

before(async () => {
  siteCA = await createCA("site-b");
  const server = await issueCertificate(siteCA, { commonName: "skupper-site-server", hosts: ["127.0.0.1"], usage: "server" });
  const client = await issueCertificate(siteCA, { commonName: "link-client", usage: "client" });
  const otherCA = await createCA("someone-else");
  const stranger = await issueCertificate(otherCA, { commonName: "skupper-site-server", hosts: ["127.0.0.1"], usage: "server" });
  const expired = await issueCertificate(siteCA, {
    commonName: "old-client",
    usage: "client",
    notBefore: new Date(Date.now() - 10 * 86_400_000),
    notAfter: new Date(Date.now() - 86_400_000),
  });
  serverCredentials = { ca: siteCA.cert, cert: server.cert, key: server.key };
  clientCredentials = { ca: siteCA.cert, cert: client.cert, key: client.key };
  // A server certificate from another CA, and client credentials trusting that CA.
  strangerCredentials = { ca: otherCA.cert, cert: stranger.cert, key: stranger.key };
  expiredClient = { ca: siteCA.cert, cert: expired.cert, key: expired.key };
});

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function linkServer(host: Host, credentials = serverCredentials): Promise<{ server: LinkServer; port: number }> {
  const server = new LinkServer(host);
  const port = await freePort();
  await server.configure({ host: "127.0.0.1", port, credentials });
  cleanup.push(() => {
    for (const s of host.accepted) s.close("test over");
    return server.close();
  });
  return { server, port };
}

/** A dialer whose jitter is fixed at 0, so retry delays are exactly half the step: 125, 250, 500 ms… */
function dialer(host: Host, config: Partial<OutgoingLinkConfig> & { endpoints: OutgoingLinkConfig["endpoints"] }): LinkDialer {
  const random = Math.random;
  Math.random = () => 0;
  let d: LinkDialer;
  try {
    d = new LinkDialer({ name: "to-b", cost: 1, credentials: clientCredentials, ...config }, host);
  } finally {
    Math.random = random;
  }
  cleanup.push(() => d.stop("test over"));
  d.start();
  return d;
}

/**
 * The dialer is between attempts (its retry timer is set): tests stop it there, so that each
 * attempt they count has ended.
 */
const waitingToRetry = (d: LinkDialer): boolean => (d as unknown as { timer?: NodeJS.Timeout }).timer !== undefined;

/** Timers that keep the process alive (unref'd ones do not count). */
const refTimers = (): number => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;

/**
 * A TCP front for a port: counts connection attempts (with their times), and either drops
 * them at once ("drop") or passes them through to `target` ("pass"). `cut()` breaks the
 * connections it is passing.
 */
async function front(target: number): Promise<{ port: number; attempts: number[]; mode: "drop" | "pass"; cut: () => void }> {
  const pairs = new Set<[net.Socket, net.Socket]>();
  const state = {
    port: 0,
    attempts: [] as number[],
    mode: "drop" as "drop" | "pass",
    cut: () => {
      for (const [a, b] of pairs) {
        a.destroy();
        b.destroy();
      }
      pairs.clear();
    },
  };
  const server = net.createServer((socket) => {
    state.attempts.push(Date.now());
    socket.on("error", () => undefined);
    if (state.mode === "drop") {
      socket.destroy();
      return;
    }
    const upstream = net.connect({ port: target, host: "127.0.0.1" });
    upstream.on("error", () => undefined);
    pairs.add([socket, upstream]);
    socket.pipe(upstream).pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  state.port = (server.address() as net.AddressInfo).port;
  cleanup.push(() => {
    state.cut();
    server.close();
  });
  return state;
}

describe("link dialer", () => {
  test("connects with TLS 1.3 and ALPN, completes the handshake and reports up", async () => {
    const host = new Host();
    const { port } = await linkServer(host);
    const d = dialer(host, { endpoints: [{ host: "127.0.0.1", port }] });
    await until("the link to be up", () => d.state === "up");
    assert.equal(d.message, "OK");
    assert.equal(d.session?.peer?.siteId, "id-b");
    const socket = d.session!.socket;
    assert.equal(socket.getProtocol(), "TLSv1.3");
    assert.equal(socket.alpnProtocol, LINK_ALPN);
    await until("the acceptor side to be up", () => host.accepted[0]?.state === "up");
    assert.equal(host.accepted[0]!.peer?.linkName, "to-b");
  });

  test("retries a failing endpoint with growing delays: 125 ms, then 250 ms (jitter 0)", async () => {
    const host = new Host();
    const f = await front(1);
    const d = dialer(host, { endpoints: [{ host: "127.0.0.1", port: f.port }] });
    await until("three attempts", () => f.attempts.length >= 3, 1900);
    await until("the third attempt to have failed", () => waitingToRetry(d));
    const [t0, t1, t2] = f.attempts as [number, number, number];
    assert.ok(t1 - t0 >= 120 && t1 - t0 < 125 + 350, `first retry after ${t1 - t0} ms`);
    assert.ok(t2 - t1 >= 245 && t2 - t1 < 250 + 350, `second retry after ${t2 - t1} ms`);
    assert.equal(d.state, "connecting", "a dropped connection is transient, not an error");
    assert.match(d.message, new RegExp(`127\\.0\\.0\\.1:${f.port}`), "the status names the endpoint");
  });

  test("the backoff starts again from 125 ms once a link has been up", async () => {
    const host = new Host();
    const { port } = await linkServer(host);
    const f = await front(port);
    const d = dialer(host, { endpoints: [{ host: "127.0.0.1", port: f.port }] });
    // Dropped at 0, 125 and 375 ms; the fourth attempt (at 875 ms) gets through.
    await until("three failed attempts", () => f.attempts.length === 3, 1500);
    f.mode = "pass";
    await until("the link to be up", () => d.state === "up", 1500);
    assert.equal(f.attempts.length, 4);
    const cutAt = Date.now();
    f.cut();
    await until("the link to go down", () => d.state === "connecting");
    assert.match(d.message, /closed|reset/);
    await until("a new attempt", () => f.attempts.length === 5, 1500);
    const gap = f.attempts[4]! - cutAt;
    // Without the reset the next delay would be the fourth step's: 1000 ms.
    assert.ok(gap >= 120 && gap < 700, `reconnected after ${gap} ms`);
    await until("the link to be up again", () => d.state === "up", 1500);
  });

  test("several endpoints are tried in turn", async () => {
    const host = new Host();
    const { port } = await linkServer(host);
    const closed = await freePort();
    const d = dialer(host, { endpoints: [{ host: "127.0.0.1", port: closed }, { host: "127.0.0.1", port }] });
    await until("the link to be up", () => d.state === "up");
    assert.equal(host.history[0]?.state, "connecting");
    assert.match(host.history[0]!.message, new RegExp(`^connection refused by 127\\.0\\.0\\.1:${closed} `));
    assert.equal(host.history.at(-1)?.state, "up");
  });

  test("a server certificate from another CA is an error, not a transient failure", async () => {
    const host = new Host();
    const { port } = await linkServer(host, strangerCredentials);
    const d = dialer(host, { endpoints: [{ host: "127.0.0.1", port }] });
    await until("an error", () => d.state === "error");
    assert.match(d.message, /^TLS: the certificate of 127\.0\.0\.1:\d+ is not signed by the CA in this link's credentials/);
    assert.equal(host.accepted.length, 0);
  });

  test("an expired client certificate is reported without connecting", async () => {
    const host = new Host();
    const f = await front(1);
    const d = dialer(host, { endpoints: [{ host: "127.0.0.1", port: f.port }], credentials: expiredClient });
    await until("an error", () => d.state === "error");
    assert.match(d.message, /^this link's certificate expired on \d{4}-\d\d-\d\dT.*; redeem a new token$/);
    assert.equal(f.attempts.length, 0);
  });

  test("stop() says why with a GOAWAY", async () => {
    const host = new Host();
    const { port } = await linkServer(host);
    const d = dialer(host, { endpoints: [{ host: "127.0.0.1", port }] });
    await until("the link to be up", () => d.state === "up" && host.accepted[0]?.state === "up");
    d.stop();
    await until("the acceptor to see the link go", () => host.acceptorDown.length === 1);
    assert.equal(host.acceptorDown[0], "the remote site closed the link: the link was deleted");
  });

  test("a cost change goes out in a HELLO on the open link; an endpoint change reconnects", async () => {
    const host = new Host();
    const { port } = await linkServer(host);
    const f = await front(port);
    f.mode = "pass";
    const config: OutgoingLinkConfig = { name: "to-b", cost: 1, credentials: clientCredentials, endpoints: [{ host: "127.0.0.1", port: f.port }] };
    const d = dialer(host, config);
    await until("the link to be up", () => d.state === "up" && host.accepted[0]?.state === "up");
    d.update({ ...config, cost: 7 });
    await until("the new cost at the acceptor", () => host.accepted[0]!.cost === 7);
    assert.equal(f.attempts.length, 1, "no reconnect for a cost change");
    d.update({ ...config, cost: 7, endpoints: [{ host: "127.0.0.1", port }] });
    await until("the old link to close", () => host.acceptorDown.length === 1);
    assert.equal(host.acceptorDown[0], "the remote site closed the link: link configuration changed");
    await until("a new link up", () => host.accepted.length === 2 && host.accepted[1]!.state === "up" && d.state === "up");
  });
});

test(
  "stopping a dialer in the middle of a connect attempt leaves no timer holding the process",
  async () => {
    const host = new Host();
    // A TCP server that never answers the TLS handshake: the attempt stays in flight.
    const held: net.Socket[] = [];
    const silent = net.createServer((socket) => held.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", () => resolve()));
    // Timers made while the dialer starts are recorded, so the test can clear what it leaves.
    const made: NodeJS.Timeout[] = [];
    const setTimeoutBefore = globalThis.setTimeout;
    try {
      const before = refTimers();
      const d = new LinkDialer({ name: "to-b", cost: 1, credentials: clientCredentials, endpoints: [{ host: "127.0.0.1", port: (silent.address() as net.AddressInfo).port }] }, host);
      globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => {
        const t = setTimeoutBefore(...args);
        made.push(t);
        return t;
      }) as typeof setTimeout;
      try {
        d.start();
      } finally {
        globalThis.setTimeout = setTimeoutBefore;
      }
      await until("the connection to reach the server", () => held.length === 1);
      d.stop();
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(refTimers(), before, "no timer left behind by the stopped dialer");
    } finally {
      for (const t of made) clearTimeout(t);
      for (const s of held) s.destroy();
      silent.close();
    }
  },
);

describe("link server", () => {
  function tryClient(port: number, credentials: Partial<TlsCredentials>, ca = siteCA.cert): Promise<string> {
    return new Promise((resolve) => {
      const socket = tls.connect({ host: "127.0.0.1", port, ca, ...(credentials.cert ? { cert: credentials.cert, key: credentials.key } : {}), ALPNProtocols: [LINK_ALPN] });
      const done = (result: string) => {
        socket.destroy();
        resolve(result);
      };
      socket.on("error", (err: NodeJS.ErrnoException) => done(err.code ?? err.message));
      // With TLS 1.3 the server checks the client certificate after the client's handshake is
      // done: a refusal shows as an alert or a close on the first read; a welcome, as its HELLO.
      socket.on("secureConnect", () => socket.once("data", () => done("accepted")));
      socket.on("end", () => done("closed"));
      setTimeout(() => done("no answer within 1500 ms"), 1500).unref();
    });
  }

  test("accepts only client certificates from its site CA", async () => {
    const host = new Host();
    const { port } = await linkServer(host);
    const stranger = await createCA("stranger");
    const strangerClient = await issueCertificate(stranger, { commonName: "intruder", usage: "client" });
    assert.equal(await tryClient(port, { cert: clientCredentials.cert, key: clientCredentials.key }), "accepted", "the site's own client certificate");
    assert.notEqual(await tryClient(port, strangerClient), "accepted", "a client certificate from another CA");
    assert.notEqual(await tryClient(port, {}), "accepted", "no client certificate");
    assert.equal(host.accepted.length, 1, "only the good client got a session");
  });

  test("a port in use is refused with EADDRINUSE", async () => {
    const host = new Host();
    const { port } = await linkServer(host);
    const second = new LinkServer(host);
    await assert.rejects(second.configure({ host: "127.0.0.1", port, credentials: serverCredentials }), { code: "EADDRINUSE" });
  });

  test("new credentials on the same port take effect without rebinding", async () => {
    const host = new Host();
    const { server, port } = await linkServer(host);
    await server.configure({ host: "127.0.0.1", port, credentials: strangerCredentials });
    assert.equal(server.listening, true);
    const d = dialer(host, { endpoints: [{ host: "127.0.0.1", port }] });
    await until("an error", () => d.state === "error");
    assert.match(d.message, /not signed by the CA/, "the server now presents the other certificate");
  });
});
