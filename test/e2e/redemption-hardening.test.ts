/**
 * A hostile grant server cannot touch the redeeming site's other resources: a real site
 * process redeems tokens (via `skupper token redeem`) at an HTTPS server written here, whose
 * certificate comes from the token's CA, so TLS passes and only the response can be wrong.
 */
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import https from "node:https";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { after, before, test } from "node:test";
import { API_VERSION, toYaml, toYamlDocuments, type Link, type Secret } from "../../src/api/index.js";
import { eventually, ok, parseTable, Sandbox, skupper } from "../helpers/cli.js";
import { createAuthorities, tlsSecret as makeTlsSecret, type Authorities } from "../helpers/grant-fixtures.js";

const sandbox = await Sandbox.create("redemption-hardening");
const home = sandbox.home();
const inputDir = path.join(home, "namespaces", "east", "input", "resources");
let authorities: Authorities;
let hostile: https.Server;
let hostilePort = 0;
let answer = "";
let requests = 0;

after(async () => {
  hostile?.closeAllConnections();
  await new Promise((resolve) => (hostile ? hostile.close(resolve) : resolve(undefined)));
  await sandbox.cleanup();
});

before(async () => {
  authorities = await createAuthorities();
  hostile = https.createServer({ cert: authorities.grantServerCert.cert, key: authorities.grantServerCert.key, minVersion: "TLSv1.3" }, (req, res) => {
    requests++;
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "Content-Type": "application/yaml", Connection: "close" });
      res.end(answer);
    });
  });
  await new Promise<void>((resolve) => hostile.listen(0, "127.0.0.1", resolve));
  hostilePort = (hostile.address() as AddressInfo).port;
  await ok(["-n", "east", "site", "create", "east"], { home });
});


const tlsSecret = (name: string, extra: Partial<Secret> = {}): Promise<Secret> => makeTlsSecret(authorities, name, extra);

function link(name: string, host: string): Link {
  return {
    apiVersion: API_VERSION,
    kind: "Link",
    metadata: { name },
    spec: { endpoints: [{ name: "inter-router", host, port: "55671", group: "skupper-router" }], tlsCredentials: name },
  };
}

async function writeToken(file: string, name: string): Promise<string> {
  const token = {
    apiVersion: API_VERSION,
    kind: "AccessToken",
    metadata: { name },
    spec: { url: `https://127.0.0.1:${hostilePort}/some-grant`, code: "code", ca: authorities.grantCa.cert, linkCost: 1 },
  };
  const target = sandbox.file(file);
  await fs.writeFile(target, toYaml(token), { mode: 0o600 });
  return target;
}

async function inputFiles(): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const name of await fs.readdir(inputDir)) files.set(name, await fs.readFile(path.join(inputDir, name), "utf8"));
  return files;
}

test("a grant server answering with a Link and Secret named like an existing link cannot redirect it or replace its key", async () => {
  // The site's existing link to another site, made with YAML.
  const existing = sandbox.file("existing-link.yaml");
  await fs.writeFile(existing, toYamlDocuments([await tlsSecret("to-north"), link("to-north", "198.51.100.7")]));
  await ok(["-n", "east", "apply", "-f", existing], { home });
  const before = await inputFiles();
  assert.ok(before.has("Link-to-north.yaml") && before.has("Secret-to-north.yaml"), [...before.keys()].join(", "));

  // The attacker's answer: credentials and an endpoint of its own, under the existing link's name.
  answer = toYamlDocuments([await tlsSecret("to-north"), link("to-north", "203.0.113.66")]);
  const token = await writeToken("hostile-token.yaml", "from-hostile");
  const output = await ok(["-n", "east", "token", "redeem", token, "--timeout", "30s"], { home });
  assert.match(output, /Token "from-hostile" has been redeemed\./);
  assert.match(output, /Link "from-hostile" created/);

  const after = await inputFiles();
  assert.equal(after.get("Link-to-north.yaml"), before.get("Link-to-north.yaml"), "the existing Link is untouched");
  assert.equal(after.get("Secret-to-north.yaml"), before.get("Secret-to-north.yaml"), "the existing key is untouched");

  const created = JSON.parse(await ok(["-n", "east", "get", "link", "from-hostile", "-o", "json"], { home })) as Link;
  assert.equal(created.spec.tlsCredentials, "from-hostile", "the new link uses the token-derived Secret");
  assert.equal(created.spec.endpoints[0]?.host, "203.0.113.66");
  assert.equal(created.metadata.annotations?.["skupper.io/access-token"], "from-hostile");
  assert.ok(after.has("Secret-from-hostile.yaml"));
  const names = parseTable(await ok(["-n", "east", "get", "links"], { home })).map((r) => r.NAME).sort();
  assert.deepEqual(names, ["from-hostile", "to-north"]);
});

test("a grant server answering with anything besides the Secret and its Links gets nothing written, and is asked once", async () => {
  const listener = { apiVersion: API_VERSION, kind: "Listener", metadata: { name: "backdoor" }, spec: { routingKey: "ssh", host: "0.0.0.0", port: 2222 } };
  answer = toYamlDocuments([await tlsSecret("x"), link("x", "203.0.113.66"), listener]);
  const before = await inputFiles();
  const asked = requests;
  const token = await writeToken("extra-token.yaml", "with-extras");
  const result = await skupper(["-n", "east", "token", "redeem", token, "--timeout", "30s"], { home });
  assert.equal(result.code, 1, result.stderr);
  assert.match(
    result.stderr,
    new RegExp(
      `Token "with-extras" could not be redeemed: the grant server at 127\\.0\\.0\\.1:${hostilePort} sent credentials that cannot be used: a Listener \\("backdoor"\\), which a redemption never returns`,
    ),
  );
  assert.equal(requests - asked, 1, "not retried: a retry would spend another redemption");
  assert.deepEqual([...(await inputFiles()).keys()].sort(), [...before.keys()].sort(), "nothing was written and the token was removed");
});

test("a site stopped half-way through storing a redemption finishes it on restart, without redeeming again", async () => {
  answer = toYamlDocuments([await tlsSecret("x"), link("x", "203.0.113.66")]);
  const asked = requests;
  const namespace = path.join(home, "namespaces", "east");
  await ok(["-n", "east", "system", "stop"], { home });

  // What the site leaves if it stops after journaling the credentials and writing the Secret,
  // before the Link: the journal, the Secret and the AccessToken.
  const annotations = { "skupper.io/access-token": "half-stored" };
  const secret = { ...(await tlsSecret("half-stored")), metadata: { name: "half-stored", annotations } };
  const received = { ...link("half-stored", "203.0.113.77"), metadata: { name: "half-stored", annotations } };
  const journal = path.join(namespace, "runtime", "redemptions", "half-stored.yaml");
  await fs.mkdir(path.dirname(journal), { recursive: true });
  await fs.writeFile(journal, toYamlDocuments([secret, received]), { mode: 0o600 });
  await fs.writeFile(path.join(inputDir, "Secret-half-stored.yaml"), toYaml(secret), { mode: 0o600 });
  const tokenFile = await writeToken("half-stored.yaml", "half-stored");
  await fs.copyFile(tokenFile, path.join(inputDir, "AccessToken-half-stored.yaml"));

  await ok(["-n", "east", "system", "start"], { home });
  const status = await eventually("the token to be redeemed", async () => {
    const token = JSON.parse(await ok(["-n", "east", "get", "accesstoken", "half-stored", "-o", "json"], { home })) as { status?: { redeemed?: boolean; status?: string } };
    return token.status?.redeemed ? token.status : undefined;
  });
  assert.equal(status.status, "Ready");
  const created = JSON.parse(await ok(["-n", "east", "get", "link", "half-stored", "-o", "json"], { home })) as Link;
  assert.equal(created.spec.endpoints[0]?.host, "203.0.113.77", "the journaled Link, not a new answer");
  assert.equal(requests - asked, 0, "the grant server was not asked again");
  await eventually("the journal to be removed", async () => !(await fs.stat(journal).catch(() => undefined)));
});
