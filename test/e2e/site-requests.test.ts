/**
 * Work that needs a site's keys is done by its site process on the CLI's request (the CLI never
 * reads the site's CA): `link generate` and `revoke-access`, with the site process running,
 * stopped, or just starting.
 */
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { parseDocuments } from "../../src/api/index.js";
import { isIssuedBy } from "../../src/certs/index.js";
import { eventually, freePort, ok, parseTable, Sandbox, sitePid, skupper } from "../helpers/cli.js";

const sandbox = await Sandbox.create("site-requests");
const home = sandbox.home();
after(() => sandbox.cleanup());

const siteCaFile = path.join(home, "namespaces", "west", "runtime", "issuers", "skupper-site-ca", "ca.crt");

before(async () => {
  await ok(
    ["-n", "west", "site", "create", "west", "--enable-link-access", "--link-port", String(await freePort()), "--grant-server-port", String(await freePort()), "--host", "127.0.0.1"],
    { home },
  );
});

test("link generate: the site process issues a client certificate from its CA; stopped, a clear error", async () => {
  const out = await ok(["-n", "west", "link", "generate", "--name", "to-west"], { home });
  const { resources, problems } = parseDocuments(out, "link generate");
  assert.deepEqual(problems, []);
  const secret = resources.find((r) => r.kind === "Secret");
  assert.ok(secret && secret.kind === "Secret");
  const cert = Buffer.from(secret.data?.["tls.crt"] ?? "", "base64").toString();
  assert.ok(isIssuedBy(cert, await fs.readFile(siteCaFile, "utf8")), "signed by the site CA");

  await ok(["-n", "west", "system", "stop"], { home });
  const stopped = await skupper(["-n", "west", "link", "generate"], { home });
  assert.equal(stopped.code, 2, "a site that has not set up link access: a validation failure");
  assert.match(stopped.stderr, /has not set up link access yet; check "skupper -n west site status" \(is its site process running\?\)/);
  await ok(["-n", "west", "system", "start"], { home });
});

test("link generate --generate-credential=false prints only a Link naming the Secret of --tls-credentials, which links with a Secret the user already has", async () => {
  const refused = await skupper(["-n", "west", "link", "generate", "--generate-credential=false"], { home });
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /the TLS secret name was not specified/);

  // One credential, made once, shared by a second Link generated without one.
  const first = await ok(["-n", "west", "link", "generate", "--name", "first", "--tls-credentials", "shared"], { home });
  const second = await ok(["-n", "west", "link", "generate", "--name", "second", "--tls-credentials", "shared", "--generate-credential=false"], { home });
  const parsed = parseDocuments(second, "link generate");
  assert.deepEqual(parsed.problems, []);
  assert.deepEqual(parsed.resources.map((r) => r.kind), ["Link"], "no Secret, no certificate handed out");
  const link = parsed.resources[0];
  assert.ok(link?.kind === "Link");
  assert.equal(link.spec.tlsCredentials, "shared");

  await ok(["-n", "east", "site", "create", "east"], { home });
  for (const [name, text] of [["first", first], ["second", second]] as const) {
    const file = sandbox.file(`generated-${name}.yaml`);
    await fs.writeFile(file, text, { mode: 0o600 });
    await ok(["-n", "east", "apply", "-f", file], { home });
  }
  await eventually("both links to be Ready on east", async () => {
    const rows = parseTable(await ok(["-n", "east", "link", "status"], { home }));
    return ["first", "second"].every((name) => rows.find((r) => r.NAME === name)?.STATUS === "Ready");
  });
  await ok(["-n", "east", "site", "delete"], { home });
});

test("revoke-access on a stopped site starts it for the request, replaces the CA, and stops it again", async () => {
  const before = await fs.readFile(siteCaFile, "utf8");
  await ok(["-n", "west", "system", "stop"], { home });
  const out = await ok(["-n", "west", "revoke-access"], { home });
  assert.match(out, /Access to site "west" has been revoked/);
  assert.notEqual(await fs.readFile(siteCaFile, "utf8"), before, "the site CA was replaced");
  assert.equal(await sitePid(home, "west"), undefined, "the site process is stopped again");
});
