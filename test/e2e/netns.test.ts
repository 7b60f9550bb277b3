/**
 * Two hosts as network namespaces, each site with its own SKUPPER_HOME and the default ports.
 * Host B drops all inbound new TCP connections, so the link can only be dialled from B.
 */
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import { after, before, describe, test } from "node:test";
import { eventually, ok, parseTable, Sandbox, sitePids } from "../helpers/cli.js";
import { ECHO_CLIENT, ECHO_SERVER, HostPair, netnsUnavailable, nodeIn, runNodeIn, TCP_PROBE } from "../helpers/netns.js";

const unavailable = await netnsUnavailable();
if (unavailable) console.log(`# skipping network-namespace tests: ${unavailable}`);

describe("two hosts in network namespaces, default ports, connecting host firewalled", { skip: unavailable ? `network namespaces unavailable: ${unavailable}` : false }, () => {
  let sandbox: Sandbox;
  let hosts: HostPair;
  let homeA: string;
  let homeB: string;
  const onA = (args: string[]) => ok(args, { home: homeA, netns: hosts.a });
  const onB = (args: string[]) => ok(args, { home: homeB, netns: hosts.b });
  const linkRows = async (side: "a" | "b", ns: string) => parseTable(await (side === "a" ? onA : onB)(["-n", ns, "link", "status", "-o", "wide"]));

  before(async () => {
    sandbox = await Sandbox.create("netns");
    homeA = sandbox.home("host-a");
    homeB = sandbox.home("host-b");
    hosts = await HostPair.create({ firewallB: true });
  });

  after(async () => {
    await sandbox.cleanup();
    await hosts?.destroy();
  });

  test("the firewall really drops connections into host B", async (t) => {
    const server = await nodeIn(hosts.b, ECHO_SERVER, [hosts.addressB, "7000"]);
    t.after(() => server.child.kill());
    const probe = await runNodeIn(hosts.a, TCP_PROBE, [hosts.addressB, "7000", "1000"]);
    assert.equal(probe.trim(), "timeout");
    const local = await runNodeIn(hosts.b, TCP_PROBE, ["127.0.0.1", "7000", "1000"]);
    assert.equal(local.trim(), "ECONNREFUSED", "loopback inside B is not filtered (nothing listens there)");
  });

  test("seed 000: the CLI procedure links B to A; the link is Ready on both sides", async () => {
    await onA(["-n", "west", "site", "create", "west"]);
    await onB(["-n", "east", "site", "create", "east"]);
    await onA(["-n", "west", "site", "update", "--enable-link-access"]);
    const tokenFile = sandbox.file("west.yaml");
    await onA(["-n", "west", "token", "issue", tokenFile]);
    const token = await fs.readFile(tokenFile, "utf8");
    assert.match(token, new RegExp(`url: https://${hosts.addressA.replace(/\./g, "\\.")}:9090/`), "the token names A's address and the default grant port");
    await onB(["-n", "east", "token", "redeem", tokenFile]);
    const out = await eventually("east's link to be Ready", async () => (await linkRows("b", "east")).find((r) => r.STATUS === "Ready"));
    assert.equal(out["REMOTE SITE"], "west");
    const incoming = await eventually("west's incoming link", async () => (await linkRows("a", "west")).find((r) => r.DIRECTION === "incoming"));
    assert.equal(incoming["REMOTE SITE"], "east");
    assert.equal(incoming.STATUS, "Ready");
  });

  test("services cross the link both ways: the firewalled site's service is consumed from the other", async (t) => {
    const backendB = await nodeIn(hosts.b, ECHO_SERVER, ["127.0.0.1", "7100"]);
    const backendA = await nodeIn(hosts.a, ECHO_SERVER, ["127.0.0.1", "7200"]);
    t.after(() => {
      backendA.child.kill();
      backendB.child.kill();
    });
    await onB(["-n", "east", "connector", "create", "echo-b", "7100"]);
    await onA(["-n", "west", "listener", "create", "echo-b", "8100"]);
    await onA(["-n", "west", "connector", "create", "echo-a", "7200"]);
    await onB(["-n", "east", "listener", "create", "echo-a", "8200"]);
    const fromA = await eventually("A's client to reach B's service", () =>
      runNodeIn(hosts.a, ECHO_CLIENT, ["127.0.0.1", "8100", "hello from A"]).catch(() => undefined),
    );
    assert.equal(fromA, "hello from A");
    const fromB = await eventually("B's client to reach A's service", () =>
      runNodeIn(hosts.b, ECHO_CLIENT, ["127.0.0.1", "8200", "hello from B"]).catch(() => undefined),
    );
    assert.equal(fromB, "hello from B");
  });

  test("seed 001: the YAML procedure links B to A; the token is redeemed and the link Ready", async () => {
    await onA(["-n", "west", "site", "delete", "--all"]);
    await onB(["-n", "east", "site", "delete", "--all"]);
    assert.deepEqual(await sitePids(homeA), []);
    await fs.writeFile(sandbox.file("site-west.yaml"), "apiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata:\n  name: west\n  namespace: west\nspec:\n  linkAccess: default\n");
    await fs.writeFile(
      sandbox.file("grant.yaml"),
      "apiVersion: skupper.io/v2alpha1\nkind: AccessGrant\nmetadata:\n  name: grant-west\nspec:\n  redemptionsAllowed: 2 # default 1\n  expirationWindow: 25m # default 15m\n",
    );
    await onA(["-n", "west", "apply", "-f", sandbox.file("site-west.yaml")]);
    await onA(["-n", "west", "apply", "-f", sandbox.file("grant.yaml")]);
    await onB(["-n", "east", "site", "create", "east"]);
    const grant = await eventually("the grant to be Ready", async () =>
      parseTable(await onA(["-n", "west", "get", "accessgrants"])).find((r) => r.STATUS === "Ready"),
    );
    assert.equal(grant["REDEMPTIONS ALLOWED"], "2");
    const field = (path: string) => onA(["-n", "west", "get", "accessgrant", "grant-west", "-o", "template", "--template", `{{ .status.${path} }}`]);
    const [url, code, ca] = [await field("url"), await field("code"), await field("ca")];
    assert.match(url, new RegExp(`^https://${hosts.addressA.replace(/\./g, "\\.")}:9090/`));
    const tokenFile = sandbox.file("token.yaml");
    await fs.writeFile(
      tokenFile,
      `apiVersion: skupper.io/v2alpha1\nkind: AccessToken\nmetadata:\n  name: token-to-west\nspec:\n  code: "${code}"\n  ca: |-\n${ca
        .split("\n")
        .map((l) => `    ${l}`)
        .join("\n")}\n  url: "${url}"\n`,
    );
    await onB(["-n", "east", "apply", "-f", tokenFile]);
    const token = await eventually("the token to be redeemed", async () =>
      parseTable(await onB(["-n", "east", "get", "accesstokens"])).find((r) => r.REDEEMED === "true"),
    );
    assert.equal(token.STATUS, "Ready");
    const link = await eventually("the link to be Ready", async () => parseTable(await onB(["-n", "east", "get", "link"])).find((r) => r.STATUS === "Ready"));
    assert.deepEqual(link, { NAME: "token-to-west", STATUS: "Ready", "REMOTE SITE": "west", MESSAGE: "OK" });
    await eventually("west to list the incoming link", async () =>
      (await linkRows("a", "west")).find((r) => r.DIRECTION === "incoming" && r.NAME === "token-to-west"),
    );
  });
});
