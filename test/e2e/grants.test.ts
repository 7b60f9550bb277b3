/**
 * Grant rules, seen by the redeeming user: expiry, use count, unknown and wrong-code tokens,
 * link to self, second link to the same site, concurrent redemptions, and restart of the
 * issuing site (counts kept, links come back by themselves).
 */
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import { after, before, test } from "node:test";
import { delay, eventually, freePort, ok, parseTable, Sandbox, sitePid, skupper } from "../helpers/cli.js";

const sandbox = await Sandbox.create("grants");
after(() => sandbox.cleanup());
const home = sandbox.home();
let grantPort = 0;

before(async () => {
  const linkPort = await freePort();
  grantPort = await freePort();
  await ok(["-n", "west", "site", "create", "west", "--enable-link-access", "--link-port", String(linkPort), "--grant-server-port", String(grantPort)], { home });
  await Promise.all(["c1", "c2", "c3"].map((ns) => ok(["-n", ns, "site", "create", ns], { home })));
});

async function issue(file: string, ...flags: string[]): Promise<string> {
  const path = sandbox.file(file);
  await ok(["-n", "west", "token", "issue", path, ...flags], { home });
  return path;
}

async function grantRows(): Promise<Array<Record<string, string>>> {
  return parseTable(await ok(["-n", "west", "get", "accessgrants"], { home }));
}

async function grantOf(tokenFile: string): Promise<Record<string, string>> {
  const name = /name: (\S+)/.exec(await fs.readFile(tokenFile, "utf8"))?.[1];
  const row = (await grantRows()).find((r) => r.NAME === name);
  assert.ok(row, `grant ${name} is listed`);
  return row;
}

/** Redemption must fail with exit code 1 and leave nothing behind on the redeeming site. */
async function redeemFails(namespace: string, tokenFile: string, pattern: RegExp): Promise<void> {
  const before = await ok(["-n", namespace, "get", "links", "-o", "name"], { home });
  const result = await skupper(["-n", namespace, "token", "redeem", tokenFile], { home });
  assert.equal(result.code, 1, `exit code 1, got ${result.code}: ${result.stderr}`);
  assert.match(result.stderr, pattern);
  assert.doesNotMatch(result.stderr, /\n\s+at /, "no stack trace");
  assert.equal(await ok(["-n", namespace, "get", "links", "-o", "name"], { home }), before, "no link was created");
  assert.match(await ok(["-n", namespace, "get", "accesstokens"], { home }), /No AccessToken resources found|^NAME/);
}

test("a token can be redeemed only as often as allowed; the next redemption says it is used up", async () => {
  const token = await issue("one-use.yaml");
  await ok(["-n", "c1", "token", "redeem", token], { home });
  await redeemFails("c2", token, /already been used as many times as it allows/);
  const grant = await grantOf(token);
  assert.equal(grant["REDEMPTIONS MADE"], "1");
  assert.equal(grant.STATUS, "Error");
  assert.match(grant.MESSAGE ?? "", /All 1 redemption\(s\) have been used/);
});

test("an expired token is refused as expired, without using up the grant", async () => {
  await fs.writeFile(
    sandbox.file("short-grant.yaml"),
    "apiVersion: skupper.io/v2alpha1\nkind: AccessGrant\nmetadata:\n  name: short\nspec:\n  expirationWindow: 2s\n",
  );
  await ok(["-n", "west", "apply", "-f", sandbox.file("short-grant.yaml")], { home });
  const token = await eventually("the short grant to be Ready", async () => {
    const json = JSON.parse(await ok(["-n", "west", "get", "accessgrant", "short", "-o", "json"], { home })) as {
      status?: { status?: string; url?: string; code?: string; ca?: string; expirationTime?: string };
    };
    return json.status?.status === "Ready" ? json.status : undefined;
  });
  const file = sandbox.file("expired.yaml");
  await fs.writeFile(file, tokenYaml("short-token", token.url as string, token.code as string, token.ca as string));
  const wait = Date.parse(token.expirationTime as string) - Date.now() + 200;
  if (wait > 0) await delay(wait);
  await redeemFails("c2", file, /the token has expired \(Access token expired at /);
  const grant = (await grantRows()).find((r) => r.NAME === "short");
  assert.equal(grant?.["REDEMPTIONS MADE"], "0");
  assert.match(grant?.MESSAGE ?? "", /^Expired at /);
});

test("a token whose grant was deleted is refused as unknown", async () => {
  const token = await issue("deleted.yaml");
  const grant = await grantOf(token);
  await ok(["-n", "west", "delete", "accessgrant", grant.NAME as string], { home });
  await eventually("the grant to be gone", async () => !(await grantRows()).some((r) => r.NAME === grant.NAME));
  await redeemFails("c2", token, /the issuing site does not know this token \(No such claim\)/);
});

test("a wrong code is refused and does not use up the grant", async () => {
  const token = await issue("wrong-code.yaml");
  const text = await fs.readFile(token, "utf8");
  const tampered = sandbox.file("tampered.yaml");
  await fs.writeFile(tampered, text.replace(/code: (\S+)/, (_m, code: string) => `code: ${code.slice(0, -1)}${code.endsWith("x") ? "y" : "x"}`));
  await redeemFails("c2", tampered, /the issuing site refused the token's code \(Redemption of access token refused\)/);
  assert.equal((await grantOf(token))["REDEMPTIONS MADE"], "0");
  await ok(["-n", "c2", "token", "redeem", token], { home });
  assert.equal((await grantOf(token))["REDEMPTIONS MADE"], "1");
});

test("a site cannot redeem its own token", async () => {
  const token = await issue("self.yaml");
  const result = await skupper(["-n", "west", "token", "redeem", token], { home });
  assert.equal(result.code, 1);
  assert.match(result.stderr, /This token was issued by this site \("west"\); a site cannot link to itself/);
  assert.equal((await grantOf(token))["REDEMPTIONS MADE"], "0");
});

test("a second link to an already linked site is refused, naming the existing link", async () => {
  const first = parseTable(await ok(["-n", "c1", "link", "status"], { home })).find((r) => r.DIRECTION === "outgoing");
  assert.ok(first, "c1 has a link to west from the first test");
  const token = await issue("second.yaml");
  await redeemFails("c1", token, new RegExp(`already linked to site "west" \\(link "${first.NAME}"\\)`));
  assert.equal((await grantOf(token))["REDEMPTIONS MADE"], "0");
});

test("ten sites redeeming a three-use token at once make exactly three links", async () => {
  const sites = Array.from({ length: 10 }, (_, i) => `p${i + 1}`);
  await Promise.all(sites.map((ns) => ok(["-n", ns, "site", "create", ns], { home })));
  const token = await issue("three-uses.yaml", "--redemptions-allowed", "3");
  const results = await Promise.all(sites.map((ns) => skupper(["-n", ns, "token", "redeem", token], { home })));
  const succeeded = results.filter((r) => r.code === 0);
  const refused = results.filter((r) => r.code === 1 && /already been used as many times as it allows/.test(r.stderr));
  assert.equal(succeeded.length, 3, results.map((r) => r.stderr).join("\n"));
  assert.equal(refused.length, 7, results.map((r) => r.stderr).join("\n"));
  assert.equal((await grantOf(token))["REDEMPTIONS MADE"], "3");
  const name = /name: (\S+)/.exec(await fs.readFile(token, "utf8"))?.[1];
  const incoming = await eventually("three incoming links on west", async () => {
    const rows = parseTable(await ok(["-n", "west", "link", "status"], { home })).filter((r) => r.DIRECTION === "incoming" && r.NAME === name);
    return rows.length === 3 ? rows : undefined;
  });
  assert.equal(new Set(incoming.map((r) => r["REMOTE SITE"])).size, 3);
  await Promise.all(sites.map((ns) => ok(["-n", ns, "site", "delete"], { home })));
});

test("after kill -9 and system start, grants keep their counts and links come back by themselves", async () => {
  const token = await issue("restart.yaml", "--redemptions-allowed", "2");
  await ok(["-n", "c3", "token", "redeem", token], { home });
  await eventually("c3's link to be Ready", async () => parseTable(await ok(["-n", "c3", "link", "status"], { home })).find((r) => r.STATUS === "Ready"));
  const before = await grantRows();

  const pid = await sitePid(home, "west");
  assert.ok(pid);
  process.kill(pid, "SIGKILL");
  await eventually("c3 to notice the link is down", async () =>
    parseTable(await ok(["-n", "c3", "link", "status"], { home })).find((r) => r.STATUS !== "Ready"),
  );
  const stopped = await skupper(["-n", "west", "token", "issue", sandbox.file("nope.yaml")], { home });
  assert.equal(stopped.code, 1);
  assert.match(stopped.stderr, /The site process of namespace "west" is not running\. Start it with "skupper -n west system start"/);

  await ok(["-n", "west", "system", "start"], { home });
  const after = await grantRows();
  assert.deepEqual(
    after.map((r) => [r.NAME, r["REDEMPTIONS MADE"]]),
    before.map((r) => [r.NAME, r["REDEMPTIONS MADE"]]),
    "redemption counts survive the restart",
  );
  for (const ns of ["c1", "c2", "c3"]) {
    await eventually(`${ns}'s link to come back`, async () =>
      parseTable(await ok(["-n", ns, "link", "status"], { home })).every((r) => r.STATUS === "Ready") || undefined,
    30_000);
  }
  // The restarted grant server still honours the remaining use of the two-use token.
  await ok(["-n", "c2", "site", "delete", "--all"], { home });
  await ok(["-n", "c2", "site", "create", "c2"], { home });
  await ok(["-n", "c2", "token", "redeem", token], { home });
  assert.equal((await grantOf(token))["REDEMPTIONS MADE"], "2");
});

test("a redemption while the grant server is down keeps trying and succeeds once it is back", async () => {
  const token = await issue("while-down.yaml");
  await ok(["-n", "west", "system", "stop"], { home });
  await ok(["-n", "c4", "site", "create", "c4"], { home });
  const redeem = skupper(["-n", "c4", "token", "redeem", token, "--timeout", "60s"], { home });
  const waiting = await eventually("the token to wait, saying why", async () =>
    parseTable(await ok(["-n", "c4", "get", "accesstokens"], { home })).find((r) => /retrying/.test(r.MESSAGE ?? "")),
  );
  assert.equal(waiting.STATUS, "Pending");
  assert.match(waiting.MESSAGE ?? "", /refused|not reachable|cannot connect/i);
  await ok(["-n", "west", "system", "start"], { home });
  const result = await redeem;
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /has been redeemed/);
  await eventually("c4's link to be Ready", async () => parseTable(await ok(["-n", "c4", "link", "status"], { home })).find((r) => r.STATUS === "Ready"));
});

function tokenYaml(name: string, url: string, code: string, ca: string): string {
  return [
    "apiVersion: skupper.io/v2alpha1",
    "kind: AccessToken",
    "metadata:",
    `  name: ${name}`,
    "spec:",
    `  url: ${url}`,
    `  code: ${code}`,
    "  ca: |",
    ...ca.trim().split("\n").map((l) => `    ${l}`),
    "",
  ].join("\n");
}
