/**
 * The CLI as the original behaves, point by point (issue 11): exit code 2 for every validation
 * failure and 1 for failures at run time; the global flags and no more (no `-v`); the words of
 * updates and waits; timestamps to the second; `-o yaml|json` in the resource's namespace.
 */
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import { after, before, describe, test } from "node:test";
import YAML from "yaml";
import { freePort, ok, Sandbox, skupper } from "../helpers/cli.js";
import { LoopbackNetwork } from "../helpers/network.js";

const sandbox = await Sandbox.create("cli-compat");
const home = sandbox.home();
const network = new LoopbackNetwork(sandbox, home);
const run = (ns: string, args: string[]) => skupper(["-n", ns, ...args], { home });
after(() => sandbox.cleanup());

before(async () => {
  await network.createSite("west", { linkAccess: true });
  await network.createSite("east");
});

describe("exit codes: 2 for a validation failure, 1 for a failure at run time", () => {
  const cases: Array<{ kind: string; ns: string; args: string[]; code: 1 | 2; stderr: RegExp }> = [
    { kind: "invalid input", ns: "west", args: ["listener", "create", "web", "not-a-port"], code: 2, stderr: /listener port is not valid/ },
    { kind: "invalid option value", ns: "west", args: ["site", "status", "-o", "xml"], code: 2, stderr: /value xml not allowed/ },
    { kind: "already exists", ns: "west", args: ["site", "create", "other"], code: 2, stderr: /There is already a site created for this namespace/ },
    { kind: "not found", ns: "west", args: ["listener", "delete", "nothing-here"], code: 2, stderr: /Listener "nothing-here" does not exist/ },
    { kind: "not found (update)", ns: "west", args: ["connector", "update", "nothing-here", "--port", "80"], code: 2, stderr: /does not exist/ },
    { kind: "no site", ns: "nosite", args: ["token", "issue", sandbox.file("t.yaml")], code: 2, stderr: /There is no site in namespace "nosite"/ },
    { kind: "link access not enabled", ns: "east", args: ["token", "issue", sandbox.file("t.yaml")], code: 2, stderr: /Link access at this site is not currently enabled/ },
    { kind: "unknown platform", ns: "west", args: ["--platform", "vms", "site", "status"], code: 2, stderr: /platform "vms" not supported/ },
    { kind: "usage mistake", ns: "west", args: ["site", "create"], code: 2, stderr: /missing required argument/ },
  ];
  for (const c of cases) {
    test(`${c.kind}: exit code ${c.code}`, async () => {
      const result = await run(c.ns, c.args);
      assert.equal(result.code, c.code, `${c.args.join(" ")}: ${result.stdout}${result.stderr}`);
      assert.match(result.stderr, c.stderr);
      assert.doesNotMatch(result.stderr, /\n\s+at /, "no stack trace");
    });
  }

  test("a timeout is a failure at run time: exit code 1", async () => {
    // A listener without a connector is never Ready.
    await ok(["-n", "west", "listener", "create", "late", String(await freePort()), "--wait", "none"], { home });
    const result = await run("west", ["listener", "update", "late", "--wait", "ready", "--timeout", "10s"]);
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /Listener "late" is not yet ready/);
  });

  test("a site process that is not running is the original's \"no active site\": exit code 2", async () => {
    await network.createSite("stopped", { linkAccess: true });
    await ok(["-n", "stopped", "system", "stop"], { home });
    const result = await run("stopped", ["token", "issue", sandbox.file("stopped.yaml")]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /The site process of namespace "stopped" is not running/);
  });
});

describe("global flags", () => {
  test("there is no root -v flag: link status -v is v1's verbose view (-o wide), not the version", async () => {
    const version = (await ok(["version"], { home })).trim();
    const result = await run("west", ["link", "status", "-v"]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, (await run("west", ["link", "status", "-o", "wide"])).stdout);
    assert.notEqual(result.stdout.trim(), version);
    assert.doesNotMatch(result.stdout, new RegExp(`^${version.replace(/\./g, "\\.")}\\s*$`));
    const root = await skupper(["-v"], { home });
    assert.equal(root.code, 2, "the root has no -v");
    assert.doesNotMatch(root.stdout, new RegExp(version.replace(/\./g, "\\.")));
  });

  test("the version command prints the version; --version, at the root only, does too", async () => {
    const version = (await ok(["version"], { home })).trim();
    assert.match(version, /^\d+\.\d+\.\d+/);
    assert.equal((await ok(["--version"], { home })).trim(), version);
  });

  test("-n and -p are read before and after the subcommand; the value nearest to the command wins", async () => {
    assert.match(await ok(["-n", "west", "site", "status"], { home }), /^west\s/m);
    assert.match(await ok(["site", "status", "-n", "west"], { home }), /^west\s/m);
    assert.match(await ok(["site", "-n", "west", "status"], { home }), /^west\s/m);
    assert.match(await ok(["-n", "east", "site", "status", "-n", "west", "-p", "linux"], { home }), /^west\s/m);
    const env = await skupper(["site", "status", "-n", "west"], { home, env: { SKUPPER_NAMESPACE: "east" } });
    assert.match(env.stdout, /^west\s/m, "a flag wins over SKUPPER_NAMESPACE");
  });

  test("token create -p is v1's password, not the platform; --platform still works there", async () => {
    const file = sandbox.file("claim.yaml");
    const result = await run("west", ["token", "create", file, "-p", "kubernetes", "--platform", "linux"]);
    assert.equal(result.code, 0, result.stderr);
    const token = YAML.parse(await fs.readFile(file, "utf8")) as { spec: { code: string } };
    assert.equal(token.spec.code, "kubernetes", "the token carries the password as its code");
    await ok(["-n", "east", "token", "redeem", file], { home });
    const cert = await run("west", ["token", "create", sandbox.file("cert.yaml"), "-t", "cert", "-p", "x"]);
    assert.equal(cert.code, 2);
    assert.match(cert.stderr, /--password is for claim tokens only/);
  });
});

describe("wording", () => {
  test("site update prints one line: Site \"x\" is updated.", async () => {
    const out = await ok(["-n", "east", "site", "update", "east"], { home });
    assert.deepEqual(lines(out), ["Waiting for update to complete...", 'Site "east" is updated.']);
    assert.deepEqual(lines(await ok(["-n", "east", "site", "update", "--wait", "none"], { home })), ['Site "east" is updated.']);
  });

  test("listener and connector: create, update and delete say what they wait for and end as the original", async () => {
    for (const [noun, kind] of [["listener", "Listener"], ["connector", "Connector"]] as const) {
      const create = await ok(["-n", "west", noun, "create", `w-${noun}`, String(await freePort())], { home });
      assert.deepEqual(lines(create), ["Waiting for create to complete...", `${kind} "w-${noun}" is configured.`]);
      const update = await ok(["-n", "west", noun, "update", `w-${noun}`, "--routing-key", "other"], { home });
      assert.deepEqual(lines(update), ["Waiting for update to complete...", `${kind} "w-${noun}" is updated.`]);
      const none = await ok(["-n", "west", noun, "update", `w-${noun}`, "--routing-key", "again", "--wait", "none"], { home });
      assert.deepEqual(lines(none), [`${kind} "w-${noun}" is updated.`]);
      const removed = await ok(["-n", "west", noun, "delete", `w-${noun}`], { home });
      assert.deepEqual(lines(removed), ["Waiting for deletion to complete...", `${kind} "w-${noun}" deleted.`]);
    }
  });

  test("-o yaml and -o json keep metadata.namespace; timestamps are printed to the second", async () => {
    const site = YAML.parse(await ok(["-n", "west", "site", "status", "-o", "yaml"], { home })) as Record<string, { namespace?: string; creationTimestamp?: string }>;
    assert.equal(site.metadata?.namespace, "west");
    const json = JSON.parse(await ok(["-n", "west", "get", "site", "west", "-o", "json"], { home })) as { metadata: { name: string; namespace: string } };
    assert.equal(json.metadata.namespace, "west");
    assert.deepEqual(Object.keys(json.metadata).slice(0, 2), ["name", "namespace"], "the namespace follows the name, as kubectl shows it");
    await ok(["-n", "west", "listener", "create", "ns-check", String(await freePort()), "--wait", "none"], { home });
    const list = YAML.parse(await ok(["-n", "west", "listener", "status", "-o", "yaml"], { home })) as { items: Array<{ metadata: { namespace: string } }> };
    assert.ok(list.items.length > 0 && list.items.every((i) => i.metadata.namespace === "west"));

    const everything = [
      await ok(["-n", "west", "site", "status", "-o", "yaml"], { home }),
      await ok(["-n", "west", "get", "accessgrants", "-o", "json"], { home }),
      await ok(["-n", "west", "get", "accessgrants"], { home }),
    ].join("\n");
    assert.match(everything, /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/, "there are timestamps");
    assert.doesNotMatch(everything, /T\d\d:\d\d:\d\d\.\d+/, "none with fractions of a second");
  });
});

function lines(text: string): string[] {
  return text.split("\n").filter((line) => line.trim() !== "" && !line.startsWith("Note:"));
}
