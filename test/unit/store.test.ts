/**
 * The local store's defences (src/platform/local, src/common/files.ts): names never leave their
 * directory, long names fit the file system, a bad or huge file is a problem and not a
 * failure, creates are exclusive, the input lock serialises writers and outlives dead holders,
 * crash leftovers are cleaned, and the input watcher survives its directory being replaced.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { promises as fs, watch, type FSWatcher } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { API_VERSION, parseDocuments, type Listener } from "../../src/api/index.js";
import { InvalidInputError, SkupperError } from "../../src/common/errors.js";
import { removeStaleTempFiles, tempFileName } from "../../src/common/files.js";
import { INLINE_PARSE_MAX_BYTES, LocalStore, OffThreadParser, resourceFileName, SitePaths } from "../../src/platform/local/index.js";
import { eventually } from "../helpers/cli.js";
import { ALIAS_BOMB } from "../helpers/hostile-yaml.js";

const root = await fs.mkdtemp(path.join(os.tmpdir(), "skupper-store-"));
after(() => fs.rm(root, { recursive: true, force: true }));

let homes = 0;
async function newStore(): Promise<LocalStore> {
  const store = new LocalStore(new SitePaths(path.join(root, `home-${++homes}`), "west"));
  await store.ensureDirectories();
  return store;
}

function listener(name: string, port = 8080): Listener {
  return { apiVersion: API_VERSION, kind: "Listener", metadata: { name }, spec: { routingKey: name, host: "127.0.0.1", port } };
}

/** A pid no process has: one we started and waited for. */
function deadPid(): number {
  return Number(execFileSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" }));
}


describe("names", () => {
  test("a name with path characters is refused (exit code 2) before any file is touched", async () => {
    const store = await newStore();
    const victim = path.join(root, "victim.yaml");
    await fs.writeFile(victim, "precious\n");
    const traversal = path.relative(store.paths.inputResources, victim).replace(/\.yaml$/, "");
    for (const name of [`x/${traversal}`, "../../x", "a/b", "..", "", "UPPER", "a".repeat(254)]) {
      await assert.rejects(store.deleteInput("Secret", name), (err: unknown) => err instanceof InvalidInputError && err.exitCode === 2, `delete ${name}`);
      await assert.rejects(store.getInput("Secret", name), InvalidInputError);
      await assert.rejects(store.getRuntime("Secret", name), InvalidInputError);
      await assert.rejects(store.deleteRuntime("Secret", name), InvalidInputError);
      await assert.rejects(store.writeInput({ ...listener("ok"), metadata: { name } } as Listener), InvalidInputError);
    }
    assert.equal(await fs.readFile(victim, "utf8"), "precious\n");
  });

  test("names that fit keep their file name; a 253-character name gets a shortened one, unique and under 255 bytes", () => {
    assert.equal(resourceFileName("Listener", "web"), "Listener-web.yaml");
    const fits = "a".repeat(255 - "Listener-.yaml".length);
    assert.equal(resourceFileName("Listener", fits), `Listener-${fits}.yaml`);
    const long1 = `${"a".repeat(252)}b`;
    const long2 = `${"a".repeat(252)}c`;
    for (const name of [long1, long2, `${fits}a`]) {
      const file = resourceFileName("AccessGrant", name);
      assert.ok(Buffer.byteLength(file) <= 255, file);
      assert.match(file, /^AccessGrant-a+_[0-9a-f]{16}\.yaml$/);
    }
    assert.notEqual(resourceFileName("Listener", long1), resourceFileName("Listener", long2));
  });

  test("a resource with a 253-character name is written, read, listed and deleted", async () => {
    const store = await newStore();
    const name = `${"x".repeat(200)}.${"y".repeat(52)}`;
    assert.equal(name.length, 253);
    await store.createInput(listener(name));
    assert.equal((await store.getInput("Listener", name))?.metadata.name, name);
    assert.deepEqual((await store.listInput("Listener")).map((l) => l.metadata.name), [name]);
    await store.writeRuntime(listener(name));
    assert.equal((await store.getRuntime("Listener", name))?.metadata.name, name);
    assert.equal(await store.deleteInput("Listener", name), true);
    assert.deepEqual(await store.listInput("Listener"), []);
  });

  test("a temp file name fits even for the longest file name", () => {
    const long = path.join(root, resourceFileName("Listener", "z".repeat(253)));
    assert.ok(Buffer.byteLength(path.basename(tempFileName(long))) <= 255);
  });

  test("the name pattern does not backtrack: a long invalid name is refused at once", () => {
    const started = Date.now();
    const { problems } = parseDocuments(`apiVersion: ${API_VERSION}\nkind: Site\nmetadata:\n  name: ${"a".repeat(40)}-\n`, "in.yaml");
    assert.equal(problems.length, 1);
    assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
  });
});

describe("bad files are problems, not failures", () => {
  test("an alias bomb is skipped and named; the other files are read", async () => {
    const store = await newStore();
    await fs.writeFile(path.join(store.paths.inputResources, "bomb.yaml"), ALIAS_BOMB);
    await store.writeInput(listener("web"));
    const snapshot = await store.readInput();
    assert.deepEqual(snapshot.resources.map((r) => r.metadata.name), ["web"]);
    assert.equal(snapshot.problems.length, 1);
    assert.match(snapshot.problems[0]!, /^input\/resources\/bomb\.yaml: .*alias/i);
    assert.equal((await store.getInput("Listener", "web"))?.metadata.name, "web");
  });

  test("a file over the limit is refused unread, naming file and limit", async () => {
    const store = await newStore();
    const big = path.join(store.paths.inputResources, "big.yaml");
    await fs.writeFile(big, "");
    await fs.truncate(big, 200 * 1024 * 1024); // sparse: 200 MiB of nothing, instantly
    await store.writeInput(listener("web"));
    const started = Date.now();
    const snapshot = await store.readInput();
    assert.ok(Date.now() - started < 2000, "the big file is not read");
    assert.deepEqual(snapshot.resources.map((r) => r.metadata.name), ["web"]);
    assert.match(snapshot.problems.join("\n"), /input\/resources\/big\.yaml: .*200 MiB; at most 3 MiB/);
  });

  test("a FIFO, a directory or a link to /dev/zero in input/resources is skipped, not waited on", async () => {
    const store = await newStore();
    execFileSync("mkfifo", [path.join(store.paths.inputResources, "fifo.yaml")]);
    await fs.mkdir(path.join(store.paths.inputResources, "dir.yaml"));
    await fs.symlink("/dev/zero", path.join(store.paths.inputResources, "zero.yaml"));
    await store.writeInput(listener("web"));
    const snapshot = await store.readInput();
    assert.deepEqual(snapshot.resources.map((r) => r.metadata.name), ["web"]);
    assert.equal(snapshot.problems.length, 3, snapshot.problems.join("\n"));
    for (const name of ["fifo", "dir", "zero"]) assert.match(snapshot.problems.join("\n"), new RegExp(`input/resources/${name}\\.yaml: cannot be read`));
  });

  test("a runtime file over the limit is treated as missing, not read", async () => {
    const store = await newStore();
    await fs.symlink("/dev/zero", path.join(store.paths.runtimeResources, "Listener-web.yaml"));
    assert.equal(await store.getRuntime("Listener", "web"), undefined);
    assert.deepEqual(await store.listRuntime("Listener"), []);
  });
});

describe("parsing off the main thread (the site process)", () => {
  /** Within the size limits, yet seconds of parsing on a busy machine. */
  const slow = `[${Array.from({ length: 300_000 }, () => "1").join(",")}]`;

  test("gives what parseDocuments gives, alias bombs included", async () => {
    const parser = new OffThreadParser();
    try {
      const valid = `apiVersion: ${API_VERSION}\nkind: Listener\nmetadata: {name: web}\nspec: {routingKey: web, host: 127.0.0.1, port: 8080}\n`;
      for (const text of [valid, ALIAS_BOMB, `${valid}---\nkind: Nope\n`, "{"]) {
        assert.deepEqual(await parser.parse(text, "f.yaml"), parseDocuments(text, "f.yaml"));
      }
    } finally {
      await parser.close();
    }
  });

  test("a file of a few KiB is parsed without a worker; a worker for a larger one ends when idle", async () => {
    const parser = new OffThreadParser(20_000, 200);
    try {
      const valid = `apiVersion: ${API_VERSION}\nkind: Listener\nmetadata: {name: web}\nspec: {routingKey: web, host: 127.0.0.1, port: 8080}\n`;
      assert.equal((await parser.parse(valid, "small.yaml")).resources.length, 1);
      assert.equal(parser.workerRunning, false, "no worker for a small file");
      const large = `${valid}${"#".repeat(INLINE_PARSE_MAX_BYTES)}\n`;
      assert.equal((await parser.parse(large, "large.yaml")).resources.length, 1);
      assert.equal(parser.workerRunning, true, "a worker for a large file");
      const deadline = Date.now() + 5_000;
      while (parser.workerRunning && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(parser.workerRunning, false, "the idle worker is ended");
    } finally {
      await parser.close();
    }
  });

  test("the event loop keeps running while a slow file is parsed", async () => {
    const parser = new OffThreadParser();
    try {
      await parser.parse("", "warm-up.yaml");
      let last = performance.now();
      let longestGap = 0;
      const ticker = setInterval(() => {
        const now = performance.now();
        longestGap = Math.max(longestGap, now - last);
        last = now;
      }, 10);
      const started = performance.now();
      const result = await parser.parse(slow, "slow.yaml");
      clearInterval(ticker);
      assert.equal(result.problems.length, 1, "a list is not a resource");
      assert.ok(longestGap < 400, `the event loop stalled for ${Math.round(longestGap)} ms during a ${Math.round(performance.now() - started)} ms parse`);
    } finally {
      await parser.close();
    }
  });

  test("a parse that takes too long is abandoned and reported; the next one works", async () => {
    const parser = new OffThreadParser(50);
    try {
      const result = await parser.parse(slow, "slow.yaml");
      const problem = "slow.yaml: could not be parsed within 0 s, so it is skipped";
      assert.deepEqual(result, { resources: [], problems: [problem], fileProblems: [problem], rejected: [] });
      assert.deepEqual(await parser.parse("{", "next.yaml"), parseDocuments("{", "next.yaml"));
    } finally {
      await parser.close();
    }
  });

  test("the store uses the parser it is given for input files", async () => {
    const store = new LocalStore(new SitePaths(path.join(root, `home-${++homes}`), "west"), {
      parse: async (_text, source) => ({ resources: [], problems: [`${source}: parsed elsewhere`], fileProblems: [`${source}: parsed elsewhere`], rejected: [] }),
    });
    await store.ensureDirectories();
    await fs.writeFile(path.join(store.paths.inputResources, "x.yaml"), "a: b\n");
    assert.deepEqual((await store.readInput()).problems, ["input/resources/x.yaml: parsed elsewhere"]);
  });
});

describe("concurrent writers", () => {
  test("of ten concurrent creates of one resource exactly one succeeds", async () => {
    const store = await newStore();
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => store.createInput(listener("same", 9000 + i))));
    const won = results.filter((r) => r.status === "fulfilled");
    assert.equal(won.length, 1);
    for (const r of results) if (r.status === "rejected") assert.match(String(r.reason), /already exists/);
  });

  test("the input lock serialises read-modify-write: no increment is lost", async () => {
    const store = await newStore();
    await store.writeInput({ ...listener("web"), metadata: { name: "web", generation: 1 } });
    await Promise.all(
      Array.from({ length: 10 }, () =>
        store.withInputLock(async () => {
          const current = await store.getInput("Listener", "web");
          await new Promise((resolve) => setImmediate(resolve));
          await store.writeInput({ ...current!, metadata: { ...current!.metadata, generation: current!.metadata.generation! + 1 } });
        }),
      ),
    );
    assert.equal((await store.getInput("Listener", "web"))?.metadata.generation, 11);
    await assert.rejects(fs.stat(store.paths.inputLock), "the lock is released");
  });

  test("a lock left by a dead process is taken over", async () => {
    const store = await newStore();
    await fs.writeFile(store.paths.inputLock, `${deadPid()} 0123456789abcdef\n`);
    assert.equal(await store.withInputLock(async () => "ran", 2000), "ran");
  });

  test("a lock held by a live process is waited for, then named in a clear error", async () => {
    const store = await newStore();
    await fs.writeFile(store.paths.inputLock, `${process.pid} someone-else\n`);
    const started = Date.now();
    await assert.rejects(store.withInputLock(async () => "ran", 300), (err: unknown) => {
      assert.ok(err instanceof SkupperError && err.exitCode === 1);
      assert.match(err.message, new RegExp(`another skupper command \\(pid ${process.pid}\\).*remove ${store.paths.inputLock.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
      return true;
    });
    assert.ok(Date.now() - started < 3000);
    assert.match(await fs.readFile(store.paths.inputLock, "utf8"), /someone-else/, "another holder's lock is left alone");
  });
});

describe("temp files", () => {
  test("temp files name their writer; those of dead writers and old-format ones are removed, a live writer's kept", async () => {
    const store = await newStore();
    const live = path.basename(tempFileName(path.join(store.paths.inputResources, "Listener-a.yaml")));
    assert.match(live, new RegExp(`^\\.Listener-a\\.yaml\\.${process.pid}\\.[0-9a-f]{12}\\.tmp$`));
    const dead = `.Listener-b.yaml.${deadPid()}.0123456789ab.tmp`;
    const oldFormat = ".tls.key.0123456789ab.tmp";
    const keyDir = path.join(store.paths.issuers, "skupper-site-ca");
    await fs.mkdir(keyDir, { recursive: true });
    await fs.writeFile(path.join(store.paths.inputResources, live), "x");
    await fs.writeFile(path.join(store.paths.inputResources, dead), "x");
    await fs.writeFile(path.join(keyDir, oldFormat), "x");
    await fs.writeFile(path.join(store.paths.inputResources, ".keep.me"), "x");
    const removed = (await removeStaleTempFiles(store.paths.root)).map((f) => path.basename(f)).sort();
    assert.deepEqual(removed, [dead, oldFormat].sort());
    assert.deepEqual((await fs.readdir(store.paths.inputResources)).sort(), [".keep.me", live].sort());
  });
});

describe("the input watcher", () => {
  test("is re-created after an error (Node.js closes a watcher that fails)", async () => {
    const store = await newStore();
    const watchers: FSWatcher[] = [];
    const recordingWatch = ((...args: Parameters<typeof watch>) => {
      const watcher = watch(...args);
      watchers.push(watcher);
      return watcher;
    }) as typeof watch;
    let changes = 0;
    const stop = store.watchInput(() => changes++, 10, recordingWatch);
    try {
      assert.equal(watchers.length, 1);
      watchers[0]!.close();
      watchers[0]!.emit("error", Object.assign(new Error("EIO: i/o error, watch"), { code: "EIO" }));
      await eventually("a new watcher", () => watchers.length === 2, 5000);
      await new Promise((resolve) => setTimeout(resolve, 100)); // the re-watch reports a change of its own; let it pass
      const before = changes;
      assert.ok(before >= 1, "the re-watch reports that anything may have changed");
      await store.writeInput(listener("after-error"));
      await eventually("the change after the error to be reported by the new watcher", () => changes > before, 5000);
    } finally {
      stop();
    }
  });

  test("keeps reporting changes after its directory is removed and re-created", async () => {
    const store = await newStore();
    let changes = 0;
    const stop = store.watchInput(() => changes++, 10);
    try {
      await store.writeInput(listener("one"));
      await eventually("a change to be reported", () => changes > 0, 5000);
      await fs.rm(store.paths.inputResources, { recursive: true });
      await fs.mkdir(store.paths.inputResources);
      // The watcher may re-create the directory itself; wait until it watches the new one, and
      // then check once more, so that the one change report of the re-watch cannot pass for it.
      let probes = 0;
      const probe = async () => {
        const before = changes;
        await store.writeInput(listener(`probe-${++probes}`));
        return eventually("a change", () => changes > before, 500).catch(() => false);
      };
      await eventually("the watcher to watch the new directory", probe, 10_000, 100);
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.ok(await probe(), "a later change is reported too");
    } finally {
      stop();
    }
  });
});
