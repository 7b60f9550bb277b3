/**
 * The redeeming client against a hostile grant server (real HTTPS on 127.0.0.1, a certificate
 * from the token's CA, so TLS passes): the client accepts exactly one TLS Secret and the Links
 * that use it, names them from the token whatever the server called them, keeps only what a link
 * needs, and bounds the size and duration of the answer.
 */
import assert from "node:assert/strict";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { API_VERSION, toYamlDocuments, type Link, type Secret } from "../../src/api/index.js";
import { credentialNames, MAX_RESPONSE_BYTES, redeemToken, RedemptionError } from "../../src/grants/index.js";
import { createAuthorities, tlsSecret as makeTlsSecret, type Authorities } from "../helpers/grant-fixtures.js";

let authorities: Authorities;
let server: https.Server;
let port = 0;
/** What the hostile server does with the next request. */
let answer: (res: import("node:http").ServerResponse) => void = (res) => res.end();

before(async () => {
  authorities = await createAuthorities();
  server = https.createServer({ cert: authorities.grantServerCert.cert, key: authorities.grantServerCert.key, minVersion: "TLSv1.3" }, (req, res) => {
    req.resume();
    req.on("end", () => answer(res));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
});

after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const identity = { name: "west-token", subject: "east", siteId: "site-east", siteName: "east" };

function token() {
  return { url: `https://127.0.0.1:${port}/grant`, code: "any", ca: authorities.grantCa.cert };
}

function respondWith(body: string): void {
  answer = (res) => {
    res.writeHead(200, { "Content-Type": "application/yaml", Connection: "close" });
    res.end(body);
  };
}

const b64 = (text: string) => Buffer.from(text).toString("base64");

const tlsSecret = (name: string, extra: Partial<Secret> = {}): Promise<Secret> => makeTlsSecret(authorities, name, extra);

function link(name: string, secretName: string, host = "203.0.113.66"): Link {
  return {
    apiVersion: API_VERSION,
    kind: "Link",
    metadata: {
      name,
      labels: { attacker: "yes" },
      annotations: { "skupper.io/remote-site-id": "site-west", "skupper.io/remote-site-name": "west", "skupper.io/access-token": "someone-else" },
    },
    spec: { endpoints: [{ name: "inter-router", host, port: "55671", group: "skupper-router" }], tlsCredentials: secretName, cost: 99, settings: { x: "y" } },
  };
}

async function refusedWith(pattern: RegExp): Promise<RedemptionError> {
  try {
    await redeemToken(token(), identity, 2000);
  } catch (err) {
    assert.ok(err instanceof RedemptionError, `a RedemptionError, got ${String(err)}`);
    assert.match(err.message, pattern);
    return err;
  }
  assert.fail("expected the response to be refused");
}

describe("names come from the token, not from the server", () => {
  test("a Secret and Link named like an existing link get the token's name; only what a link needs is kept", async () => {
    respondWith(toYamlDocuments([await tlsSecret("victim", { metadata: { name: "victim", labels: { a: "b" } } }), link("victim", "victim")]));
    const credentials = await redeemToken(token(), identity, 2000);
    assert.equal(credentials.secret.metadata.name, "west-token");
    assert.deepEqual(credentials.secret.metadata, { name: "west-token" });
    assert.deepEqual(Object.keys(credentials.secret.data ?? {}).sort(), ["ca.crt", "tls.crt", "tls.key"]);
    assert.equal(credentials.links.length, 1);
    const [only] = credentials.links;
    assert.deepEqual(only?.metadata, {
      name: "west-token",
      annotations: { "skupper.io/remote-site-id": "site-west", "skupper.io/remote-site-name": "west" },
    });
    assert.deepEqual(only?.spec, {
      endpoints: [{ name: "inter-router", host: "203.0.113.66", port: "55671", group: "skupper-router" }],
      tlsCredentials: "west-token",
    });
  });

  test("several Links are named <token>, <token>-2, <token>-3", async () => {
    respondWith(toYamlDocuments([await tlsSecret("s"), link("a", "s", "h1"), link("b", "s", "h2"), link("c", "s", "h3")]));
    const credentials = await redeemToken(token(), identity, 2000);
    assert.deepEqual(
      credentials.links.map((l) => [l.metadata.name, l.spec.endpoints[0]?.host, l.spec.tlsCredentials]),
      [
        ["west-token", "h1", "west-token"],
        ["west-token-2", "h2", "west-token"],
        ["west-token-3", "h3", "west-token"],
      ],
    );
    assert.deepEqual(credentialNames("west-token", 3), { secret: "west-token", links: ["west-token", "west-token-2", "west-token-3"] });
  });
});

describe("anything but one TLS Secret and the Links using it is refused", () => {
  test("another kind of resource in the response", async () => {
    const listener = { apiVersion: API_VERSION, kind: "Listener", metadata: { name: "backdoor" }, spec: { routingKey: "k", host: "0.0.0.0", port: 22 } };
    respondWith(toYamlDocuments([await tlsSecret("s"), link("l", "s"), listener]));
    const err = await refusedWith(/sent credentials that cannot be used: a Listener \("backdoor"\), which a redemption never returns$/);
    assert.equal(err.reason, "response");
    assert.equal(err.retryable, false, "asking again would spend another redemption");
  });

  test("two Secrets", async () => {
    respondWith(toYamlDocuments([await tlsSecret("s"), await tlsSecret("other"), link("l", "s")]));
    await refusedWith(/cannot be used: 2 Secrets; a redemption returns exactly one$/);
  });

  test("a Link that uses another Secret than the one sent", async () => {
    respondWith(toYamlDocuments([await tlsSecret("s"), link("l", "existing-secret")]));
    await refusedWith(/cannot be used: Link "l" does not use the Secret "s" of the response \(tlsCredentials: "existing-secret"\)$/);
  });

  test("a Secret that is not of type kubernetes.io/tls", async () => {
    respondWith(toYamlDocuments([await tlsSecret("s", { type: "Opaque" }), link("l", "s")]));
    await refusedWith(/cannot be used: the Secret is of type "Opaque", not kubernetes.io\/tls$/);
  });

  test("a Secret whose certificate is not a certificate", async () => {
    const secret = await tlsSecret("s");
    respondWith(toYamlDocuments([{ ...secret, data: { ...secret.data, "tls.crt": b64("not a certificate") } }, link("l", "s")]));
    await refusedWith(/cannot be used: the Secret's "tls.crt" is not a PEM certificate$/);
  });

  test("no Link", async () => {
    respondWith(toYamlDocuments([await tlsSecret("s")]));
    await refusedWith(/cannot be used: no Link in the response$/);
  });

  test("more Links than a site has router groups", async () => {
    respondWith(toYamlDocuments([await tlsSecret("s"), ...Array.from({ length: 9 }, (_, i) => link(`l${i}`, "s"))]));
    await refusedWith(/cannot be used: 9 Links; at most 8 are accepted$/);
  });

  test("a response over the size limit", async () => {
    respondWith(toYamlDocuments([await tlsSecret("s"), link("l", "s")]) + `# ${"x".repeat(MAX_RESPONSE_BYTES)}\n`);
    const err = await refusedWith(/sent an oversized response \(over 65536 bytes\)$/);
    assert.equal(err.retryable, false, "asking again would spend another redemption");
  });

  test("a response trickled so slowly that it never ends is cut off", async () => {
    answer = (res) => {
      res.writeHead(200, { "Content-Type": "application/yaml" });
      const timer = setInterval(() => res.write("#"), 50);
      res.on("close", () => clearInterval(timer));
    };
    const started = Date.now();
    await assert.rejects(redeemToken(token(), identity, 200), (err: unknown) => {
      assert.ok(err instanceof RedemptionError);
      assert.match(err.message, /: timed out$/);
      return true;
    });
    const elapsed = Date.now() - started;
    assert.ok(elapsed < 600 + 2000, `gave up after ${elapsed} ms; the whole exchange is bounded at 3 × the inactivity timeout`);
  });
});
