/**
 * Installation bundles (`skupper system generate-bundle`, docs/bundles.md), end to end: a bundle
 * made on the host of site `west` from a Site, a token issued by west and a Listener is installed
 * with its own installer into a fresh directory, as on another host (its own SKUPPER_HOME,
 * nothing of ours on PATH), and the installed site links to west and reaches west's TCP service.
 * The self-extracting script, made from a namespace holding a Link and Secret of west's
 * `link generate`, installs the same way and refuses a damaged payload; the installer
 * upgrades in place keeping the site, and removes it with -x; bad input writes nothing.
 *
 * Each test stands alone (run any one with --test-name-pattern): the bundles and installations
 * two tests share are made once, by whichever test needs them first.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promises as fs } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { isSiteProcess } from "../../src/platform/local/index.js";
import { eventually, freePort, freePorts, ok, parseTable, Sandbox, sitePid, skupper, type CliResult } from "../helpers/cli.js";
import { connect, roundTrip, serve, type Backend } from "../helpers/network.js";

const sandbox = await Sandbox.create("bundle");
let echo: Backend | undefined;
after(async () => {
  await echo?.close();
  await sandbox.cleanup();
});

const westHome = sandbox.home("west");
/** The installation directories: registered as homes, so cleanup stops the sites in them. */
const hostA = sandbox.home("host-a");
const hostB = sandbox.home("host-b");
const INSTALL_TIMEOUT_MS = 90_000;
const LINK_TIMEOUT_MS = 30_000;

let tokenFile = "";
let listenerPort = 0;

before(async () => {
  const [linkPort, grantPort] = await freePorts(2);
  await ok(["-n", "west", "site", "create", "west", "--enable-link-access", "--link-port", String(linkPort), "--grant-server-port", String(grantPort), "--host", "127.0.0.1"], { home: westHome });
  echo = await serve((socket) => socket.pipe(socket));
  await ok(["-n", "west", "connector", "create", "echo", String(echo.port), "--host", "127.0.0.1"], { home: westHome });
  // Several redemptions allowed, so a second redemption by a reinstall would succeed and show in the count.
  tokenFile = sandbox.file("west-token.yaml");
  await ok(["-n", "west", "token", "issue", tokenFile, "--redemptions-allowed", "5"], { home: westHome });
  listenerPort = await freePort();
});

// ---- running things as another host would ----

/** The environment of "another host": no SKUPPER_* of the test's, our node on PATH. */
function hostEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  for (const name of ["SKUPPER_HOME", "SKUPPER_NAMESPACE", "SKUPPER_PLATFORM", "SKUPPER_BUNDLE_SELF"]) if (!(name in extra)) delete env[name];
  return env;
}

function run(file: string, args: string[], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(file, args, { env: hostEnv(options.env), cwd: options.cwd ?? sandbox.root, timeout: INSTALL_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

async function succeeds(file: string, args: string[], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<string> {
  const result = await run(file, args, options);
  assert.equal(result.code, 0, `${file} ${args.join(" ")} exited ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
  return result.stdout;
}

/**
 * The installed `skupper` command of a host. SKUPPER_HOME is set to west's on purpose: the
 * command must act on the sites of its own installation whatever the environment says.
 */
function installed(host: string, args: string[]): Promise<string> {
  return succeeds(path.join(host, "bin", "skupper"), args, { env: { SKUPPER_HOME: westHome } });
}

async function outgoingLink(host: string): Promise<Record<string, string>> {
  return eventually(
    `the installed site in ${path.basename(host)} to have a Ready link to west`,
    async () => parseTable(await installed(host, ["-n", "east", "link", "status", "-o", "wide"])).find((r) => r["REMOTE SITE"] === "west" && r.DIRECTION === "outgoing" && r.STATUS === "Ready"),
    LINK_TIMEOUT_MS,
  );
}

async function writeResources(dir: string, files: Record<string, string>): Promise<string> {
  await fs.mkdir(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) await fs.writeFile(path.join(dir, name), text);
  return dir;
}

const SITE_EAST = "apiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata:\n  name: east\n";

function listenerYaml(port: number): string {
  return `apiVersion: skupper.io/v2alpha1\nkind: Listener\nmetadata:\n  name: echo\nspec:\n  routingKey: echo\n  host: 127.0.0.1\n  port: ${port}\n`;
}

async function siteIdentity(host: string): Promise<{ siteId: string; caKey: string }> {
  const runtime = path.join(host, "namespaces", "east", "runtime");
  const { siteId } = JSON.parse(await fs.readFile(path.join(runtime, "site-state.json"), "utf8")) as { siteId: string };
  return { siteId, caKey: await fs.readFile(path.join(runtime, "issuers", "skupper-site-ca", "tls.key"), "utf8") };
}

async function redemptionsMade(): Promise<string | undefined> {
  const name = /name: (\S+)/.exec(await fs.readFile(tokenFile, "utf8"))?.[1];
  return parseTable(await ok(["-n", "west", "get", "accessgrants"], { home: westHome })).find((r) => r.NAME === name)?.["REDEMPTIONS MADE"];
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}

// ---- the bundles and installations tests share, made once ----

let tarball: Promise<{ file: string; stdout: string }> | undefined;
let installedA: Promise<string> | undefined;
let script: Promise<string> | undefined;
let installedB: Promise<string> | undefined;

/** The tarball made from --input: Site east, west's token and a listener for west's echo service. */
function tarballBundle(): Promise<{ file: string; stdout: string }> {
  tarball ??= (async () => {
    const input = await writeResources(sandbox.file("east-input"), {
      "site.yaml": SITE_EAST,
      "token.yaml": await fs.readFile(tokenFile, "utf8"),
      "listener.yaml": listenerYaml(listenerPort),
      "README.md": "not a resource file: ignored\n",
    });
    const stdout = await ok(["-n", "east", "system", "generate-bundle", "east", "--input", input], { home: westHome });
    return { file: path.join(westHome, "bundles", "east.tar.gz"), stdout };
  })();
  return tarball;
}

/** The tarball, extracted and installed on host A; resolves with the extracted installer. */
function hostAInstalled(): Promise<string> {
  installedA ??= (async () => {
    const { file } = await tarballBundle();
    const download = sandbox.file("host-a-download");
    await fs.mkdir(download);
    await succeeds("tar", ["-xzf", file, "-C", download]);
    const installer = path.join(download, "east", "install.sh");
    await succeeds("sh", [installer, "-d", hostA, "-n", "east"]);
    return installer;
  })();
  return installedA;
}

/**
 * A self-extracting bundle of namespace east of west's host (no --input), written where its
 * name's path says. The namespace holds Site east and the Link and Secret of west's
 * `link generate`, put into its input by hand (the CLI would start a site there).
 */
function scriptBundle(): Promise<string> {
  script ??= (async () => {
    await writeResources(path.join(westHome, "namespaces", "east", "input", "resources"), {
      "Site-east.yaml": SITE_EAST,
      "to-west.yaml": await ok(["-n", "west", "link", "generate", "--name", "to-west"], { home: westHome }),
    });
    const downloads = sandbox.file("downloads");
    await fs.mkdir(downloads, { recursive: true });
    const out = await ok(["-n", "east", "system", "generate-bundle", path.join(downloads, "east"), "--type", "shell-script"], { home: westHome });
    const file = path.join(downloads, "east.sh");
    assert.match(out, new RegExp(`^Installation bundle available at: ${file}$`, "m"));
    assert.match(out, /carries link credentials \(Secret "to-west"\)/);
    return file;
  })();
  return script;
}

function hostBInstalled(): Promise<string> {
  installedB ??= (async () => {
    const file = await scriptBundle();
    await succeeds("sh", [file, "-d", hostB, "-n", "east"]);
    return file;
  })();
  return installedB;
}

// ---- tests ----

test("a tarball bundle installs on a fresh host: the site links to west with the bundled token and serves west's TCP service", async () => {
  const { file, stdout } = await tarballBundle();
  assert.match(stdout, new RegExp(`^Installation bundle available at: ${file}$`, "m"));
  assert.match(stdout, /^Default namespace: east$/m);
  assert.match(stdout, /^Default platform: linux$/m);
  assert.match(stdout, /carries link credentials \(AccessToken "[^"]+"\)/);
  assert.equal((await fs.stat(file)).mode & 0o777, 0o600, "the bundle is readable by its owner only");
  const listing = await succeeds("tar", ["-tzf", file]);
  for (const entry of ["east/install.sh", "east/app/bin/skupper", "east/app/dist/src/cli/main.js", "east/app/node_modules/yaml/package.json", "east/resources/Site-east.yaml", "east/resources/Listener-echo.yaml"]) {
    assert.ok(listing.split("\n").includes(entry), `the bundle holds ${entry}`);
  }
  assert.ok(!listing.includes("node_modules/typescript/"), "no development dependency is bundled");

  await hostAInstalled();
  const command = await fs.readFile(path.join(hostA, "bin", "skupper"), "utf8");
  assert.match(command, /^#!\/bin\/sh\n/);
  const link = await outgoingLink(hostA);
  assert.equal(link["REMOTE SITE"], "west");
  const reply = await eventually(
    "west's echo service to answer through the installed site's listener",
    async () => {
      const socket = await connect(listenerPort);
      try {
        return await roundTrip(socket, "hello across the bundle\n");
      } finally {
        socket.destroy();
      }
    },
    LINK_TIMEOUT_MS,
  );
  assert.equal(reply, "hello across the bundle\n");
});

test("running the installer again upgrades the app and keeps the site: same id and keys, the link without a new redemption", async () => {
  const installer = await hostAInstalled();
  const linkBefore = await outgoingLink(hostA);
  const identity = await siteIdentity(hostA);
  const redemptions = await redemptionsMade();
  const planted = path.join(hostA, "app", "left-by-the-old-version");
  await fs.writeFile(planted, "");

  const out = await succeeds("sh", [installer, "-d", hostA, "-n", "east"]);
  assert.match(out, /Namespace "east" exists in .*: upgrading it/);
  assert.ok(!(await exists(planted)), "the app was replaced, not merged");
  assert.deepEqual(await siteIdentity(hostA), identity, "the site id and CA key are kept");
  const linkAfter = await outgoingLink(hostA);
  assert.equal(linkAfter.NAME, linkBefore.NAME, "the same link is back");
  assert.equal(await redemptionsMade(), redemptions, "the token was not redeemed again");
});

test("a self-extracting bundle of a namespace's resources (a Site, a generated Link and Secret) installs the same way and links; a damaged one, or an unsupported platform, installs nothing", async () => {
  const file = await scriptBundle();
  assert.equal((await fs.stat(file)).mode & 0o777, 0o600);
  const damaged = sandbox.file("damaged.sh");
  const bytes = await fs.readFile(file);
  bytes[bytes.length - 100] = (bytes[bytes.length - 100] as number) ^ 0xff;
  await fs.writeFile(damaged, bytes);
  const refused = await run("sh", [damaged, "-d", hostB, "-n", "east"]);
  assert.equal(refused.code, 1, refused.stderr);
  assert.match(refused.stderr, /is damaged: its payload does not match the SHA-256 it was made with/);
  const podman = await run("sh", [file, "-d", hostB, "-p", "podman"]);
  assert.equal(podman.code, 2, podman.stderr);
  assert.match(podman.stderr, /cannot install on the podman platform yet/);
  assert.ok(!(await exists(hostB)), "nothing was installed");

  await hostBInstalled();
  assert.equal((await outgoingLink(hostB)).NAME, "to-west");
});

test("the installer's -x removes the installed site: its process stops and its namespace, app and command are gone", async () => {
  const file = await hostBInstalled();
  const pid = await sitePid(hostB, "east");
  assert.ok(pid !== undefined, "the installed site runs");
  const out = await succeeds("sh", [file, "-x", "-n", "east", "-d", hostB]);
  assert.match(out, /Namespace "east" has been removed/);
  assert.ok(!isSiteProcess(pid), "the site process has stopped");
  for (const gone of ["namespaces", "app", path.join("bin", "skupper")]) assert.ok(!(await exists(path.join(hostB, gone))), `${gone} is removed`);
  const again = await succeeds("sh", [file, "-x", "-n", "east", "-d", hostB]);
  assert.match(again, /nothing to remove/);
});

test("bad input is refused with exit code 2 and a plain message, and nothing is written", async () => {
  const home = sandbox.home("bad");
  const site = SITE_EAST;
  const cases: Array<{ args: string[]; files?: Record<string, string>; message: RegExp }> = [
    { args: [], files: { "listener.yaml": listenerYaml(5999) }, message: /there is no Site among the resources of .*: a bundle installs a site/ },
    { args: [], files: { "site.yaml": "apiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata: [\n" }, message: /site\.yaml: not valid YAML/ },
    { args: [], files: { "site.yaml": `${site}spec:\n  colour: blue\n` }, message: /site\.yaml: Site "east": .*colour/ },
    { args: [], files: { "site.yaml": site, "other.yaml": site.replace("east", "north") }, message: /2 Sites \(east, north\): a bundle installs one site/ },
    {
      args: [],
      files: { "site.yaml": site, "link.yaml": "apiVersion: skupper.io/v2alpha1\nkind: Link\nmetadata:\n  name: to-west\nspec:\n  endpoints:\n  - name: inter-router\n    host: 127.0.0.1\n    port: '55671'\n" },
      message: /Link "to-west" needs Secret "to-west"/,
    },
    { args: ["--type", "zip"], files: { "site.yaml": site }, message: /invalid bundle type "zip"/ },
    { args: ["--input", sandbox.file("no-such-dir")], message: /no-such-dir does not exist/ },
    { args: [], message: /namespace "east" has no resources to bundle/ },
  ];
  let n = 0;
  for (const { args, files, message } of cases) {
    const input = files ? ["--input", await writeResources(sandbox.file(`bad-input-${++n}`), files)] : [];
    const result = await skupper(["-n", "east", "system", "generate-bundle", "east", ...input, ...args], { home });
    assert.equal(result.code, 2, `${JSON.stringify(files)} ${args.join(" ")}: exit code 2, got ${result.code}: ${result.stderr}`);
    assert.match(result.stderr, message);
    assert.doesNotMatch(result.stderr, /\n\s+at /, "no stack trace");
  }
  const badName = await skupper(["-n", "east", "system", "generate-bundle", "east bundle", "--input", await writeResources(sandbox.file("bad-name"), { "site.yaml": site })], { home });
  assert.equal(badName.code, 2, badName.stderr);
  assert.match(badName.stderr, /bundle name "east bundle" is not valid/);
  assert.ok(!(await exists(path.join(home, "bundles"))), "no bundle (nor its directory) was written");
});
