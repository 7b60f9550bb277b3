/**
 * Issue 7's store and CLI items, with real CLI processes and a real site process: names with
 * path characters never touch files outside the home (exit 2); a bad input file is skipped and
 * reported while the rest keeps working; size limits; concurrent creates and updates; long
 * names; a closed output pipe; temp files left by crashes; the input watcher surviving its
 * directory being replaced.
 */
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { promises as fs } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { CLI, eventually, ok, parseTable, Sandbox, skupper } from "../helpers/cli.js";
import { ALIAS_BOMB } from "../helpers/hostile-yaml.js";

const sandbox = await Sandbox.create("store-hardening");
const home = sandbox.home();
after(() => sandbox.cleanup());

const run = (ns: string, args: string[], input?: string) => skupper(["-n", ns, ...args], { home, ...(input !== undefined ? { input } : {}) });
const nsDir = (ns: string) => path.join(home, "namespaces", ns);
const inputDir = (ns: string) => path.join(nsDir(ns), "input", "resources");


function noStackTrace(stderr: string): void {
  assert.doesNotMatch(stderr, /\n\s+at /, `no stack trace: ${stderr}`);
}

/** A pid no process has: one we started and waited for. */
async function deadPid(): Promise<number> {
  return new Promise((resolve, reject) =>
    execFile(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], (err, out) => (err ? reject(err) : resolve(Number(out)))),
  );
}

describe("names with path characters (exit 2, nothing outside the home touched)", () => {
  test("delete secret, listener delete, connector delete, get and update refuse a traversal name; the victim survives", async () => {
    const victim = sandbox.file("victim/v.yaml");
    await fs.mkdir(path.dirname(victim), { recursive: true });
    await fs.writeFile(victim, "precious\n");
    await ok(["-n", "names", "listener", "create", "web", "8080", "--wait", "none"], { home });
    // input/resources/<Kind>-x/../../../../../../victim/v.yaml is the victim, once normalised.
    const traversal = `x/${path.relative(inputDir("names"), path.dirname(victim))}/v`;
    for (const args of [
      ["delete", "secret", traversal],
      ["delete", "listener", `../../../../../../victim/v`],
      ["listener", "delete", traversal],
      ["connector", "delete", traversal],
      ["get", "secret", traversal],
      ["listener", "update", traversal, "--port", "9090"],
      ["listener", "status", traversal],
      ["link", "delete", traversal],
      ["site", "delete", traversal],
    ]) {
      const result = await run("names", args);
      assert.equal(result.code, 2, `skupper ${args.join(" ")}: ${result.stderr}`);
      assert.match(result.stderr, /is not valid/);
      noStackTrace(result.stderr);
    }
    assert.equal(await fs.readFile(victim, "utf8"), "precious\n");
  });

  test("a symlink in input/resources pointing outside is removed as a link; its target survives", async () => {
    const victim = sandbox.file("victim/linked.yaml");
    await fs.mkdir(path.dirname(victim), { recursive: true });
    await fs.writeFile(victim, "precious\n");
    await fs.symlink(victim, path.join(inputDir("names"), "Listener-evil.yaml"));
    const result = await run("names", ["listener", "delete", "evil", "--wait", "false"]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(await fs.readFile(victim, "utf8"), "precious\n");
  });
});

describe("long names", () => {
  test("a valid 253-character name works end to end (create, status, update, delete)", async () => {
    const name = `${"l".repeat(126)}.${"m".repeat(126)}`;
    assert.equal(name.length, 253);
    const created = await run("long", ["listener", "create", name, "8080", "--wait", "none"]);
    assert.equal(created.code, 0, created.stderr);
    const status = await run("long", ["listener", "status", name]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(name));
    await ok(["-n", "long", "listener", "update", name, "--port", "8081", "--wait", "none"], { home });
    const files = await fs.readdir(inputDir("long"));
    assert.equal(files.length, 1);
    assert.ok(Buffer.byteLength(files[0]!) <= 255, files[0]);
    await ok(["-n", "long", "listener", "delete", name, "--wait", "false"], { home });
    assert.deepEqual(await fs.readdir(inputDir("long")), []);
  });

  test("a 254-character name is refused with exit 2", async () => {
    const result = await run("long", ["listener", "create", "n".repeat(254), "8080", "--wait", "none"]);
    assert.equal(result.code, 2);
    noStackTrace(result.stderr);
  });
});

describe("size limits", () => {
  test("apply -f of a file over 3 MiB is refused unread, naming the file and the limit", async () => {
    const big = sandbox.file("big.yaml");
    await fs.writeFile(big, "");
    await fs.truncate(big, 100 * 1024 * 1024);
    const result = await run("sizes", ["apply", "-f", big]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /big\.yaml is 100 MiB; at most 3 MiB is accepted/);
    noStackTrace(result.stderr);
  });

  test("apply -f - refuses more than 3 MiB on standard input", async () => {
    const child = spawn(process.execPath, [CLI, "-n", "sizes", "apply", "-f", "-"], {
      env: { ...process.env, SKUPPER_HOME: home, SKUPPER_PLATFORM: "" },
      stdio: ["pipe", "pipe", "pipe"],
    });
    child.stdin.on("error", () => undefined); // the CLI stops reading at the limit: EPIPE here is expected
    child.stdin.end("#".repeat(4 * 1024 * 1024));
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("close", resolve));
    assert.equal(code, 2, stderr);
    assert.match(stderr, /standard input is larger than 3 MiB/);
  });

  test("apply -f of a resource over 1 MiB is refused, naming the file", async () => {
    const file = sandbox.file("fat-secret.yaml");
    await fs.writeFile(file, `apiVersion: v1\nkind: Secret\nmetadata: {name: fat}\nstringData:\n  x: ${"x".repeat(1536 * 1024)}\n`);
    const result = await run("sizes", ["apply", "-f", file]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /fat-secret\.yaml: a resource is 1\.5 MiB; a resource may be at most 1 MiB/);
  });

  test("a runtime file that never ends (/dev/zero) does not hang the CLI", async () => {
    await ok(["-n", "sizes", "listener", "create", "web", "8080", "--wait", "none"], { home });
    await fs.mkdir(path.join(nsDir("sizes"), "runtime", "resources"), { recursive: true });
    await fs.symlink("/dev/zero", path.join(nsDir("sizes"), "runtime", "resources", "Listener-web.yaml"));
    await fs.symlink("/dev/zero", path.join(nsDir("sizes"), "runtime", "network-status.json"));
    const result = await skupper(["-n", "sizes", "listener", "status"], { home, timeoutMs: 20_000 });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(parseTable(result.stdout)[0]?.STATUS, "Pending");
  });
});

describe("concurrent commands", () => {
  test("of ten concurrent 'listener create same' exactly one succeeds; the others say it exists", async () => {
    // Other resources make each command's existence check slower, and a check-then-write race
    // (as before creates were exclusive) all but certain.
    await fs.mkdir(inputDir("race"), { recursive: true });
    for (let i = 0; i < 300; i++) {
      await fs.writeFile(
        path.join(inputDir("race"), `Connector-filler-${i}.yaml`),
        `apiVersion: skupper.io/v2alpha1\nkind: Connector\nmetadata: {name: filler-${i}}\nspec: {routingKey: filler, port: ${1000 + i}}\n`,
      );
    }
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => run("race", ["listener", "create", "same", String(9100 + i), "--wait", "none"])),
    );
    const winners = results.filter((r) => r.code === 0);
    assert.equal(winners.length, 1, results.map((r) => `${r.code} ${r.stderr}`).join("\n"));
    for (const r of results.filter((r) => r.code !== 0)) {
      assert.equal(r.code, 2, "already exists: a validation failure");
      assert.match(r.stderr, /There is already a listener same created for namespace race/);
    }
    const status = parseTable(await ok(["-n", "race", "listener", "status"], { home }));
    assert.equal(status.length, 1);
    assert.equal(status[0]?.PORT, String(9100 + results.findIndex((r) => r.code === 0)), "the file holds the winner's port");
  });

  test("ten concurrent updates of one listener are all applied: generation 1 + 10", async () => {
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => run("race", ["listener", "update", "same", "--port", String(9200 + i), "--wait", "none"])),
    );
    assert.deepEqual(results.map((r) => r.code), Array(10).fill(0), results.map((r) => r.stderr).join("\n"));
    const yaml = await ok(["-n", "race", "get", "listener", "same", "-o", "yaml"], { home });
    assert.match(yaml, /generation: 11\n/);
    await assert.rejects(fs.stat(path.join(nsDir("race"), "input.lock")), "the lock is released");
  });
});

describe("a closed output pipe", () => {
  test("skupper system status with its reader gone ends quietly: no stack trace, empty stderr", async () => {
    const child = spawn(process.execPath, [CLI, "-n", "pipes", "system", "status"], {
      env: { ...process.env, SKUPPER_HOME: home, SKUPPER_PLATFORM: "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout.destroy(); // the reader goes away before the first write
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("close", resolve));
    assert.equal(stderr, "");
    assert.equal(code, 141);
  });

  test("skupper system status | head -1 prints one line and nothing on stderr", async () => {
    const stderrFile = sandbox.file("pipe-stderr.txt");
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        "bash",
        ["-c", `"${process.execPath}" "${CLI}" -n pipes system status 2>"${stderrFile}" | head -1`],
        { env: { ...process.env, SKUPPER_HOME: home, SKUPPER_PLATFORM: "" } },
        (err, stdout) => (err ? reject(err) : resolve(stdout)),
      ),
    );
    assert.equal(out, "Namespace:      pipes\n");
    assert.equal(await fs.readFile(stderrFile, "utf8"), "");
  });
});

describe("with a running site process", () => {
  const ns = "live";
  before(async () => {
    await ok(["-n", ns, "site", "create", ns], { home });
  });

  test("an alias bomb in input/resources is skipped and reported naming the file; everything else keeps working", async () => {
    await fs.writeFile(path.join(inputDir(ns), "bomb.yaml"), ALIAS_BOMB);
    await ok(["-n", ns, "connector", "create", "echo", "7000", "--wait", "none"], { home });
    await ok(["-n", ns, "listener", "create", "echo", "7001", "--wait", "configured", "--timeout", "20s"], { home });
    await eventually("the listener to be Ready", async () => parseTable(await ok(["-n", ns, "listener", "status"], { home }))[0]?.STATUS === "Ready");
    const siteStatus = await ok(["-n", ns, "site", "status"], { home });
    assert.match(siteStatus, /Problem: input\/resources\/bomb\.yaml: .*alias/i);
    const networkStatus = await ok(["-n", ns, "network", "status"], { home });
    assert.match(networkStatus, /Problem: input\/resources\/bomb\.yaml/);
    const file = JSON.parse(await fs.readFile(path.join(nsDir(ns), "runtime", "network-status.json"), "utf8")) as { inputProblems: string[] };
    assert.match(file.inputProblems.join("\n"), /bomb\.yaml/);
    const log = await fs.readFile(path.join(nsDir(ns), "runtime", "logs", "site.log"), "utf8");
    assert.match(log, /WARN .*input: input\/resources\/bomb\.yaml/);

    const applied = await run(ns, ["apply", "-f", path.join(inputDir(ns), "bomb.yaml")]);
    assert.equal(applied.code, 2);
    assert.match(applied.stderr, /bomb\.yaml/);
    noStackTrace(applied.stderr);
    await fs.rm(path.join(inputDir(ns), "bomb.yaml"));
    await eventually("the problem to clear", async () => !/Problem:/.test(await ok(["-n", ns, "site", "status"], { home })));
  });

  test("a file over the size limit in input/resources is skipped and reported; others apply", async () => {
    const big = path.join(inputDir(ns), "huge.yaml");
    await fs.writeFile(big, "");
    await fs.truncate(big, 100 * 1024 * 1024);
    await ok(["-n", ns, "listener", "create", "after-huge", "7002", "--wait", "configured", "--timeout", "20s"], { home });
    assert.match(await ok(["-n", ns, "site", "status"], { home }), /Problem: input\/resources\/huge\.yaml: .*100 MiB; at most 3 MiB/);
    await fs.rm(big);
  });

  test("the input watcher is re-created after input/resources is removed and re-created", async () => {
    const saved = sandbox.file("saved-resources");
    await fs.cp(inputDir(ns), saved, { recursive: true });
    await fs.rm(inputDir(ns), { recursive: true });
    await fs.cp(saved, inputDir(ns), { recursive: true });
    // Changes made after the directory was replaced still apply live.
    await ok(["-n", ns, "listener", "create", "after-rewatch", "7003", "--wait", "configured", "--timeout", "20s"], { home });
    const log = await fs.readFile(path.join(nsDir(ns), "runtime", "logs", "site.log"), "utf8");
    assert.match(log, /WARN .*stopped watching .*input\/resources: the directory was (removed|replaced); watching it again/);
  });

  test("temp files left by crashed writers are removed when the site process starts; a live writer's are kept", async () => {
    await ok(["-n", ns, "system", "stop"], { home });
    const dead = await deadPid();
    const planted = {
      deadInput: path.join(inputDir(ns), `.Listener-x.yaml.${dead}.0123456789ab.tmp`),
      oldFormat: path.join(inputDir(ns), ".AccessGrant-g.yaml.0123456789ab.tmp"),
      deadKey: path.join(nsDir(ns), "runtime", "issuers", "skupper-site-ca", `.tls.key.${dead}.0123456789ab.tmp`),
      live: path.join(nsDir(ns), "runtime", `.site-state.json.${process.pid}.0123456789ab.tmp`),
    };
    await fs.mkdir(path.dirname(planted.deadKey), { recursive: true });
    for (const file of Object.values(planted)) await fs.writeFile(file, "secret code\n", { mode: 0o600 });
    await ok(["-n", ns, "system", "start"], { home });
    for (const file of [planted.deadInput, planted.oldFormat, planted.deadKey]) await assert.rejects(fs.stat(file), `${file} removed`);
    await fs.stat(planted.live); // kept: its writer (this test process) is alive
    const log = await fs.readFile(path.join(nsDir(ns), "runtime", "logs", "site.log"), "utf8");
    const removed = /removed (\d+) temporary file\(s\) left by processes that ended while writing/.exec(log);
    assert.ok(removed && Number(removed[1]) >= 3, "the start-up cleanup is logged");
  });
});
