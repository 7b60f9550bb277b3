/**
 * Seed 002 ("Using Skupper tokens", v1 commands) as written, on three sites on loopback: west and
 * east accept links, north does not. A claim token made with `--expiry 30m0s --uses 2 -t claim`
 * links north twice and is refused the third time; a cert token links west to east as `link1`;
 * `skupper status` counts west's linked sites (2), `revoke-access` cuts the incoming links (1)
 * while `link1` stays connected, and `link delete link1` removes it. Then a v1 claim token Secret
 * is accepted by `link create`, and `link status all` and `--wait` are checked.
 */
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import YAML from "yaml";
import { eventually, ok, parseTable, Sandbox } from "../helpers/cli.js";
import { LoopbackNetwork } from "../helpers/network.js";
import { runSeedLines, seedLinesOk, type SeedUser } from "../helpers/seeds.js";

const WAIT = 60_000;

describe("seed 002: claim and cert tokens, status, revoke-access and link create with v1 syntax", () => {
  let sandbox: Sandbox;
  let network: LoopbackNetwork;
  let user: SeedUser;
  const at = (ns: string, lines: string) => seedLinesOk(lines, ns, user);
  const tryAt = (ns: string, lines: string) => runSeedLines(lines, ns, user);
  const status = async (ns: string) => (await at(ns, "skupper status")).trimEnd();
  const links = async (ns: string) => parseTable(await at(ns, "skupper link status"));

  before(async () => {
    sandbox = await Sandbox.create("seed-002");
    network = new LoopbackNetwork(sandbox, sandbox.home());
    user = { home: network.home, userHome: sandbox.file("user") };
    await fs.mkdir(user.userHome, { recursive: true });
    await Promise.all([
      network.createSite("west", { linkAccess: true }),
      network.createSite("east", { linkAccess: true }),
      network.createSite("north"),
    ]);
  });

  after(() => sandbox.cleanup());

  test("skupper status before any link, and without a site", async () => {
    assert.equal(await status("west"), 'Skupper is enabled for namespace "west" in interior mode. It is not linked to any other sites.');
    const none = await tryAt("nowhere", "skupper status");
    assert.equal(none.code, 2, "no site is a validation failure");
    assert.equal(none.stdout, "");
    assert.match(none.stderr, /^Error: Skupper is not enabled in namespace 'nowhere'\. Create a site with "skupper -n nowhere site create <name>"\.\n$/);
  });

  test("a claim token made with --expiry 30m0s --uses 2 -t claim links twice and is refused the third time", async () => {
    const created = await at("west", "skupper token create $HOME/secret.yaml --expiry 30m0s --uses 2 -t claim");
    assert.match(created, /The token expires after 2 uses or after 30 minutes\./);
    const file = path.join(user.userHome, "secret.yaml");
    assert.equal((await fs.stat(file)).mode & 0o777, 0o600, "the token file is readable by its owner only");

    assert.match(await at("north", "skupper link create $HOME/secret.yaml"), /^Site configured to link to \S+:\d+ \(name=link1\)$/m);
    const second = await at("north", "skupper link create $HOME/secret.yaml --name second --cost 3");
    assert.match(second, /^Site configured to link to \S+:\d+ \(name=second\)$/m);
    assert.match(second, /^Check the status of the link using 'skupper (-n north )?link status'\.$/m);

    const third = await tryAt("east", "skupper link create $HOME/secret.yaml");
    assert.equal(third.code, 1, third.stderr);
    assert.match(third.stderr, /Token "link1" could not be redeemed: the token has already been used as many times as it allows/);
    assert.equal(await at("east", "skupper link status"), "There are no link resources in the namespace\n", "a refused token leaves nothing behind");

    const grants = parseTable(await at("west", "skupper get accessgrants"));
    assert.deepEqual(grants.map((g) => [g["REDEMPTIONS ALLOWED"], g["REDEMPTIONS MADE"]]), [["2", "2"]]);

    const waited = await tryAt("north", "skupper link status --wait 60");
    assert.equal(waited.code, 0, waited.stderr);
    assert.match(waited.stderr, /^Waiting up to 1m0s for 2 links to be ready\.\.\.$/m);
    assert.deepEqual(
      parseTable(waited.stdout).map((r) => [r.NAME, r.STATUS, r.COST, r.MESSAGE]),
      [["link1", "Ready", "1", "OK"], ["second", "Ready", "3", "OK"]],
    );
  });

  test("a cert token made with -t cert links west to east as link1", async () => {
    const created = await at("east", "skupper token create $HOME/secret.yaml -t cert");
    assert.match(created, /skupper link create .*secret\.yaml/);
    assert.equal((await fs.stat(path.join(user.userHome, "secret.yaml"))).mode & 0o777, 0o600);
    assert.match(await at("west", "skupper link create $HOME/secret.yaml"), /\(name=link1\)$/m);

    const one = await tryAt("west", "skupper link status link1 --wait 60");
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stderr, /Waiting up to 1m0s for link "link1" to be ready\.\.\./);
    assert.equal(one.stdout, "Name\t: link1\nStatus\t: Ready\nCost\t: 1\nMessage\t: OK\n");

    // "many links to the service network from different sites": a second site uses the same file.
    await network.createSite("south");
    assert.match(await at("south", "skupper link create $HOME/secret.yaml"), /\(name=link1\)$/m);
    const other = await tryAt("south", "skupper link status link1 --wait 60");
    assert.equal(other.code, 0, other.stderr);
    assert.match(other.stdout, /^Status\t: Ready$/m);
    await at("south", "skupper link delete link1");
  });

  test("skupper status counts linked sites; revoke-access cuts the incoming links and keeps link1", async () => {
    // north has two links to west: one other site. east: link1, outgoing.
    await eventually("west to be linked to 2 other sites", async () =>
      (await status("west")) === 'Skupper is enabled for namespace "west" in interior mode. It is linked to 2 other sites.',
    WAIT);
    assert.equal(await status("north"), 'Skupper is enabled for namespace "north" in interior mode. It is linked to 1 other site.');
    await eventually("east to see west's link", async () => (await status("east")).endsWith("It is linked to 1 other site."), WAIT);
    assert.deepEqual((await links("west")).map((r) => [r.NAME, r.STATUS]), [["link1", "Ready"]]);

    await at("west", "skupper revoke-access");
    await eventually("west to be linked to 1 other site", async () =>
      (await status("west")) === 'Skupper is enabled for namespace "west" in interior mode. It is linked to 1 other site.',
    WAIT);
    assert.deepEqual((await links("west")).map((r) => [r.NAME, r.STATUS, r.MESSAGE]), [["link1", "Ready", "OK"]], "the outgoing link is still connected");

    // north's links were incoming at west: they are down for good, and --wait says so in time.
    await eventually("north's links to be down", async () => (await links("north")).every((r) => r.STATUS !== "Ready"), WAIT);
    const start = Date.now();
    const timedOut = await tryAt("north", "skupper link status --wait 2");
    assert.equal(timedOut.code, 1);
    assert.match(timedOut.stderr, /Error: 2 of 2 links are not ready after 2s: link1 is (Error|Pending) \(.+\); second is/);
    assert.ok(Date.now() - start < 15_000, "the wait is bounded by --wait");
    assert.equal(timedOut.stdout, "", "nothing is printed as if the links were ready");
  });

  test("link delete link1 leaves west linked to no other site", async () => {
    assert.match(await at("west", "skupper link delete link1"), /Link "link1" is deleted\./);
    await eventually("west to be linked to no other site", async () => (await status("west")).endsWith("It is not linked to any other sites."), WAIT);
  });

  test("link create accepts a v1 claim token Secret; link status all and --wait show it Ready", async () => {
    const grant = "apiVersion: skupper.io/v2alpha1\nkind: AccessGrant\nmetadata:\n  name: grant-v1\nspec:\n  redemptionsAllowed: 1\n";
    await fs.writeFile(path.join(user.userHome, "grant.yaml"), grant);
    await at("west", "skupper apply -f grant.yaml");
    const field = async (name: string) => {
      const out = await eventually(`grant-v1's ${name}`, async () => {
        const value = await at("west", `skupper get accessgrant grant-v1 -o template --template '{{ .status.${name} }}'`);
        return value && value !== "<no value>" ? value : undefined;
      }, WAIT);
      return out;
    };
    const [url, code, ca] = [await field("url"), await field("code"), await field("ca")];
    // What a v1 site wrote for `skupper token create <file>` (a claim token).
    const claim = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: {
        name: "8d5c5f38-3a9f-11ef-9454-0242ac120002",
        labels: { "skupper.io/type": "token-claim" },
        annotations: {
          "skupper.io/claim-expiration": new Date(Date.now() + 15 * 60_000).toISOString().replace(/\.\d+Z$/, "Z"),
          "skupper.io/generated-by": "0c4bb6d2-3aa0-11ef-9454-0242ac120002",
          "skupper.io/site-version": "1.9.6",
          "skupper.io/url": url,
        },
      },
      data: { "ca.crt": Buffer.from(ca).toString("base64"), password: Buffer.from(code).toString("base64") },
    };
    await fs.writeFile(path.join(user.userHome, "v1-claim.yaml"), YAML.stringify(claim), { mode: 0o600 });

    assert.match(await at("east", "skupper link create $HOME/v1-claim.yaml"), /\(name=link1\)$/m);
    const all = await tryAt("east", "skupper link status all --wait 30s");
    assert.equal(all.code, 0, all.stderr);
    assert.deepEqual(parseTable(all.stdout).map((r) => [r.NAME, r.STATUS]), [["link1", "Ready"]]);
    assert.equal(await at("east", "skupper link status all"), await at("east", "skupper link status"), "all is every link");
    assert.match(await at("east", "skupper link status link1 --wait 30"), /^Status\t: Ready$/m);
    await eventually("west to see east", async () => (await status("west")).endsWith("It is linked to 1 other site."), WAIT);
    const grants = parseTable(await at("west", "skupper get accessgrants"));
    assert.equal(grants.find((g) => g.NAME === "grant-v1")?.["REDEMPTIONS MADE"], "1");
  });

  test("link create refuses, naming the file, what is not a token; and a token of this very site", async () => {
    const write = (name: string, text: string) => fs.writeFile(path.join(user.userHome, name), text);
    await write("listener.yaml", "apiVersion: skupper.io/v2alpha1\nkind: Listener\nmetadata:\n  name: l\nspec:\n  routingKey: l\n  host: localhost\n  port: 8080\n");
    await write(
      "v1-cert.yaml",
      "apiVersion: v1\nkind: Secret\nmetadata:\n  name: c\n  labels:\n    skupper.io/type: connection-token\ndata:\n  tls.crt: eA==\n",
    );
    await write("v1-incomplete.yaml", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: c\n  labels:\n    skupper.io/type: token-claim\n");
    const cases: Array<[string, RegExp]> = [
      ["listener.yaml", /listener\.yaml is not a token: expected an AccessToken .* found Listener/],
      ["v1-cert.yaml", /v1-cert\.yaml is a v1 cert token/],
      ["v1-incomplete.yaml", /v1-incomplete\.yaml: this v1 claim token lacks the annotation skupper\.io\/url, data\.password/],
      ["missing.yaml", /token file does not exist: .*missing\.yaml/],
    ];
    for (const [file, message] of cases) {
      const result = await tryAt("east", `skupper link create ${file}`);
      assert.equal(result.code, 2, `${file}: ${result.stderr}`);
      assert.match(result.stderr, message);
    }
    await at("east", "skupper token create $HOME/own.yaml -t cert");
    const self = await tryAt("east", "skupper link create $HOME/own.yaml");
    assert.equal(self.code, 2);
    assert.match(self.stderr, /was made by this site; a site cannot link to itself/);
    const taken = await tryAt("east", "skupper link create $HOME/v1-claim.yaml --name link1");
    assert.equal(taken.code, 2);
    assert.match(taken.stderr, /A Link named "link1" already exists in namespace "east"; delete it first or choose another name with --name/);
    assert.deepEqual(
      parseTable(await ok(["-n", "east", "link", "status"], { home: network.home })).map((r) => r.NAME),
      ["link1"],
      "nothing was created by the refused files",
    );
  });
});
