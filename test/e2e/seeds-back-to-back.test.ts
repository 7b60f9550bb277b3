/**
 * Seeds 000, 001 and 004 as written, one after the other, on the same two sites: west issues
 * every token (the CLI's, the YAML procedure's, `token issue`'s examples) and east redeems each.
 * At the end every link is Ready, seen from both sides. The only additions to the seeds are what
 * two sites on one host need (ports of their own) and the seeds' prerequisites (two sites, the
 * directories the token files go to, an access grant named west-1).
 */
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import path from "node:path";
import { after, test } from "node:test";
import { eventually, freePorts, parseTable, Sandbox } from "../helpers/cli.js";
import { seed001TokenScript, seedLinesOk, type SeedUser } from "../helpers/seeds.js";

const WAIT = 60_000;
const sandbox = await Sandbox.create("seeds-b2b");
after(() => sandbox.cleanup());

test("seeds 000, 001 and 004 back to back on one pair of sites: seven tokens redeemed, seven Ready links", async (t) => {
  const user: SeedUser = { home: sandbox.home(), userHome: sandbox.file("user") };
  const west = (lines: string) => seedLinesOk(lines, "west", user);
  const east = (lines: string) => seedLinesOk(lines, "east", user);
  await fs.mkdir(path.join(user.userHome, "build"), { recursive: true });
  await fs.mkdir(path.join(user.userHome, "output"), { recursive: true });
  const [linkPort, grantPort] = (await freePorts(2)) as [number, number];

  // Prerequisites: two sites (on one host, west needs ports of its own).
  await west(`skupper site create west --link-port ${linkPort} --grant-server-port ${grantPort}`);
  await east("skupper site create east");

  // Seed 000: the CLI procedure, with its three ways of issuing a token.
  assert.match(await west("skupper site update --enable-link-access"), /Site "west" is updated\./);
  const redeemed: string[] = [];
  for (const [file, issue, expires] of [
    ["west.yaml", "skupper token issue west.yaml", "1 use or after 15 minutes"],
    ["build/west.yaml", "skupper token issue build/west.yaml --expiration-window 60m", "1 use or after 1 hour"],
    ["output/west.yaml", "skupper token issue output/west.yaml --redemptions-allowed 3", "3 uses or after 15 minutes"],
  ] as const) {
    const issued = await west(issue);
    assert.match(issued, new RegExp(`Token file ${path.join(user.userHome, file).replace(/[.]/g, "\\.")} created\\.`));
    assert.match(issued, new RegExp(`The token expires after ${expires}\\.`));
    const name = /Token "([^"]+)" has been redeemed\./.exec(await east(`skupper token redeem ${file}`))?.[1];
    assert.ok(name, "token redeem names the token");
    redeemed.push(name);
  }
  const first = await eventually("seed 000's links to be Ready (\"you might need to issue the command multiple times\")", async () => {
    const rows = parseTable(await east("skupper link status"));
    return rows.length === 3 && rows.every((r) => r.STATUS === "Ready" && r.COST === "1" && r.MESSAGE === "OK") && rows;
  }, WAIT);
  assert.deepEqual(first.map((r) => r.NAME).sort(), [...redeemed].sort());
  t.diagnostic("seed 000 done");

  // Seed 001: the YAML procedure, with `skupper` where it says `kubectl`; the Site keeps its ports.
  await fs.writeFile(
    path.join(user.userHome, "site.yaml"),
    `apiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata:\n  name: west\n  namespace: west\nspec:\n  linkAccess: default\n  settings:\n    link-port: "${linkPort}"\n    grant-server-port: "${grantPort}"\n`,
  );
  await fs.writeFile(
    path.join(user.userHome, "accessgrant.yaml"),
    "apiVersion: skupper.io/v2alpha1\nkind: AccessGrant\nmetadata:\n  name: grant-west\nspec:\n  redemptionsAllowed: 2 # default 1\n  expirationWindow: 25m # default 15m\n",
  );
  await west("skupper apply -f site.yaml\nskupper apply -f accessgrant.yaml");
  const grant = await eventually("grant-west to be Ready", async () => parseTable(await west("skupper get accessgrants")).find((r) => r.NAME === "grant-west" && r.STATUS === "Ready"), WAIT);
  assert.deepEqual([grant["REDEMPTIONS ALLOWED"], grant["REDEMPTIONS MADE"]], ["2", "0"]);
  await west(seed001TokenScript("skupper"));
  await east("skupper apply -f token.yaml");
  const token = await eventually("token-to-west to be redeemed", async () => parseTable(await east("skupper get accesstokens")).find((r) => r.NAME === "token-to-west" && r.REDEEMED === "true"), WAIT);
  assert.deepEqual([token.STATUS, token.MESSAGE], ["Ready", "OK"]);
  assert.match(token.URL ?? "", new RegExp(`^https://.+:${grantPort}/`));
  const yamlLink = await eventually("the Link token-to-west to be Ready", async () => parseTable(await east("skupper get link")).find((r) => r.NAME === "token-to-west" && r.STATUS === "Ready"), WAIT);
  assert.deepEqual(yamlLink, { NAME: "token-to-west", STATUS: "Ready", "REMOTE SITE": "west", MESSAGE: "OK" });
  t.diagnostic("seed 001 done");

  // Seed 004: `token issue`'s examples, each token redeemed at east before the next overwrites it.
  await fs.writeFile(path.join(user.userHome, "west-1.yaml"), "apiVersion: skupper.io/v2alpha1\nkind: AccessGrant\nmetadata:\n  name: west-1\n");
  await west("skupper apply -f west-1.yaml");
  for (const [issue, expires] of [
    ["skupper token issue ~/token.yaml", "1 use or after 15 minutes"],
    ["skupper token issue ~/token.yaml --expiration-window 24h --redemptions-allowed 3", "3 uses or after 1 day"],
    ["skupper token issue ~/token.yaml --grant west-1", "1 use or after 1[45] minutes( \\d+ seconds)?"],
  ] as const) {
    const issued = await west(issue);
    assert.match(issued, /Access grant "west-[a-z0-9-]+" is ready\./);
    assert.match(issued, new RegExp(`Token file ${path.join(user.userHome, "token.yaml").replace(/[.]/g, "\\.")} created\\.`));
    assert.match(issued, new RegExp(`The token expires after ${expires}\\.`));
    assert.equal((await fs.stat(path.join(user.userHome, "token.yaml"))).mode & 0o777, 0o600);
    const name = /Token "([^"]+)" has been redeemed\./.exec(await east("skupper token redeem ~/token.yaml"))?.[1];
    assert.ok(name);
    redeemed.push(name);
  }
  assert.equal(redeemed.at(-1), "west-1", "the token of an existing grant is named after it");
  t.diagnostic("seed 004 done");

  // Every link Ready, on both sides; the two sites count each other once.
  const expected = [...redeemed, "token-to-west"].sort();
  const rows = await eventually("all seven links to be Ready at east", async () => {
    const all = parseTable(await east("skupper link status -o wide"));
    return all.length === 7 && all.every((r) => r.STATUS === "Ready" && r["REMOTE SITE"] === "west" && r.DIRECTION === "outgoing") && all;
  }, WAIT);
  assert.deepEqual(rows.map((r) => r.NAME).sort(), expected);
  const incoming = await eventually("west to see the seven incoming links", async () => {
    const all = parseTable(await west("skupper link status -o wide")).filter((r) => r.DIRECTION === "incoming" && r["REMOTE SITE"] === "east" && r.STATUS === "Ready");
    return all.length === 7 && all;
  }, WAIT);
  assert.deepEqual(incoming.map((r) => r.NAME).sort(), expected);
  assert.equal((await east("skupper status")).trimEnd(), 'Skupper is enabled for namespace "east" in interior mode. It is linked to 1 other site.');
  assert.equal((await west("skupper status")).trimEnd(), 'Skupper is enabled for namespace "west" in interior mode. It is linked to 1 other site.');
});
