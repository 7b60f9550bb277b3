/**
 * TLS listeners and connectors (`spec.tlsCredentials`) between two linked sites on loopback: real
 * Node TLS clients (and openssl s_client) against a TLS listener on one site, a connector on the
 * other dialling a real TLS backend; the certificates and Secrets are made here with src/certs.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { existsSync, promises as fs } from "node:fs";
import net from "node:net";
import path from "node:path";
import tls from "node:tls";
import { after, before, describe, test } from "node:test";
import { createCA, issueCertificate, type Credentials } from "../../src/certs/index.js";
import { eventually, freePort, Sandbox } from "../helpers/cli.js";
import { connect, LoopbackNetwork, outcome, roundTrip, serve, type Backend } from "../helpers/network.js";

const OPENSSL = ["/usr/bin/openssl", "/bin/openssl"].find((p) => existsSync(p));

interface TlsBackend extends Backend {
  /** Per accepted TLS connection: the CN of the client certificate, or "" without one. */
  clients: string[];
}

/** A TLS echo server on 127.0.0.1 that asks for (but does not require) a client certificate. */
async function tlsEchoBackend(server: Credentials, clientCa: string): Promise<TlsBackend> {
  const clients: string[] = [];
  const open = new Set<net.Socket>();
  const tlsServer = tls.createServer({ cert: server.cert, key: server.key, ca: clientCa, requestCert: true, rejectUnauthorized: false }, (socket) => {
    const peer = socket.getPeerCertificate();
    clients.push(socket.authorized && peer.subject ? String(peer.subject.CN) : "");
    open.add(socket);
    socket.once("close", () => open.delete(socket));
    socket.on("error", () => undefined);
    socket.pipe(socket);
  });
  tlsServer.on("tlsClientError", () => undefined);
  await new Promise<void>((resolve) => tlsServer.listen(0, "127.0.0.1", () => resolve()));
  return {
    port: (tlsServer.address() as net.AddressInfo).port,
    clients,
    connections: () => clients.length,
    close: () =>
      new Promise((resolve) => {
        tlsServer.close(() => resolve());
        for (const socket of open) socket.destroy();
      }),
  };
}

/** A TLS client to a listener on 127.0.0.1; resolves once its handshake is done. */
function tlsConnect(port: number, options: tls.ConnectionOptions): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ port, host: "127.0.0.1", servername: "localhost", ...options });
    socket.once("secureConnect", () => {
      socket.removeListener("error", reject);
      resolve(socket);
    });
    socket.once("error", reject);
  });
}

/**
 * Connects with TLS, sends a line and resolves with the echo; rejects with what went wrong
 * (the handshake refused, the connection reset or closed without an answer).
 */
async function tlsEcho(port: number, options: tls.ConnectionOptions, line = "hello over tls\n"): Promise<string> {
  const socket = await tlsConnect(port, options);
  try {
    return await new Promise<string>((resolve, reject) => {
      let got = "";
      const timer = setTimeout(() => reject(new Error("no answer within 5 s")), 5_000);
      socket.on("data", (d: Buffer) => {
        got += d.toString();
        if (got.length >= line.length) {
          clearTimeout(timer);
          resolve(got);
        }
      });
      socket.once("error", (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.once("close", () => {
        clearTimeout(timer);
        reject(new Error(`closed after ${got.length} bytes`));
      });
      socket.write(line);
    });
  } finally {
    socket.destroy();
  }
}

/** A plain TCP client through a listener: resolves with the echo or with how the connection ended. */
async function plainEcho(port: number, line = "hello\n"): Promise<string> {
  const socket = await connect(port);
  const ended = outcome(socket);
  try {
    const answer = roundTrip(socket, line).catch((err: NodeJS.ErrnoException) => `connection ${err.code === "ECONNRESET" ? "reset" : err.message}`);
    return await Promise.race([answer, ended.then((how) => `connection ${how}`)]);
  } finally {
    socket.destroy();
  }
}

function fingerprint(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

describe("TLS listeners and connectors", () => {
  let sandbox: Sandbox;
  let network: LoopbackNetwork;
  let ca: Credentials;
  let otherCa: Credentials;
  let listenerCert: Credentials;
  let clientCert: Credentials;
  let strangerCert: Credentials;
  const backends: Backend[] = [];
  let files = 0;

  before(async () => {
    sandbox = await Sandbox.create("tls-services");
    network = new LoopbackNetwork(sandbox, sandbox.home());
    ca = await createCA("tls services test CA");
    otherCa = await createCA("some other CA");
    [listenerCert, clientCert, strangerCert] = await Promise.all([
      issueCertificate(ca, { commonName: "localhost", hosts: ["localhost", "127.0.0.1"], usage: "server" }),
      issueCertificate(ca, { commonName: "trusted-client", usage: "client" }),
      issueCertificate(otherCa, { commonName: "stranger", usage: "client" }),
    ]);
    await network.createSite("west", { linkAccess: true });
    await network.createSite("east");
    await network.link("east", "west");
  });

  after(async () => {
    await Promise.all(backends.map((b) => b.close()));
    await sandbox?.cleanup();
  });

  /** `skupper apply -f` of one resource (JSON is YAML), from a file of mode 0600. */
  async function apply(site: string, resource: object): Promise<void> {
    const file = sandbox.file(`resource-${++files}.json`);
    await fs.writeFile(file, JSON.stringify(resource), { mode: 0o600 });
    await network.run(site, ["apply", "-f", file]);
  }

  function applySecret(site: string, name: string, values: Record<string, string>): Promise<void> {
    const data = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, Buffer.from(v).toString("base64")]));
    return apply(site, { apiVersion: "v1", kind: "Secret", metadata: { name }, type: "kubernetes.io/tls", data });
  }

  async function statusOf(site: string, kind: "listener" | "connector", name: string): Promise<{ status?: string; message?: string }> {
    const resource = JSON.parse(await network.run(site, ["get", kind, name, "-o", "json"]));
    return resource.status ?? {};
  }

  /** A plain echo backend on east offered under `key`. */
  async function plainConnector(key: string): Promise<void> {
    const backend = await serve((socket) => socket.pipe(socket));
    backends.push(backend);
    await network.run("east", ["connector", "create", key, String(backend.port), "--host", "127.0.0.1"]);
  }

  test("a TLS listener shows clients the Secret's certificate; a new certificate reaches new clients while open ones keep going", async () => {
    await plainConnector("echo-tls");
    await applySecret("west", "echo-cert", { "tls.crt": listenerCert.cert, "tls.key": listenerCert.key });
    const port = await freePort();
    await network.run("west", ["listener", "create", "echo-tls", String(port), "--tls-credentials", "echo-cert", "--wait", "ready"]);

    const first = await tlsConnect(port, { ca: ca.cert });
    assert.equal(first.getPeerCertificate().fingerprint256, fingerprint(listenerCert.cert), "the server certificate is the Secret's tls.crt");
    assert.equal(await roundTrip(first, "first client\n"), "first client\n");
    // A client that does not trust the CA is refused by its own verification.
    await assert.rejects(tlsConnect(port, { ca: otherCa.cert }), /certificate/);

    if (OPENSSL) {
      const caFile = sandbox.file("ca.crt");
      await fs.writeFile(caFile, ca.cert);
      const out = await new Promise<string>((resolve) => {
        const child = execFile(OPENSSL, ["s_client", "-connect", `127.0.0.1:${port}`, "-CAfile", caFile, "-servername", "localhost", "-verify_hostname", "localhost"], { timeout: 10_000 }, (_e, stdout, stderr) => resolve(stdout + stderr));
        child.stdin?.end("from openssl\n");
      });
      assert.match(out, /Verify return code: 0 \(ok\)/, out);
      assert.match(out, /CN ?= ?localhost/);
    } else console.log("# openssl not found: the s_client check is skipped");

    // The Secret changes: new clients see the new certificate; the first connection stays up.
    const renewed = await issueCertificate(ca, { commonName: "localhost", hosts: ["localhost", "127.0.0.1"], usage: "server" });
    await applySecret("west", "echo-cert", { "tls.crt": renewed.cert, "tls.key": renewed.key });
    await eventually("new clients to see the renewed certificate", async () => {
      const socket = await tlsConnect(port, { ca: ca.cert });
      const seen = socket.getPeerCertificate().fingerprint256;
      socket.destroy();
      return seen === fingerprint(renewed.cert);
    });
    assert.equal(await roundTrip(first, "still here\n"), "still here\n", "the connection made before the change still works");
    first.destroy();
  });

  test("with requireClientCert and ca.crt, clients must present a certificate that CA issued; ca.crt alone asks for none", async () => {
    await plainConnector("mutual");
    await applySecret("west", "mutual-cert", { "tls.crt": listenerCert.cert, "tls.key": listenerCert.key, "ca.crt": ca.cert });
    const port = await freePort();
    await network.run("west", ["listener", "create", "mutual", String(port), "--tls-credentials", "mutual-cert", "--wait", "ready"]);
    // A kubernetes.io/tls Secret carries ca.crt as a matter of course: that alone changes nothing for clients.
    assert.equal(await tlsEcho(port, { ca: ca.cert }), "hello over tls\n");

    await apply("west", { apiVersion: "skupper.io/v2alpha1", kind: "Listener", metadata: { name: "mutual" }, spec: { routingKey: "mutual", host: "127.0.0.1", port, tlsCredentials: "mutual-cert", requireClientCert: true } });
    await eventually("the listener to require client certificates", async () => !(await tlsEcho(port, { ca: ca.cert }).then(() => true, () => false)));

    await assert.rejects(tlsEcho(port, { ca: ca.cert }), "a client without a certificate gets no answer");
    await assert.rejects(tlsEcho(port, { ca: ca.cert, cert: strangerCert.cert, key: strangerCert.key }), "a certificate from another CA is refused");
    assert.equal(await tlsEcho(port, { ca: ca.cert, cert: clientCert.cert, key: clientCert.key }), "hello over tls\n");
    // The refused handshakes did not hurt the site: its listener is still Ready.
    assert.equal((await statusOf("west", "listener", "mutual")).status, "Ready");
  });

  test("a connector verifies its TLS backend against ca.crt and the host name; verifyHostname: false checks the chain only", async () => {
    // The backend's certificate names backend.test only; the connector dials 127.0.0.1.
    const backendCert = await issueCertificate(ca, { commonName: "backend.test", hosts: ["backend.test"], usage: "server" });
    const backend = await tlsEchoBackend(backendCert, ca.cert);
    backends.push(backend);
    await applySecret("east", "backend-trust", { "ca.crt": ca.cert });
    await network.run("east", ["connector", "create", "secure-db", String(backend.port), "--host", "127.0.0.1", "--tls-credentials", "backend-trust"]);
    const port = await freePort();
    await network.run("west", ["listener", "create", "secure-db", String(port), "--wait", "ready"]);

    assert.match(await plainEcho(port), /^connection (reset|end)$/, "the backend's certificate does not name 127.0.0.1: no connection");
    assert.equal(backend.connections(), 0);
    const log = await fs.readFile(path.join(sandbox.home(), "namespaces", "east", "runtime", "logs", "site.log"), "utf8");
    assert.match(log, /connector secure-db: the certificate of the backend 127\.0\.0\.1:\d+ does not name that host .*set verifyHostname: false/);

    const connector = { apiVersion: "skupper.io/v2alpha1", kind: "Connector", metadata: { name: "secure-db" } };
    const spec = { routingKey: "secure-db", host: "127.0.0.1", port: backend.port, tlsCredentials: "backend-trust" };
    await apply("east", { ...connector, spec: { ...spec, verifyHostname: false } });
    assert.equal(await eventually("the backend to answer once verifyHostname is false", async () => ((await plainEcho(port)) === "hello\n" ? "answered" : undefined)), "answered");
    assert.equal(backend.clients.at(-1), "", "no client certificate is sent without useClientCert");

    // A CA that did not issue the backend's certificate: refused even without the name check.
    await applySecret("east", "backend-trust", { "ca.crt": otherCa.cert });
    await eventually("the untrusted backend to be refused", async () => (await plainEcho(port)).startsWith("connection "));

    // useClientCert: the backend sees the certificate from the Secret's tls.crt.
    await applySecret("east", "backend-trust", { "ca.crt": ca.cert, "tls.crt": clientCert.cert, "tls.key": clientCert.key });
    await apply("east", { ...connector, spec: { ...spec, verifyHostname: false, useClientCert: true } });
    await eventually("the backend to see the client certificate", async () => (await plainEcho(port)) === "hello\n" && backend.clients.at(-1) === "trusted-client");
  });

  test("status says which Secret is missing or wrong and what to do, and recovers once it is fixed", async () => {
    await plainConnector("fixme");
    const port = await freePort();
    await network.run("west", ["listener", "create", "fixme", String(port), "--tls-credentials", "fixme-cert", "--wait", "none"]);
    const missing = await eventually("the status to report the missing Secret", async () => {
      const s = await statusOf("west", "listener", "fixme");
      return s.status === "Error" && s.message;
    });
    assert.match(missing, /^TLS credentials secret "fixme-cert" not found: create a Secret "fixme-cert" in this namespace with tls\.crt and tls\.key/);
    assert.match(await plainEcho(port).catch((err: Error) => err.message), /ECONNREFUSED/, "nothing listens while the Secret is missing");

    // The Secret appears, with another certificate's key.
    await applySecret("west", "fixme-cert", { "tls.crt": listenerCert.cert, "tls.key": clientCert.key });
    const mismatch = await eventually("the status to report the key that does not match", async () => {
      const s = await statusOf("west", "listener", "fixme");
      return s.message?.includes("tls.key") && s.message;
    });
    assert.equal(mismatch, 'TLS credentials secret "fixme-cert": tls.key is not the private key of the certificate in tls.crt; put the certificate and its own key in the Secret');
    const listed = await network.run("west", ["listener", "status", "fixme"]);
    assert.match(listed, /Status:\s+Error/);
    assert.doesNotMatch(listed, /PRIVATE KEY/);

    await applySecret("west", "fixme-cert", { "tls.crt": listenerCert.cert, "tls.key": listenerCert.key });
    await eventually("the listener to become Ready", async () => (await statusOf("west", "listener", "fixme")).status === "Ready");
    assert.equal(await tlsEcho(port, { ca: ca.cert }), "hello over tls\n");

    // A connector's Secret without ca.crt is named the same way.
    await applySecret("east", "no-ca", { "tls.crt": clientCert.cert });
    await network.run("east", ["connector", "create", "no-ca", "9", "--host", "127.0.0.1", "--tls-credentials", "no-ca", "--wait", "none"]);
    const noCa = await eventually("the connector's status to name the missing key", async () => (await statusOf("east", "connector", "no-ca")).message?.startsWith("TLS credentials") && (await statusOf("east", "connector", "no-ca")).message);
    assert.equal(noCa, `TLS credentials secret "no-ca" has no ca.crt: add it (a TLS connector needs the CA that issued the backend's certificate)`);

    // And back to plain TCP: --tls-credentials "" removes TLS from the listener.
    await network.run("west", ["listener", "update", "fixme", "--tls-credentials", "", "--wait", "ready"]);
    assert.equal(await eventually("plain TCP clients to be served again", async () => ((await plainEcho(port)) === "hello\n" ? "plain" : undefined)), "plain");
  });
});
