/**
 * `skupper apply -f` on a real local site: a file with a valid Listener, an invalid document and
 * a kind we do not handle applies the Listener (which then carries traffic) and names the other
 * two, exit 2; every v2alpha1 kind of the original is accepted and shows why it has no effect;
 * a second Site is stored with a status that says why, and the first keeps running, across a
 * restart of the site process too.
 */
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import { after, before, test } from "node:test";
import YAML from "yaml";
import { eventually, freePort, parseTable, Sandbox, skupper } from "../helpers/cli.js";
import { identityBackend, LoopbackNetwork, roundTrip, connect, type Backend } from "../helpers/network.js";

const sandbox = await Sandbox.create("apply");
const network = new LoopbackNetwork(sandbox, sandbox.home());
const run = (args: string[]) => skupper(["-n", "west", ...args], { home: network.home });
const V = "apiVersion: skupper.io/v2alpha1";
let backend: Backend;
let listenerPort: number;

before(async () => {
  await network.createSite("west");
  backend = await identityBackend("backend-west");
  await network.run("west", ["connector", "create", "web", String(backend.port), "--host", "127.0.0.1"]);
  listenerPort = await freePort();
});

after(async () => {
  await backend?.close();
  await sandbox.cleanup();
});

async function rowOf(type: string, name: string): Promise<Record<string, string> | undefined> {
  const result = await run(["get", type, name]);
  return result.code === 0 ? parseTable(result.stdout)[0] : undefined;
}

/** The listener answers with the backend's name, then echoes. */
async function reachesBackend(): Promise<void> {
  const socket = await connect(listenerPort);
  try {
    // The reply is at least as long as the line: the backend's name, then the start of the echo.
    const line = "ping".padEnd(24, ".");
    const reply = await roundTrip(socket, line);
    assert.ok(reply.startsWith("backend-westping"), `reply: ${reply}`);
  } finally {
    socket.destroy();
  }
}

test("a valid Listener is applied and works; an invalid document and an unknown kind are named; exit 2", async () => {
  const file = sandbox.file("mixed.yaml");
  await fs.writeFile(
    file,
    [
      `${V}\nkind: Listener\nmetadata: {name: web}\nspec: {routingKey: web, host: 127.0.0.1, port: ${listenerPort}}\n`,
      `${V}\nkind: Connector\nmetadata: {name: broken}\nspec: {routingKey: broken, host: 127.0.0.1, port: 8080, colour: blue}\n`,
      `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: backend}\nspec: {replicas: 1}\n`,
    ].join("---\n"),
  );
  const result = await run(["apply", "-f", file]);
  assert.equal(result.code, 2, `exit 2 when a document failed\n${result.stderr}`);
  assert.match(result.stdout, /^Listener "web" created\.$/m);
  assert.match(result.stderr, /mixed\.yaml \(document 2\): Connector "broken": spec: unknown field "colour"/);
  assert.match(result.stderr, /mixed\.yaml \(document 3\): Deployment "backend": kind "Deployment" \(apps\/v1\) is not supported/);
  assert.match(result.stderr, /2 of 3 resources in .*mixed\.yaml were not applied/);
  assert.doesNotMatch(result.stderr, /\n\s+at /, "no stack trace");
  assert.equal(await rowOf("connector", "broken"), undefined, "the invalid document is not stored");

  await eventually("the Listener to be Ready", async () => (await rowOf("listener", "web"))?.STATUS === "Ready");
  await reachesBackend();
});

test("a file that is not YAML applies nothing, even its valid documents", async () => {
  const file = sandbox.file("broken.yaml");
  await fs.writeFile(file, `${V}\nkind: Listener\nmetadata: {name: never}\nspec: {routingKey: x, host: 127.0.0.1, port: 1}\n---\nkey: [unclosed\n`);
  const result = await run(["apply", "-f", file]);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /broken\.yaml \(document 2\): not valid YAML/);
  assert.equal(result.stdout, "");
  assert.equal(await rowOf("listener", "never"), undefined);
});

test("every new kind is accepted; skupper get shows its status, and why the inert ones have no effect", async () => {
  const file = sandbox.file("kinds.yaml");
  await fs.writeFile(
    file,
    [
      `${V}\nkind: MultiKeyListener\nmetadata: {name: mkl}\nspec:\n  host: 127.0.0.1\n  port: 9999\n  strategy: {priority: {routingKeys: [a, b]}}\n`,
      `${V}\nkind: SecuredAccess\nmetadata: {name: sa}\nspec:\n  selector: {app: x}\n  ports: [{name: https, port: 8443}]\n`,
      `${V}\nkind: Certificate\nmetadata: {name: cert}\nspec: {ca: skupper-site-ca, subject: cert, server: true}\n`,
      `${V}\nkind: AttachedConnector\nmetadata: {name: db}\nspec: {siteNamespace: west, selector: app=db, port: 5432}\n`,
      `${V}\nkind: AttachedConnectorBinding\nmetadata: {name: db}\nspec: {connectorNamespace: workloads, routingKey: db}\n`,
    ].join("---\n"),
  );
  const applied = await run(["apply", "-f", file]);
  assert.equal(applied.code, 0, applied.stderr);
  for (const kind of ["MultiKeyListener", "SecuredAccess", "Certificate", "AttachedConnector", "AttachedConnectorBinding"]) {
    assert.match(applied.stdout, new RegExp(`^${kind} "\\S+" created\\.$`, "m"));
  }
  const expected: Array<[string, string, string, RegExp]> = [
    // Acts: no connector for its keys yet; the site CA signs the certificate.
    ["multikeylisteners", "mkl", "Pending", /No matching connectors/],
    ["certificate", "cert", "Ready", /OK/],
    ["securedaccess", "sa", "Error", /SecuredAccess .* has no effect on a local site/],
    ["acnr", "db", "Error", /AttachedConnector is for Kubernetes sites whose workloads run in another namespace; it has no effect on a local site/],
    ["acnrb", "db", "Error", /AttachedConnectorBinding is for Kubernetes sites whose workloads run in another namespace/],
  ];
  for (const [type, name, status, message] of expected) {
    const row = await eventually(`${type} ${name} to be ${status}`, async () => {
      const found = await rowOf(type, name);
      return found?.STATUS === status ? found : undefined;
    });
    assert.match(row.MESSAGE ?? "", message, `${type} ${name}`);
  }
  const yaml = await run(["get", "attachedconnectorbinding", "db", "-o", "yaml"]);
  const conditions = (YAML.parse(yaml.stdout) as { status: { conditions: Array<{ type: string; status: string; reason: string }> } }).status.conditions;
  assert.deepEqual(conditions.map((c) => `${c.type}=${c.status}/${c.reason}`), ["Configured=False/Error", "Ready=False/Error"]);
  const deleted = await run(["delete", "multikeylistener", "mkl"]);
  assert.equal(deleted.code, 0, deleted.stderr);
  assert.match(deleted.stdout, /MultiKeyListener "mkl" deleted\./);
});

test("a second Site is stored with a status that says why; the first keeps running, after a restart too", async () => {
  const file = sandbox.file("alpha.yaml");
  await fs.writeFile(file, `${V}\nkind: Site\nmetadata: {name: alpha}\n`);
  const applied = await run(["apply", "-f", file]);
  assert.equal(applied.code, 0, applied.stderr);
  assert.match(applied.stdout, /^Site "alpha" created\.$/m);
  assert.match(applied.stdout, /Note: namespace "west" already has Site "west"; only one site per namespace runs, so Site "alpha" has no effect/);

  const alpha = await eventually("Site alpha to show why it does not run", async () => {
    const row = await rowOf("site", "alpha");
    return row?.STATUS === "Error" ? row : undefined;
  });
  assert.match(alpha.MESSAGE ?? "", /An active site already exists in the namespace \(west\); only one site per namespace runs/);
  assert.equal((await rowOf("site", "west"))?.STATUS, "Ready");
  await reachesBackend();

  await network.run("west", ["system", "stop"]);
  await network.run("west", ["system", "start"]);
  await eventually("Site west to be Ready again", async () => (await rowOf("site", "west"))?.STATUS === "Ready");
  assert.equal((await rowOf("site", "alpha"))?.STATUS, "Error", "alpha, first by name, still does not run");
  const status = await run(["site", "status"]);
  assert.match(status.stdout, /west/);
  await eventually("the Listener to be Ready after the restart", async () => (await rowOf("listener", "web"))?.STATUS === "Ready");
  await reachesBackend();
});
