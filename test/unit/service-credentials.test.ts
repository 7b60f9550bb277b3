/**
 * Listener and Connector `tlsCredentials` (src/controller/service-credentials.ts and the plans
 * of src/controller/services.ts): which keys of the Secret each needs, and the sentence a user
 * reads in the status for every way the Secret can be wrong.
 */
import "reflect-metadata";
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { API_VERSION, type Connector, type Listener, type Secret } from "../../src/api/index.js";
import { createCA, issueCertificate, type Credentials } from "../../src/certs/index.js";
import { connectorTls, listenerTls, parseCertificates, parsePrivateKey, secretText } from "../../src/controller/service-credentials.js";
import { planConnectors, planListeners } from "../../src/controller/services.js";

let ca: Credentials;
let server: Credentials;
let other: Credentials;

before(async () => {
  ca = await createCA("service CA");
  [server, other] = await Promise.all([
    issueCertificate(ca, { commonName: "db.example", hosts: ["db.example"], usage: "server" }),
    issueCertificate(ca, { commonName: "other.example", hosts: ["other.example"], usage: "server" }),
  ]);
});

function secret(name: string, values: Record<string, string>, as: "data" | "stringData" = "data"): Secret {
  const encoded = as === "data" ? Object.fromEntries(Object.entries(values).map(([k, v]) => [k, Buffer.from(v).toString("base64")])) : values;
  return { apiVersion: "v1", kind: "Secret", metadata: { name }, type: "kubernetes.io/tls", [as]: encoded } as Secret;
}

function listener(name: string, tlsCredentials?: string, port = 8443): Listener {
  return { apiVersion: API_VERSION, kind: "Listener", metadata: { name }, spec: { routingKey: name, host: "127.0.0.1", port, ...(tlsCredentials ? { tlsCredentials } : {}) } };
}

function connector(name: string, spec: Partial<Connector["spec"]> = {}): Connector {
  return { apiVersion: API_VERSION, kind: "Connector", metadata: { name }, spec: { routingKey: name, host: "db.example", port: 5432, ...spec } };
}

const secrets = (...list: Secret[]) => new Map(list.map((s) => [s.metadata.name, s]));

function problemOf(result: ReturnType<typeof listenerTls> | ReturnType<typeof connectorTls>): string {
  assert.ok(result && "problem" in result, `expected a problem, got ${JSON.stringify(result && "credentials" in result ? "credentials" : result)}`);
  return result.problem;
}

describe("reading a Secret", () => {
  test("data is base64, stringData is plain, and an empty value counts as absent", () => {
    assert.equal(secretText(secret("s", { "tls.crt": "abc" }), "tls.crt"), "abc");
    assert.equal(secretText(secret("s", { "tls.crt": "abc" }, "stringData"), "tls.crt"), "abc");
    assert.equal(secretText(secret("s", { "tls.crt": "  \n" }), "tls.crt"), undefined);
    assert.equal(secretText(secret("s", {}), "tls.crt"), undefined);
  });

  test("a CA bundle of several certificates parses; anything else in a certificate key does not", () => {
    assert.equal(parseCertificates(ca.cert + server.cert)?.length, 2);
    assert.equal(parseCertificates("not a certificate"), undefined);
    assert.equal(parseCertificates("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), undefined);
    assert.ok(parsePrivateKey(server.key));
    assert.equal(parsePrivateKey(server.cert), undefined);
  });
});

describe("listener tlsCredentials", () => {
  test("without tlsCredentials a listener is plain TCP", () => {
    assert.equal(listenerTls(listener("web"), secrets()), undefined);
    const plan = planListeners([listener("web")], secrets());
    assert.deepEqual(plan.configs, [{ name: "web", host: "127.0.0.1", port: 8443, routingKey: "web" }]);
  });

  test("tls.crt and tls.key make a TLS listener; ca.crt, when present, is the CA of client certificates", () => {
    const plain = listenerTls(listener("web", "srv"), secrets(secret("srv", { "tls.crt": server.cert, "tls.key": server.key })));
    assert.deepEqual(plain, { credentials: { cert: server.cert, key: server.key } });
    const mutual = listenerTls(listener("web", "srv"), secrets(secret("srv", { "tls.crt": server.cert, "tls.key": server.key, "ca.crt": ca.cert }, "stringData")));
    assert.deepEqual(mutual, { credentials: { cert: server.cert, key: server.key, ca: ca.cert } });
    const plan = planListeners([listener("web", "srv")], secrets(secret("srv", { "tls.crt": server.cert, "tls.key": server.key })));
    assert.equal(plan.problems.size, 0);
    assert.equal(plan.configs[0]?.tls?.cert, server.cert);
  });

  test("a missing Secret names it and says what to put in it", () => {
    assert.equal(
      problemOf(listenerTls(listener("web", "srv"), secrets())),
      'TLS credentials secret "srv" not found: create a Secret "srv" in this namespace with tls.crt and tls.key (a TLS listener needs its server certificate and private key)',
    );
  });

  test("missing keys are named", () => {
    assert.match(problemOf(listenerTls(listener("web", "srv"), secrets(secret("srv", { "ca.crt": ca.cert })))), /^TLS credentials secret "srv" has no tls\.crt and tls\.key: add them /);
    assert.match(problemOf(listenerTls(listener("web", "srv"), secrets(secret("srv", { "tls.crt": server.cert })))), /^TLS credentials secret "srv" has no tls\.key: add it /);
  });

  test("a certificate or key that does not parse is named, and the key's text never appears", () => {
    const badCert = problemOf(listenerTls(listener("web", "srv"), secrets(secret("srv", { "tls.crt": "garbage", "tls.key": server.key }))));
    assert.equal(badCert, 'TLS credentials secret "srv": tls.crt is not a valid certificate; put the PEM certificate (-----BEGIN CERTIFICATE-----) in tls.crt');
    const truncated = server.key.slice(0, 60) + "\n-----END PRIVATE KEY-----\n";
    const badKey = problemOf(listenerTls(listener("web", "srv"), secrets(secret("srv", { "tls.crt": server.cert, "tls.key": truncated }))));
    assert.equal(badKey, 'TLS credentials secret "srv": tls.key is not a valid private key; put an unencrypted PEM private key (-----BEGIN PRIVATE KEY-----) in tls.key');
    assert.ok(!badKey.includes(server.key.split("\n")[1] as string));
    const badCa = problemOf(listenerTls(listener("web", "srv"), secrets(secret("srv", { "tls.crt": server.cert, "tls.key": server.key, "ca.crt": "nope" }))));
    assert.match(badCa, /^TLS credentials secret "srv": ca\.crt is not a valid certificate; .* or remove ca\.crt$/);
  });

  test("a key that belongs to another certificate is refused", () => {
    assert.equal(
      problemOf(listenerTls(listener("web", "srv"), secrets(secret("srv", { "tls.crt": server.cert, "tls.key": other.key })))),
      'TLS credentials secret "srv": tls.key is not the private key of the certificate in tls.crt; put the certificate and its own key in the Secret',
    );
  });

  test("the plan leaves a listener with a bad Secret out and says why; the others go on", () => {
    const plan = planListeners([listener("web", "missing", 1), listener("db", undefined, 2)], secrets());
    assert.deepEqual(plan.configs.map((c) => c.name), ["db"]);
    assert.match(plan.problems.get("web") ?? "", /^TLS credentials secret "missing" not found/);
  });
});

describe("connector tlsCredentials", () => {
  test("ca.crt alone: TLS to the backend, hostname verified by default, no client certificate by default", () => {
    const result = connectorTls(connector("db", { tlsCredentials: "trust" }), secrets(secret("trust", { "ca.crt": ca.cert, "tls.crt": server.cert, "tls.key": server.key })));
    assert.deepEqual(result, { credentials: { ca: ca.cert, verifyHostname: true } });
  });

  test("verifyHostname: false and useClientCert: true are carried to the router", () => {
    const spec = { tlsCredentials: "trust", verifyHostname: false, useClientCert: true };
    const result = connectorTls(connector("db", spec), secrets(secret("trust", { "ca.crt": ca.cert, "tls.crt": server.cert, "tls.key": server.key })));
    assert.deepEqual(result, { credentials: { ca: ca.cert, cert: server.cert, key: server.key, verifyHostname: false } });
  });

  test("the keys a connector needs depend on useClientCert", () => {
    assert.match(problemOf(connectorTls(connector("db", { tlsCredentials: "trust" }), secrets(secret("trust", { "tls.crt": server.cert })))), /^TLS credentials secret "trust" has no ca\.crt: add it \(a TLS connector needs the CA that issued the backend's certificate\)$/);
    assert.match(
      problemOf(connectorTls(connector("db", { tlsCredentials: "trust", useClientCert: true }), secrets(secret("trust", { "ca.crt": ca.cert })))),
      /^TLS credentials secret "trust" has no tls\.crt and tls\.key: add them \(a TLS connector with useClientCert needs/,
    );
    assert.match(problemOf(connectorTls(connector("db", { tlsCredentials: "trust", useClientCert: true }), secrets())), /^TLS credentials secret "trust" not found: create a Secret "trust" in this namespace with ca\.crt, tls\.crt and tls\.key /);
  });

  test("every backend a selector chooses gets the connector's TLS", () => {
    const plan = planConnectors(
      [connector("db", { host: undefined, selector: "app=db", tlsCredentials: "trust", verifyHostname: false })],
      secrets(secret("trust", { "ca.crt": ca.cert })),
      () => ["10.0.0.1", "10.0.0.2"],
    );
    assert.deepEqual(plan.configs.map((c) => [c.name, c.tls?.ca === ca.cert, c.tls?.verifyHostname]), [
      ["db@10.0.0.1", true, false],
      ["db@10.0.0.2", true, false],
    ]);
  });

  test("a connector with a bad Secret is left out of the plan with its problem", () => {
    const plan = planConnectors([connector("db", { tlsCredentials: "trust" }), connector("web")], secrets(secret("trust", { "ca.crt": "x" })));
    assert.deepEqual(plan.configs.map((c) => c.name), ["web"]);
    assert.match(plan.problems.get("db") ?? "", /^TLS credentials secret "trust": ca\.crt is not a valid certificate/);
  });
});
