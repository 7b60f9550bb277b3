/**
 * The seed procedures on plain loopback: two sites on one host, explicit ports.
 * seed 000 (CLI: site update --enable-link-access, token issue, token redeem, link status) and
 * seed 001 (YAML: AccessGrant, status fields read with templates, AccessToken built from them),
 * each on its own and both between the same two sites (two links, as in the original).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promises as fs } from "node:fs";
import path from "node:path";
import { after, test } from "node:test";
import { eventually, freePort, ok, parseTable, ROOT, Sandbox, skupper } from "../helpers/cli.js";
import { exchange, identityBackend } from "../helpers/network.js";
import { seed001TokenScript } from "../helpers/seeds.js";

const sandbox = await Sandbox.create("linking");
after(() => sandbox.cleanup());

async function linkRows(home: string, namespace: string) {
  return parseTable(await ok(["-n", namespace, "link", "status", "-o", "wide"], { home }));
}

test("seed 000: a token issued on one site and redeemed on another gives a Ready link seen from both sides", async (t) => {
  const home = sandbox.home();
  const [linkPort, grantPort] = [await freePort(), await freePort()];

  let start = Date.now();
  await ok(["-n", "west", "site", "create", "west", "--link-port", String(linkPort), "--grant-server-port", String(grantPort)], { home });
  t.diagnostic(`site create → Ready: ${Date.now() - start} ms`);
  await ok(["-n", "east", "site", "create", "east"], { home });

  // The seed's procedure, step by step.
  const update = await ok(["-n", "west", "site", "update", "--enable-link-access"], { home });
  assert.match(update, /Site "west" is updated/);
  const tokenFile = sandbox.file("west.yaml");
  start = Date.now();
  const issued = await ok(["-n", "west", "token", "issue", tokenFile], { home });
  t.diagnostic(`token issue: ${Date.now() - start} ms`);
  assert.match(issued, /Access grant "west-[a-z0-9]{5}" is ready\./);
  assert.match(issued, new RegExp(`Token file ${tokenFile} created\\.`));
  assert.match(issued, /skupper token redeem/);
  assert.match(issued, /The token expires after 1 use or after 15 minutes\./);
  const stat = await fs.stat(tokenFile);
  assert.equal(stat.mode & 0o777, 0o600, "the token file is readable by its owner only");
  const token = await fs.readFile(tokenFile, "utf8");
  assert.match(token, /kind: AccessToken/);
  assert.match(token, new RegExp(`url: https://[^/]+:${grantPort}/[0-9a-f-]{36}`));

  start = Date.now();
  const redeemed = await ok(["-n", "east", "token", "redeem", tokenFile], { home });
  assert.match(redeemed, /Token "west-[a-z0-9]{5}" has been redeemed\./);
  const outgoing = await eventually("the link to be Ready on east", async () => {
    const rows = await linkRows(home, "east");
    return rows.find((r) => r.STATUS === "Ready");
  });
  t.diagnostic(`token redeem → link Ready: ${Date.now() - start} ms`);
  assert.equal(outgoing["REMOTE SITE"], "west");
  assert.equal(outgoing.COST, "1");
  assert.equal(outgoing.DIRECTION, "outgoing");
  assert.equal(outgoing.MESSAGE, "OK");

  const incoming = await eventually("the incoming link on west", async () => (await linkRows(home, "west")).find((r) => r.DIRECTION === "incoming"));
  assert.equal(incoming.NAME, outgoing.NAME);
  assert.equal(incoming["REMOTE SITE"], "east");
  assert.equal(incoming.STATUS, "Ready");

  const grants = parseTable(await ok(["-n", "west", "get", "accessgrants"], { home }));
  assert.equal(grants[0]?.["REDEMPTIONS MADE"], "1");
});

test("link status prints the original's layouts: NAME STATUS COST MESSAGE, Key : value for one link, the Links for -o json|yaml; -o wide adds incoming links", async () => {
  const home = sandbox.home("layouts");
  const [linkPort, grantPort] = [await freePort(), await freePort()];
  await ok(["-n", "west", "site", "create", "west", "--enable-link-access", "--link-port", String(linkPort), "--grant-server-port", String(grantPort)], { home });
  await ok(["-n", "east", "site", "create", "east"], { home });
  const tokenFile = sandbox.file("layouts-west.yaml");
  await ok(["-n", "west", "token", "issue", tokenFile, "--cost", "3"], { home });
  await ok(["-n", "east", "token", "redeem", tokenFile], { home });
  const name = (await eventually("the link to be Ready on east", async () => (await linkRows(home, "east")).find((r) => r.STATUS === "Ready"))).NAME as string;

  // The default table has the seed's columns and lists only this site's Link resources.
  const table = await ok(["-n", "east", "link", "status"], { home });
  assert.deepEqual(table.trimEnd().split("\n").map((line) => line.split(/\s+/)), [["NAME", "STATUS", "COST", "MESSAGE"], [name, "Ready", "3", "OK"]]);
  await eventually("west to see the incoming link with -o wide", async () => (await linkRows(home, "west")).find((r) => r.DIRECTION === "incoming"));
  assert.equal(await ok(["-n", "west", "link", "status"], { home }), "There are no link resources in the namespace\n");

  // One link: the original's "Key\t: value" lines; -o wide adds the remote site and the direction.
  assert.equal(await ok(["-n", "east", "link", "status", name], { home }), `Name\t: ${name}\nStatus\t: Ready\nCost\t: 3\nMessage\t: OK\n`);
  const wide = await ok(["-n", "east", "link", "status", name, "-o", "wide"], { home });
  assert.match(wide, /^Remote site\t: west$/m);
  assert.match(wide, /^Direction\t: outgoing$/m);
  const incomingOne = await ok(["-n", "west", "link", "status", name, "-o", "wide"], { home });
  assert.match(incomingOne, /^Remote site\t: east$/m);
  assert.match(incomingOne, /^Direction\t: incoming$/m);
  const notAResource = await skupper(["-n", "west", "link", "status", name], { home });
  assert.equal(notAResource.code, 2);
  assert.match(notAResource.stderr, new RegExp(`no link resource in the namespace with the name "${name}"; it is an incoming link, see .*-o wide`));

  // -o json|yaml: the Link resources with their status, one document per link.
  const json = JSON.parse(await ok(["-n", "east", "link", "status", "-o", "json"], { home })) as { kind: string; metadata: { name: string }; spec: { cost: number }; status: { status: string } };
  assert.deepEqual([json.kind, json.metadata.name, json.spec.cost, json.status.status], ["Link", name, 3, "Ready"]);
  const yaml = await ok(["-n", "east", "link", "status", name, "-o", "yaml"], { home });
  assert.match(yaml, /^kind: Link$/m);
  assert.match(yaml, new RegExp(`^  name: ${name}$`, "m"));
  assert.match(yaml, /^  status: Ready$/m);

  const bad = await skupper(["-n", "east", "link", "status", "-o", "table"], { home });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /value table not allowed\. It should be one of this options: \[json yaml wide\]/);
});

test("seed 001: the YAML procedure (AccessGrant → status → AccessToken file) gives a redeemed token and a Ready link", async () => {
  const home = sandbox.home("yaml");
  const [linkPort, grantPort] = [await freePort(), await freePort()];
  const west = path.join(sandbox.root, "yaml-west");
  const east = path.join(sandbox.root, "yaml-east");
  await fs.mkdir(west, { recursive: true });
  await fs.mkdir(east, { recursive: true });
  await fs.writeFile(
    path.join(west, "site.yaml"),
    `apiVersion: skupper.io/v2alpha1
kind: Site
metadata:
  name: west
  namespace: west
spec:
  linkAccess: default
  settings:
    link-port: "${linkPort}"
    grant-server-port: "${grantPort}"
`,
  );
  await fs.writeFile(
    path.join(west, "accessgrant.yaml"),
    `apiVersion: skupper.io/v2alpha1
kind: AccessGrant
metadata:
  name: grant-west
spec:
  redemptionsAllowed: 2 # default 1
  expirationWindow: 25m # default 15m
`,
  );
  await ok(["-n", "east", "site", "create", "east"], { home });

  // The seed's commands, with `skupper` in place of `kubectl`, run by a shell.
  const script = `
set -e
skupper -n west apply -f site.yaml
skupper -n west apply -f accessgrant.yaml
until skupper -n west get accessgrants | grep -q ' Ready '; do sleep 0.1; done
skupper -n west get accessgrants
${seed001TokenScript("skupper -n west", "../yaml-east/token.yaml")}
cd ../yaml-east
skupper -n east apply -f token.yaml
`;
  const output = await runShell(script, west, home);
  const grantRows = parseTable(output.split("\n").filter((l) => /^(NAME|grant-west)\s/.test(l)).join("\n"));
  assert.deepEqual(
    { ...grantRows[0], EXPIRATION: "" },
    { NAME: "grant-west", "REDEMPTIONS ALLOWED": "2", "REDEMPTIONS MADE": "0", EXPIRATION: "", STATUS: "Ready", MESSAGE: "OK" },
  );

  const tokenRow = await eventually("the AccessToken to be redeemed", async () => {
    const rows = parseTable(await ok(["-n", "east", "get", "accesstokens"], { home }));
    return rows.find((r) => r.REDEEMED === "true");
  });
  assert.equal(tokenRow.NAME, "token-to-west");
  assert.equal(tokenRow.STATUS, "Ready");
  assert.equal(tokenRow.MESSAGE, "OK");
  assert.match(tokenRow.URL ?? "", new RegExp(`^https://.+:${grantPort}/`));

  const linkRow = await eventually("the Link to be Ready", async () => {
    const rows = parseTable(await ok(["-n", "east", "get", "link"], { home }));
    return rows.find((r) => r.STATUS === "Ready");
  });
  assert.deepEqual(linkRow, { NAME: "token-to-west", STATUS: "Ready", "REMOTE SITE": "west", MESSAGE: "OK" });
  const westLinks = await eventually("west to see the incoming link", async () =>
    (await linkRows(home, "west")).find((r) => r.DIRECTION === "incoming" && r["REMOTE SITE"] === "east"),
  );
  assert.equal(westLinks.NAME, "token-to-west");

  const grants = parseTable(await ok(["-n", "west", "get", "accessgrants"], { home }));
  assert.equal(grants[0]?.["REDEMPTIONS MADE"], "1");
});

test("seeds 000 and 001 back to back between the same two sites: both tokens redeemed, two Ready links, a service reached", async () => {
  const home = sandbox.home("both");
  const dir = path.join(sandbox.root, "both");
  await fs.mkdir(dir, { recursive: true });
  await ok(["-n", "west", "site", "create", "west", "--link-port", String(await freePort()), "--grant-server-port", String(await freePort())], { home });
  await ok(["-n", "east", "site", "create", "east"], { home });

  // Seed 000: the CLI procedure.
  await ok(["-n", "west", "site", "update", "--enable-link-access"], { home });
  const tokenFile = path.join(dir, "west.yaml");
  await ok(["-n", "west", "token", "issue", tokenFile], { home });
  await ok(["-n", "east", "token", "redeem", tokenFile], { home });
  const first = await eventually("the first link to be Ready", async () => (await linkRows(home, "east")).find((r) => r.STATUS === "Ready"));

  // Seed 001: the YAML procedure, between the same two sites.
  await fs.writeFile(
    path.join(dir, "accessgrant.yaml"),
    "apiVersion: skupper.io/v2alpha1\nkind: AccessGrant\nmetadata:\n  name: grant-west\nspec:\n  redemptionsAllowed: 2\n  expirationWindow: 25m\n",
  );
  await runShell(
    `
set -e
skupper -n west apply -f accessgrant.yaml
until skupper -n west get accessgrants | grep -q '^grant-west .* Ready '; do sleep 0.1; done
${seed001TokenScript("skupper -n west")}
skupper -n east apply -f token.yaml
`,
    dir,
    home,
  );

  const tokens = await eventually("both AccessTokens on east to be redeemed", async () => {
    const rows = parseTable(await ok(["-n", "east", "get", "accesstokens"], { home }));
    return rows.length === 2 && rows.every((r) => r.REDEEMED === "true") && rows;
  });
  assert.deepEqual(
    tokens.map((r) => [r.NAME, r.STATUS, r.MESSAGE]).sort(),
    [[first.NAME, "Ready", "OK"], ["token-to-west", "Ready", "OK"]].sort(),
  );
  const links = await eventually("two Ready links on east", async () => {
    const rows = (await linkRows(home, "east")).filter((r) => r.STATUS === "Ready");
    return rows.length === 2 && rows;
  });
  assert.deepEqual(
    links.map((r) => [r.NAME, r["REMOTE SITE"], r.DIRECTION]).sort(),
    [[first.NAME, "west", "outgoing"], ["token-to-west", "west", "outgoing"]].sort(),
  );
  await eventually("west to see both incoming links", async () =>
    (await linkRows(home, "west")).filter((r) => r.DIRECTION === "incoming" && r["REMOTE SITE"] === "east").length === 2,
  );

  const backend = await identityBackend("west");
  try {
    await ok(["-n", "west", "connector", "create", "hello", String(backend.port), "--host", "127.0.0.1"], { home });
    const port = await freePort();
    await ok(["-n", "east", "listener", "create", "hello", String(port), "--wait", "ready"], { home });
    assert.equal((await exchange(port, "hi")).toString(), "westhi", "the backend on west greets, then echoes");
  } finally {
    await backend.close();
  }
});

test("the README's entry point bin/skupper runs the CLI", async () => {
  const result = await new Promise<{ code: number; stdout: string }>((resolve) => {
    execFile(path.join(ROOT, "bin", "skupper"), ["version"], (error, stdout) =>
      resolve({ code: error ? 1 : 0, stdout: String(stdout) }),
    );
  });
  assert.equal(result.code, 0);
  const pkg = JSON.parse(await fs.readFile(path.join(ROOT, "package.json"), "utf8")) as { version: string };
  assert.equal(result.stdout.trim(), pkg.version);
  const bad = await skupper(["site", "create"], { home: sandbox.home("usage") });
  assert.equal(bad.code, 2, "a usage mistake exits 2");
  assert.match(bad.stderr, /missing required argument 'name'/);
});

function runShell(script: string, cwd: string, home: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      "bash",
      ["-c", script],
      { cwd, env: { ...process.env, SKUPPER_HOME: home, PATH: `${path.join(ROOT, "bin")}:${process.env.PATH}` }, timeout: 60_000 },
      (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stdout}\n${stderr}`)) : resolve(String(stdout))),
    );
  });
}
