/**
 * `skupper debug dump` on real sites: two sites linked with a token, a listener and a connector,
 * an outstanding AccessGrant and a redeemed AccessToken. The archive has the expected layout,
 * every resource of the namespace, the log and network status, mode 0600, and not one secret of
 * either site in any form: every private key, Secret data value, grant code and token code is read
 * from the sites' own files and looked for in every extracted file.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { promises as fs } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import path from "node:path";
import { after, before, test } from "node:test";
import { parseAllDocuments } from "yaml";
import { eventually, freePort, ok, parseTable, Sandbox, skupper } from "../helpers/cli.js";

const sandbox = await Sandbox.create("debug-dump");
after(() => sandbox.cleanup());
const home = sandbox.home();
const dumps = sandbox.file("dumps");
const tokenFiles: string[] = [];

before(async () => {
  await fs.mkdir(dumps);
  await ok(["-n", "west", "site", "create", "west", "--enable-link-access", "--link-port", String(await freePort()), "--grant-server-port", String(await freePort())], { home });
  await ok(["-n", "east", "site", "create", "east"], { home });
  for (const name of ["redeemed.yaml", "outstanding.yaml"]) {
    const file = sandbox.file(name);
    await ok(["-n", "west", "token", "issue", file], { home });
    tokenFiles.push(file);
  }
  await ok(["-n", "east", "token", "redeem", tokenFiles[0] as string], { home });
  await ok(["-n", "west", "listener", "create", "backend", String(await freePort())], { home });
  await ok(["-n", "east", "connector", "create", "backend", String(await freePort())], { home });
  await eventually("east's link to be Ready", async () => parseTable(await ok(["-n", "east", "link", "status"], { home })).find((r) => r.STATUS === "Ready"));
});

/** Runs `debug dump`, checks the message, extracts the archive; resolves with the archive and the extracted top directory. */
async function dump(namespace: string, args: string[], cwd = dumps): Promise<{ file: string; top: string; stderr: string }> {
  const result = await skupper(["-n", namespace, "debug", "dump", ...args], { home, cwd });
  assert.equal(result.code, 0, result.stderr);
  const match = /^Skupper dump details written to compressed archive: (.+)$/m.exec(result.stdout);
  assert.ok(match, `the original's message: ${result.stdout}`);
  const file = path.resolve(cwd, match[1] as string);
  const into = `${file}.extracted`;
  await fs.mkdir(into);
  execFileSync("tar", ["-xzf", file, "-C", into]);
  const [top, ...more] = await fs.readdir(into);
  assert.equal(more.length, 0, "one top directory");
  assert.equal(top, path.basename(file).replace(/\.tar\.gz$/, ""), "named after the archive");
  return { file, top: path.join(into, top as string), stderr: result.stderr };
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(full)));
    else out.push(full);
  }
  return out;
}

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");

/**
 * Every secret of a namespace, read from its files as an attacker would: private key files, the
 * data of Secret resources (encoded and decoded), grant codes (in status) and token codes (in
 * spec), plus the codes in the token files this test issued.
 */
async function secretsOf(namespace: string): Promise<Map<string, string>> {
  const secrets = new Map<string, string>();
  const add = (what: string, value: string) => {
    const v = value.trim();
    if (v.length < 8) return;
    secrets.set(v, what);
    secrets.set(b64(v), `${what} (base64)`);
  };
  const root = path.join(home, "namespaces", namespace);
  for (const file of await filesUnder(root)) {
    if (file.endsWith("site.sock")) continue;
    const text = await fs.readFile(file, "utf8");
    if (text.includes("PRIVATE KEY-----")) {
      add(`private key ${path.relative(root, file)}`, text);
      for (const line of text.split("\n").filter((l) => l && !l.startsWith("-----"))) add(`a line of ${path.relative(root, file)}`, line);
    }
    if (!file.endsWith(".yaml")) continue;
    for (const doc of parseAllDocuments(text)) {
      const r = doc.toJS() as { kind?: string; data?: Record<string, string>; spec?: { code?: string }; status?: { code?: string } } | null;
      if (r?.kind === "Secret") {
        for (const [key, value] of Object.entries(r.data ?? {})) {
          add(`Secret data ${key} in ${path.relative(root, file)}`, value);
          add(`decoded Secret data ${key} in ${path.relative(root, file)}`, Buffer.from(value, "base64").toString("utf8"));
        }
      }
      if (r?.kind === "AccessGrant" && r.status?.code) add(`grant code in ${path.relative(root, file)}`, r.status.code);
      if (r?.kind === "AccessToken" && r.spec?.code) add(`token code in ${path.relative(root, file)}`, r.spec.code);
    }
  }
  for (const file of tokenFiles) {
    const code = /code: (\S+)/.exec(await fs.readFile(file, "utf8"))?.[1];
    if (code) add(`code of token file ${path.basename(file)}`, code);
  }
  return secrets;
}

function assertNoSecret(files: Array<{ file: string; text: string }>, secrets: Map<string, string>): void {
  assert.ok(secrets.size > 10, `the sites have secrets to look for (${secrets.size})`);
  for (const { file, text } of files) {
    assert.doesNotMatch(text, /PRIVATE KEY-----/, `${file} holds no private key`);
    for (const [secret, what] of secrets) assert.ok(!text.includes(secret), `${file} must not hold ${what}`);
  }
}

async function readAll(top: string): Promise<Array<{ file: string; text: string }>> {
  return Promise.all((await filesUnder(top)).map(async (file) => ({ file: path.relative(top, file), text: await fs.readFile(file, "utf8") })));
}

/** `Kind-name.yaml` of every resource of a namespace, as its input and runtime directories hold them. */
async function resourceFiles(namespace: string): Promise<string[]> {
  const names = new Set<string>();
  for (const dir of ["input/resources", "runtime/resources"]) {
    for (const name of await fs.readdir(path.join(home, "namespaces", namespace, dir)).catch(() => [] as string[])) names.add(name);
  }
  return [...names].sort();
}

test("dumps of both sites hold versions, every resource with status, network and system status, the log; no secret of either site in any form", async (t) => {
  const start = Date.now();
  const west = await dump("west", [path.join(dumps, "west-dump.tar.gz")]);
  const east = await dump("east", [], dumps);
  t.diagnostic(`two dumps: ${Date.now() - start} ms`);

  // The original's name: <file>-<namespace>-<YYYYMMDDhhmmss>.tar.gz; the default base is skupper-dump.
  assert.match(path.basename(west.file), /^west-dump-west-\d{14}\.tar\.gz$/);
  assert.match(path.basename(east.file), /^skupper-dump-east-\d{14}\.tar\.gz$/);
  for (const { file } of [west, east]) assert.equal((await fs.stat(file)).mode & 0o777, 0o600, `${file} is the owner's only`);
  assert.deepEqual((await fs.readdir(dumps)).filter((n) => n.endsWith(".tmp")), [], "no temp file left behind");

  for (const [namespace, result] of [["west", west], ["east", east]] as const) {
    const files = (await filesUnder(result.top)).map((f) => path.relative(result.top, f));
    for (const expected of ["versions.yaml", "network-status.json", "system-status.txt", "logs/site.log", "metrics.txt", "problems.txt", "certificates.yaml"]) {
      assert.ok(files.includes(expected), `${namespace}: ${expected} in ${files.join(", ")}`);
    }
    // Every resource of the namespace, each kind present in it.
    const resources = await resourceFiles(namespace);
    assert.ok(resources.length >= 4, `${namespace} has resources: ${resources.join(", ")}`);
    for (const name of resources) assert.ok(files.includes(`resources/${name}`), `${namespace}: resources/${name}`);

    const read = (name: string) => fs.readFile(path.join(result.top, name), "utf8");
    const versions = await read("versions.yaml");
    assert.match(versions, /^cli: \d+\.\d+\.\d+/m);
    assert.match(versions, /^node: v\d+/m);
    assert.match(versions, /^platform: linux$/m);
    assert.match(versions, new RegExp(`name: ${namespace}\\n`));
    const view = JSON.parse(await read("network-status.json")) as { siteName: string; router?: unknown };
    assert.equal(view.siteName, namespace);
    assert.ok(view.router, "the router's part of the view");
    assert.match(await read("logs/site.log"), /site process ready/);
    assert.match(await read("system-status.txt"), new RegExp(`Namespace:\\s+${namespace}\\n[\\s\\S]*Site process:\\s+running`));
    assert.match(await read("metrics.txt"), /metrics were not enabled: Site "\w+" does not set observer-port/);
    assert.equal(await read("problems.txt"), "Nothing was left out.\n");
    assert.match(await read(`resources/Site-${namespace}.yaml`), /status: Ready/, "resources carry their status");
  }

  // What redaction leaves to read: the Secret's keys and type, sizes and certificate summaries; the grant and token without codes.
  const eastSecret = (await fs.readdir(path.join(east.top, "resources"))).find((n) => n.startsWith("Secret-")) as string;
  const secretText = await fs.readFile(path.join(east.top, "resources", eastSecret), "utf8");
  assert.match(secretText, /type: kubernetes.io\/tls/);
  assert.match(secretText, /tls\.key: "?<redacted: \d+ bytes>/);
  assert.match(secretText, /tls\.crt: '?<redacted: \d+ bytes; certificate subject "CN=east", issuer "CN=west site CA"/);
  const grants = (await fs.readdir(path.join(west.top, "resources"))).filter((n) => n.startsWith("AccessGrant-"));
  assert.equal(grants.length, 2, "both grants, redeemed and outstanding");
  for (const grant of grants) assert.match(await fs.readFile(path.join(west.top, "resources", grant), "utf8"), /code: <redacted>/);
  const tokens = (await fs.readdir(path.join(east.top, "resources"))).filter((n) => n.startsWith("AccessToken-"));
  assert.equal(tokens.length, 1);
  assert.match(await fs.readFile(path.join(east.top, "resources", tokens[0] as string), "utf8"), /code: <redacted>/);

  // Not one secret of either site, in any file of either dump.
  const secrets = new Map([...(await secretsOf("west")), ...(await secretsOf("east"))]);
  assertNoSecret([...(await readAll(west.top)), ...(await readAll(east.top))], secrets);
});

test("a directory that does not exist: a clear error, exit 1, and no file anywhere", async () => {
  const missing = sandbox.file("no-such-dir");
  const before = await fs.readdir(dumps);
  const result = await skupper(["-n", "west", "debug", "dump", path.join(missing, "x")], { home, cwd: dumps });
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stderr, /^Error: Unable to save skupper dump details: directory .*no-such-dir does not exist\n$/);
  assert.doesNotMatch(result.stderr, /\n\s+at /, "no stack trace");
  assert.equal(result.stdout, "");
  await assert.rejects(fs.stat(missing), "the directory is not made");
  assert.deepEqual(await fs.readdir(dumps), before, "nothing written elsewhere");

  const empty = await skupper(["-n", "west", "debug", "dump", ""], { home, cwd: dumps });
  assert.equal(empty.code, 2);
  assert.match(empty.stderr, /filename must not be empty/);
});

test("metrics come from the observer port the Site sets, with the observer credential, and what the endpoint echoes of it is redacted", async () => {
  // The observer port is served by the site process on another branch; this stands in for it: a
  // real HTTP server that requires the credential and, carelessly, echoes it back.
  const credential = "observer-credential-0123456789abcdef";
  const seen: string[] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    seen.push(`${req.method} ${req.url} ${req.headers.authorization ?? "-"}`);
    if (req.headers.authorization !== `Bearer ${credential}`) {
      res.writeHead(401).end();
      return;
    }
    res.writeHead(200, { "content-type": "text/plain" }).end(`# HELP skupper_sites Sites\nskupper_sites 2\n# debug: ${req.headers.authorization}\n`);
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  try {
    const site = sandbox.file("north.yaml");
    await fs.writeFile(site, `apiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata:\n  name: north\nspec:\n  settings:\n    observer-port: "${port}"\n    observer-host: 0.0.0.0\n`);
    await ok(["-n", "north", "apply", "-f", site], { home });
    const runtime = path.join(home, "namespaces", "north", "runtime");
    await fs.mkdir(runtime, { recursive: true, mode: 0o700 });
    await fs.writeFile(path.join(runtime, "observer-credential"), `${credential}\n`, { mode: 0o600 });

    const north = await dump("north", ["north"]);
    assert.deepEqual(seen, [`GET /metrics Bearer ${credential}`]);
    const read = (name: string) => fs.readFile(path.join(north.top, name), "utf8");
    const metrics = await read("metrics.txt");
    assert.match(metrics, /^skupper_sites 2$/m);
    assert.match(metrics, /# debug: Bearer <redacted>/);
    for (const { file, text } of await readAll(north.top)) assert.ok(!text.includes(credential), `${file} must not hold the observer credential`);
    assert.match(await read("resources/Site-north.yaml"), /observer-port/);
  } finally {
    server.close();
  }
  // Stopped, and with nothing on the port any more: the dump says so, and is written all the same.
  await ok(["-n", "north", "system", "stop"], { home });
  const stopped = await dump("north", ["north-stopped"]);
  assert.match(await fs.readFile(path.join(stopped.top, "system-status.txt"), "utf8"), /Site process:\s+not running/);
  assert.match(await fs.readFile(path.join(stopped.top, "versions.yaml"), "utf8"), /running: false/);
  assert.match(await fs.readFile(path.join(stopped.top, "problems.txt"), "utf8"), /^- metrics: cannot fetch http:\/\/127\.0\.0\.1:\d+\/metrics/m);
});

test("a namespace without a site still gets a dump, which names each missing part and why", async () => {
  const nowhere = await dump("nowhere", []);
  const problems = await fs.readFile(path.join(nowhere.top, "problems.txt"), "utf8");
  assert.match(problems, /^- site: there is no Site in namespace "nowhere"$/m);
  assert.match(problems, /^- network status: the site has not published one/m);
  assert.match(problems, /^- logs: /m);
  assert.match(nowhere.stderr, /^Warning: \d part\(s\) could not be collected; problems.txt in the archive says which and why$/m);
  for (const file of ["versions.yaml", "system-status.txt", "metrics.txt"]) await fs.stat(path.join(nowhere.top, file));
});
