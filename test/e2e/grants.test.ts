/**
 * Grant rules, seen by the redeeming user: expiry, use count, unknown and wrong-code tokens,
 * link to self, a second link to the same site (allowed), concurrent redemptions, and restart of the
 * issuing site (counts kept, links come back by themselves).
 *
 * Every test stands alone (run any one with --test-name-pattern): the redeeming sites are new
 * for each test, and the tests that stop or kill the issuing site have an issuing site of their
 * own. Only `west`, which just issues tokens, is shared.
 */
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import { after, before, test } from "node:test";
import { delay, eventually, freePort, ok, parseTable, Sandbox, sitePid, skupper } from "../helpers/cli.js";

const sandbox = await Sandbox.create("grants");
after(() => sandbox.cleanup());
const home = sandbox.home();
let created = 0;
let files = 0;

/** Creates `count` new sites at once, each in a namespace of its own; resolves with their names. */
async function newSites(prefix: string, count = 1, options: { linkAccess?: boolean } = {}): Promise<string[]> {
  const names = Array.from({ length: count }, () => `${prefix}${++created}`);
  await Promise.all(
    names.map(async (ns) => {
      const args = ["-n", ns, "site", "create", ns];
      if (options.linkAccess) args.push("--enable-link-access", "--link-port", String(await freePort()), "--grant-server-port", String(await freePort()));
      await ok(args, { home });
    }),
  );
  return names;
}

async function newSite(prefix: string, options: { linkAccess?: boolean } = {}): Promise<string> {
  return (await newSites(prefix, 1, options))[0] as string;
}

const WEST = "west";
before(async () => {
  await ok(["-n", WEST, "site", "create", WEST, "--enable-link-access", "--link-port", String(await freePort()), "--grant-server-port", String(await freePort())], { home });
});

async function issue(file: string, ...flags: string[]): Promise<string> {
  return issueOn(WEST, file, ...flags);
}

async function issueOn(site: string, file: string, ...flags: string[]): Promise<string> {
  const path = sandbox.file(`${++files}-${file}`);
  await ok(["-n", site, "token", "issue", path, ...flags], { home });
  return path;
}

async function tokenName(tokenFile: string): Promise<string> {
  const name = /name: (\S+)/.exec(await fs.readFile(tokenFile, "utf8"))?.[1];
  assert.ok(name, `${tokenFile} names its token`);
  return name;
}

async function grantRows(site = WEST): Promise<Array<Record<string, string>>> {
  return parseTable(await ok(["-n", site, "get", "accessgrants"], { home }));
}

async function grantOf(tokenFile: string, site = WEST): Promise<Record<string, string>> {
  const name = await tokenName(tokenFile);
  const row = (await grantRows(site)).find((r) => r.NAME === name);
  assert.ok(row, `grant ${name} is listed`);
  return row;
}

async function linkRows(site: string): Promise<Array<Record<string, string>>> {
  return parseTable(await ok(["-n", site, "link", "status", "-o", "wide"], { home }));
}

/** `kind/name` of every resource of `type` in the namespace, sorted. */
async function names(namespace: string, type: string): Promise<string[]> {
  const out = await ok(["-n", namespace, "get", type, "-o", "name"], { home });
  return out.split("\n").map((l) => l.trim()).filter((l) => l !== "").sort();
}

type Inventory = Record<"links" | "accesstokens" | "secrets", string[]>;
const NOTHING: Inventory = { links: [], accesstokens: [], secrets: [] };

async function inventory(namespace: string): Promise<Inventory> {
  const [links, accesstokens, secrets] = await Promise.all(["links", "accesstokens", "secrets"].map((type) => names(namespace, type)));
  return { links, accesstokens, secrets } as Inventory;
}

/** What one redeemed token leaves on the redeeming site: a Link, an AccessToken and a Secret of its name. */
function redeemed(...tokens: string[]): Inventory {
  return { links: tokens.map((t) => `link/${t}`), accesstokens: tokens.map((t) => `accesstoken/${t}`), secrets: tokens.map((t) => `secret/${t}`) };
}

/**
 * Redemption must fail with exit code 1 and a plain message, and leave nothing behind on the
 * redeeming site: afterwards it holds exactly `holds` (nothing at all for a new site), and no link,
 * access token or secret is named after the refused token.
 */
async function redeemFails(namespace: string, tokenFile: string, pattern: RegExp, holds: Inventory = NOTHING): Promise<void> {
  const token = await tokenName(tokenFile);
  const result = await skupper(["-n", namespace, "token", "redeem", tokenFile], { home });
  assert.equal(result.code, 1, `exit code 1, got ${result.code}: ${result.stderr}`);
  assert.match(result.stderr, pattern);
  assert.doesNotMatch(result.stderr, /\n\s+at /, "no stack trace");
  const after = await inventory(namespace);
  for (const [type, list] of Object.entries(after)) {
    assert.ok(!list.some((n) => n.endsWith(`/${token}`)), `no ${type} is named after the refused token ${token}: ${list.join(", ")}`);
  }
  assert.deepEqual(after, holds, "the refused redemption left nothing behind");
}

async function readyLink(site: string, name: string, timeoutMs?: number): Promise<Record<string, string>> {
  return eventually(`${site}'s link ${name} to be Ready`, async () => (await linkRows(site)).find((r) => r.NAME === name && r.STATUS === "Ready"), timeoutMs);
}

test("a token can be redeemed only as often as allowed; the next redemption says it is used up", async () => {
  const [first, second] = (await newSites("once", 2)) as [string, string];
  const token = await issue("one-use.yaml");
  await ok(["-n", first, "token", "redeem", token], { home });
  await redeemFails(second, token, /already been used as many times as it allows/);
  const grant = await grantOf(token);
  assert.equal(grant["REDEMPTIONS MADE"], "1");
  assert.equal(grant.STATUS, "Error");
  assert.match(grant.MESSAGE ?? "", /All 1 redemption\(s\) have been used/);
});

test("an expired token is refused as expired, without using up the grant", async () => {
  const redeemer = await newSite("late");
  const grantName = `short-${++files}`;
  const grantFile = sandbox.file(`${grantName}.yaml`);
  await fs.writeFile(grantFile, `apiVersion: skupper.io/v2alpha1\nkind: AccessGrant\nmetadata:\n  name: ${grantName}\nspec:\n  expirationWindow: 2s\n`);
  await ok(["-n", WEST, "apply", "-f", grantFile], { home });
  // Under load the 2 s grant may already show Expired when first read; its url, code and CA are
  // what a token needs either way.
  const token = await eventually("the short grant to publish its url, code and CA", async () => {
    const json = JSON.parse(await ok(["-n", WEST, "get", "accessgrant", grantName, "-o", "json"], { home })) as {
      status?: { status?: string; url?: string; code?: string; ca?: string; expirationTime?: string };
    };
    const status = json.status;
    return status?.url && status.code && status.ca && status.expirationTime ? status : undefined;
  });
  const file = sandbox.file(`${grantName}-token.yaml`);
  await fs.writeFile(file, tokenYaml(`${grantName}-token`, token.url as string, token.code as string, token.ca as string));
  // Expiry is the condition under test: it can only be reached by letting the clock pass it.
  const wait = Date.parse(token.expirationTime as string) - Date.now() + 200;
  if (wait > 0) await delay(wait);
  await redeemFails(redeemer, file, /the token has expired \(Access token expired at /);
  const grant = (await grantRows()).find((r) => r.NAME === grantName);
  assert.ok(grant, `grant ${grantName} is still listed`);
  assert.equal(grant["REDEMPTIONS MADE"], "0");
  assert.match(grant.MESSAGE ?? "", /^Expired at /);
});

test("a token whose grant was deleted is refused as unknown", async () => {
  const redeemer = await newSite("orphan");
  const token = await issue("deleted.yaml");
  const grant = await grantOf(token);
  await ok(["-n", WEST, "delete", "accessgrant", grant.NAME as string], { home });
  await eventually("the grant to be gone", async () => !(await grantRows()).some((r) => r.NAME === grant.NAME));
  await redeemFails(redeemer, token, /the issuing site does not know this token \(No such claim\)/);
});

test("a wrong code is refused and does not use up the grant", async () => {
  const redeemer = await newSite("typo");
  const token = await issue("wrong-code.yaml");
  const text = await fs.readFile(token, "utf8");
  const tampered = sandbox.file(`${++files}-tampered.yaml`);
  await fs.writeFile(tampered, text.replace(/code: (\S+)/, (_m, code: string) => `code: ${code.slice(0, -1)}${code.endsWith("x") ? "y" : "x"}`));
  await redeemFails(redeemer, tampered, /the issuing site refused the token's code \(Redemption of access token refused\)/);
  assert.equal((await grantOf(token))["REDEMPTIONS MADE"], "0");
  await ok(["-n", redeemer, "token", "redeem", token], { home });
  assert.equal((await grantOf(token))["REDEMPTIONS MADE"], "1");
  await readyLink(redeemer, await tokenName(token));
});

test("a site cannot redeem its own token", async () => {
  const token = await issue("self.yaml");
  const result = await skupper(["-n", WEST, "token", "redeem", token], { home });
  assert.equal(result.code, 2, "refused before anything is done: a validation failure");
  assert.match(result.stderr, new RegExp(`This token was issued by this site \\("${WEST}"\\); a site cannot link to itself`));
  assert.deepEqual(await inventory(WEST), NOTHING, "no link, token or secret was added to the issuing site");
  assert.equal((await grantOf(token))["REDEMPTIONS MADE"], "0");
});

test("a second token from an already linked site makes a second link, as in the original; both are Ready", async () => {
  const redeemer = await newSite("twice");
  const firstToken = await issue("first.yaml");
  await ok(["-n", redeemer, "token", "redeem", firstToken], { home });
  const first = await readyLink(redeemer, await tokenName(firstToken));
  const token = await issue("second.yaml");
  await ok(["-n", redeemer, "token", "redeem", token], { home });
  const second = await readyLink(redeemer, await tokenName(token));
  assert.equal((await grantOf(token))["REDEMPTIONS MADE"], "1");
  assert.deepEqual([first["REMOTE SITE"], second["REMOTE SITE"]], [WEST, WEST]);
  assert.equal((await linkRows(redeemer)).length, 2, "the first link is kept");
  assert.deepEqual(await inventory(redeemer), redeemed(...[first.NAME as string, second.NAME as string].sort()));
  await eventually("west to see both incoming links", async () => {
    const names = (await linkRows(WEST)).filter((r) => r.DIRECTION === "incoming" && r["REMOTE SITE"] === redeemer).map((r) => r.NAME).sort();
    return JSON.stringify(names) === JSON.stringify([first.NAME, second.NAME].sort());
  });
});

test("ten sites redeeming a three-use token at once make exactly three links", async () => {
  const sites = await newSites("p", 10);
  const token = await issue("three-uses.yaml", "--redemptions-allowed", "3");
  const results = await Promise.all(sites.map((ns) => skupper(["-n", ns, "token", "redeem", token], { home })));
  const succeeded = results.filter((r) => r.code === 0);
  const refused = results.filter((r) => r.code === 1 && /already been used as many times as it allows/.test(r.stderr));
  assert.equal(succeeded.length, 3, results.map((r) => r.stderr).join("\n"));
  assert.equal(refused.length, 7, results.map((r) => r.stderr).join("\n"));
  assert.equal((await grantOf(token))["REDEMPTIONS MADE"], "3");
  const name = await tokenName(token);
  const incoming = await eventually("three incoming links on west", async () => {
    const rows = (await linkRows(WEST)).filter((r) => r.DIRECTION === "incoming" && r.NAME === name);
    return rows.length === 3 ? rows : undefined;
  });
  const winners = sites.filter((_, i) => results[i]?.code === 0).sort();
  assert.deepEqual(incoming.map((r) => r["REMOTE SITE"]).sort(), winners, "the incoming links are from the three sites that succeeded");
  const losers = sites.filter((_, i) => results[i]?.code !== 0);
  const stray = await Promise.all(losers.map((ns) => names(ns, "links")));
  assert.deepEqual(stray.flat(), [], "the seven refused sites have no link");
  // Ten idle sites would only load the machine for the tests that follow.
  for (const ns of sites) {
    const pid = await sitePid(home, ns);
    if (pid) process.kill(pid, "SIGKILL");
  }
});

test("after kill -9 and system start, grants keep their counts and links come back by themselves", async () => {
  const [[issuer], [s1, s2, s3]] = (await Promise.all([newSites("restart", 1, { linkAccess: true }), newSites("back", 3)])) as [[string], [string, string, string]];
  const twoUses = await issueOn(issuer, "restart.yaml", "--redemptions-allowed", "2");
  const oneUse = await issueOn(issuer, "restart-one.yaml");
  await ok(["-n", s1, "token", "redeem", twoUses], { home });
  await ok(["-n", s2, "token", "redeem", oneUse], { home });
  const links = { [s1]: await tokenName(twoUses), [s2]: await tokenName(oneUse) };
  for (const [ns, link] of Object.entries(links)) await readyLink(ns, link);
  const before = (await grantRows(issuer)).map((r) => [r.NAME, r["REDEMPTIONS MADE"]]).sort();
  assert.deepEqual(before, [[links[s1], "1"], [links[s2], "1"]].sort(), "both grants are listed with one redemption each");

  const pid = await sitePid(home, issuer);
  assert.ok(pid);
  process.kill(pid, "SIGKILL");
  for (const [ns, link] of Object.entries(links)) {
    await eventually(`${ns} to notice its link is down`, async () => (await linkRows(ns)).find((r) => r.NAME === link && r.STATUS !== "Ready"));
  }
  const stopped = await skupper(["-n", issuer, "token", "issue", sandbox.file("nope.yaml")], { home });
  assert.equal(stopped.code, 2, "no running site: the original's \"no active site\" validation failure");
  assert.match(stopped.stderr, new RegExp(`The site process of namespace "${issuer}" is not running\\. Start it with "skupper -n ${issuer} system start"`));

  await ok(["-n", issuer, "system", "start"], { home });
  const after = (await grantRows(issuer)).map((r) => [r.NAME, r["REDEMPTIONS MADE"]]).sort();
  assert.deepEqual(after, before, "redemption counts survive the restart");
  for (const [ns, link] of Object.entries(links)) await readyLink(ns, link, 30_000);
  const incoming = await eventually("the restarted site to see both incoming links again", async () => {
    const rows = (await linkRows(issuer)).filter((r) => r.DIRECTION === "incoming" && r.STATUS === "Ready");
    return rows.length === 2 ? rows : undefined;
  }, 30_000);
  assert.deepEqual(incoming.map((r) => r["REMOTE SITE"]).sort(), [s1, s2].sort());

  // The restarted grant server still honours the remaining use of the two-use token.
  await ok(["-n", s3, "token", "redeem", twoUses], { home });
  assert.equal((await grantOf(twoUses, issuer))["REDEMPTIONS MADE"], "2");
  await readyLink(s3, links[s1] as string);
});

test("a redemption while the grant server is down keeps trying and succeeds once it is back", async () => {
  const [[issuer], [redeemer]] = (await Promise.all([newSites("down", 1, { linkAccess: true }), newSites("patient")])) as [[string], [string]];
  const token = await issueOn(issuer, "while-down.yaml");
  await ok(["-n", issuer, "system", "stop"], { home });
  const redeem = skupper(["-n", redeemer, "token", "redeem", token, "--timeout", "60s"], { home });
  const waiting = await eventually("the token to wait, saying why", async () =>
    parseTable(await ok(["-n", redeemer, "get", "accesstokens"], { home })).find((r) => /retrying/.test(r.MESSAGE ?? "")),
  );
  assert.equal(waiting.STATUS, "Pending");
  assert.match(waiting.MESSAGE ?? "", /refused|not reachable|cannot connect/i);
  await ok(["-n", issuer, "system", "start"], { home });
  const result = await redeem;
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /has been redeemed/);
  await readyLink(redeemer, await tokenName(token));
  assert.equal((await grantOf(token, issuer))["REDEMPTIONS MADE"], "1");
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
