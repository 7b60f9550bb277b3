/**
 * The local platform (src/platform/local) on real files: the ResourceStore semantics
 * (generations, resourceVersion, status apart from spec, deletion until finalize, watch),
 * credentials, site state, and the request socket between CLI and site process.
 */
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import YAML from "yaml";
import { API_VERSION, NETWORK_STATUS_SCHEMA, type Link, type Listener, type NetworkStatus, type Secret } from "../../src/api/index.js";
import { AlreadyExistsError, ConflictError, InvalidInputError, SiteNotRunningError, SkupperError } from "../../src/common/errors.js";
import { setLogSink } from "../../src/common/log.js";
import {
  LocalResourceStore,
  LocalSiteState,
  MAX_REQUEST_BYTES,
  openLocalPlatform,
  openLocalSiteHost,
  requestSite,
  serveSiteRequests,
  SitePaths,
  socketLocation,
  type LocalPlatform,
} from "../../src/platform/local/index.js";
import type { LinkBundleRequest, SiteRequestHandler, WatchEvent } from "../../src/platform/types.js";
import { describeResourceStoreContract } from "../helpers/resource-store-contract.js";

const root = await fs.mkdtemp(path.join(os.tmpdir(), "skupper-local-"));
after(() => fs.rm(root, { recursive: true, force: true }));

let homes = 0;
function newHome(): string {
  return path.join(root, `h${++homes}`);
}

async function newPlatform(namespace = "west"): Promise<LocalPlatform> {
  const platform = openLocalPlatform({ home: newHome(), namespace });
  await platform.prepare();
  return platform;
}

// The contract twice: as the CLI uses the store (every call reads the files) and as the site
// process does (a watch runs, reads come from its snapshot).
describeResourceStoreContract("LocalResourceStore", async () => {
  const platform = await newPlatform();
  return { store: platform.resources, close: async () => {} };
});
describeResourceStoreContract("LocalResourceStore, watched", async () => {
  const platform = await newPlatform();
  const unwatch = platform.resources.watch(() => {});
  return { store: platform.resources, close: async () => unwatch() };
});

function listener(name: string, port = 8080, extra: Partial<Listener["metadata"]> = {}): Listener {
  return { apiVersion: API_VERSION, kind: "Listener", metadata: { name, ...extra }, spec: { routingKey: name, host: "127.0.0.1", port } };
}

function link(name: string): Link {
  return {
    apiVersion: API_VERSION,
    kind: "Link",
    metadata: { name },
    spec: { endpoints: [{ name: "inter-router", host: "10.0.0.1", port: "55671" }], tlsCredentials: name, cost: 1 },
  };
}

function secret(name: string): Secret {
  const b64 = (text: string) => Buffer.from(text).toString("base64");
  return { apiVersion: "v1", kind: "Secret", metadata: { name }, type: "kubernetes.io/tls", data: { "tls.crt": b64("cert"), "tls.key": b64("key"), "ca.crt": b64("ca") } };
}

function inputFile(platform: LocalPlatform, name: string): string {
  return path.join(platform.paths.inputResources, name);
}

async function mode(file: string): Promise<number> {
  return (await fs.stat(file)).mode & 0o777;
}

/** Resolves with the first event `predicate` accepts; fails after `timeoutMs`. */
function eventFrom(events: WatchEvent[], subscribe: (push: () => void) => void, predicate: (e: WatchEvent) => boolean, timeoutMs = 5000): Promise<WatchEvent> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const found = events.find(predicate);
      if (found) {
        clearTimeout(timer);
        resolve(found);
        return true;
      }
      return false;
    };
    const timer = setTimeout(() => reject(new Error(`no such event within ${timeoutMs} ms; got ${JSON.stringify(events)}`)), timeoutMs);
    if (!check()) subscribe(() => void check());
  });
}

/** A watch that records its events and lets a test await one. */
function record(store: LocalResourceStore) {
  const events: WatchEvent[] = [];
  const waiters = new Set<() => void>();
  const stop = store.watch((e) => {
    events.push(e);
    for (const w of [...waiters]) w();
  });
  return {
    events,
    stop,
    next: (type: WatchEvent["type"], name: string, timeoutMs?: number) =>
      eventFrom(events, (push) => waiters.add(push), (e) => e.type === type && e.name === name, timeoutMs),
    /** Events from now on only. */
    clear: () => events.splice(0),
  };
}

describe("resources: desired state", () => {
  test("create, get, update: generation advances only on a change of spec; labels alone keep it", async () => {
    const { resources } = await newPlatform();
    const created = await resources.create(listener("web"));
    assert.equal(created.metadata.generation, 1);
    assert.match(created.metadata.resourceVersion ?? "", /^[0-9a-f]{16}$/);
    assert.deepEqual(await resources.get("Listener", "web"), created);

    const moved = await resources.update({ ...created, spec: { ...created.spec, port: 9090 } });
    assert.equal(moved.metadata.generation, 2);
    assert.notEqual(moved.metadata.resourceVersion, created.metadata.resourceVersion);

    const labelled = await resources.update({ ...moved, metadata: { ...moved.metadata, labels: { team: "a" } } });
    assert.equal(labelled.metadata.generation, 2, "a change of labels is not a change of desired state");
    assert.notEqual(labelled.metadata.resourceVersion, moved.metadata.resourceVersion, "but it is a change of the resource");

    const same = await resources.update(labelled);
    assert.equal(same.metadata.generation, 2);
    assert.equal(same.metadata.resourceVersion, labelled.metadata.resourceVersion);
    assert.deepEqual(await resources.get("Listener", "web"), same);
    assert.deepEqual((await resources.list("Listener")).map((l) => l.metadata.name), ["web"]);
  });

  test("input files keep the desired state only, with generation, never what the store assigns", async () => {
    const platform = await newPlatform();
    const { resources } = platform;
    await resources.create({
      ...listener("web", 8080, { uid: "u", resourceVersion: "r", creationTimestamp: "2020-01-01T00:00:00Z", namespace: "west" }),
      status: { status: "Ready" },
    } as Listener);
    await resources.updateStatus("Listener", "web", { status: "Ready", message: "OK" });
    const text = await fs.readFile(inputFile(platform, "Listener-web.yaml"), "utf8");
    assert.deepEqual(YAML.parse(text).metadata, { name: "web", generation: 1 });
    assert.doesNotMatch(text, /status|resourceVersion|uid|creationTimestamp/);
    assert.equal(await mode(inputFile(platform, "Listener-web.yaml")), 0o600);
  });

  test("an update with a stale resourceVersion is a ConflictError; one without is unconditional", async () => {
    const { resources } = await newPlatform();
    const first = await resources.create(listener("web"));
    await resources.update({ ...first, spec: { ...first.spec, port: 9000 } });
    await assert.rejects(resources.update({ ...first, spec: { ...first.spec, port: 9001 } }), (err: unknown) => {
      assert.ok(err instanceof ConflictError);
      assert.equal(err.message, 'Listener "web" was changed by another command meanwhile; read it again and retry');
      assert.equal(err.exitCode, 1);
      return true;
    });
    const { resourceVersion: _rv, ...metadata } = first.metadata;
    const forced = await resources.update({ ...first, metadata, spec: { ...first.spec, port: 9002 } });
    assert.equal(forced.spec.port, 9002);
    assert.equal(forced.metadata.generation, 3);
  });

  test("an update of a resource that does not exist is a NotFoundError", async () => {
    const { resources } = await newPlatform();
    await assert.rejects(resources.update(listener("nope")), /Listener "nope" does not exist in namespace "west"/);
  });

  test("of two concurrent creates (two stores, as two commands) exactly one wins", async () => {
    const platform = await newPlatform();
    const other = openLocalPlatform({ home: platform.paths.home, namespace: "west" });
    const results = await Promise.allSettled([platform.resources.create(listener("same", 1)), other.resources.create(listener("same", 2))]);
    assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
    const lost = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
    assert.ok(lost.reason instanceof AlreadyExistsError);
    assert.equal(lost.reason.message, 'Listener "same" already exists in namespace "west"');
  });
});

describe("resources: status", () => {
  test("status is written apart from spec: update keeps status, updateStatus keeps spec", async () => {
    const platform = await newPlatform();
    const { resources } = platform;
    const created = await resources.create(listener("web"));
    assert.equal((created as { status?: unknown }).status, undefined);
    const withStatus = await resources.updateStatus("Listener", "web", { status: "Ready", message: "OK", observedGeneration: 1 });
    assert.deepEqual(withStatus?.status, { status: "Ready", message: "OK", observedGeneration: 1 });
    assert.equal(withStatus?.metadata.resourceVersion, created.metadata.resourceVersion, "a status write is not a change of desired state");

    const updated = await resources.update({ ...withStatus!, spec: { ...withStatus!.spec, port: 9090 }, status: { status: "Error" } });
    assert.deepEqual(updated.status, { status: "Ready", message: "OK", observedGeneration: 1 }, "update ignores the status it is given");
    assert.equal((await resources.get("Listener", "web"))?.spec.port, 9090);

    const restatused = await resources.updateStatus("Listener", "web", { status: "Ready", message: "OK", observedGeneration: 2 });
    assert.equal(restatused?.spec.port, 9090);
    assert.equal(restatused?.metadata.generation, 2);
    assert.doesNotMatch(await fs.readFile(inputFile(platform, "Listener-web.yaml"), "utf8"), /status/);
    assert.equal(await mode(path.join(platform.paths.runtimeResources, "Listener-web.yaml")), 0o600);
  });

  test("updateStatus of a resource that does not exist returns undefined and writes nothing", async () => {
    const platform = await newPlatform();
    assert.equal(await platform.resources.updateStatus("Listener", "ghost", { status: "Ready" }), undefined);
    assert.deepEqual(await fs.readdir(platform.paths.runtimeResources), []);
  });

  test("uid and creationTimestamp are assigned at the first status write and kept", async () => {
    const platform = await newPlatform();
    const { resources } = platform;
    const created = await resources.create(listener("web"));
    assert.equal(created.metadata.uid, undefined);
    const first = await resources.updateStatus("Listener", "web", { status: "Pending" });
    const uid = first?.metadata.uid;
    const creationTimestamp = first?.metadata.creationTimestamp;
    assert.match(uid ?? "", /^[0-9a-f-]{36}$/);
    assert.ok(creationTimestamp && !Number.isNaN(Date.parse(creationTimestamp)));
    await resources.update({ ...created, spec: { ...created.spec, port: 1234 } });
    assert.ok(await resources.updateStatus("Listener", "web", { status: "Pending" }));
    const runtimeFile = path.join(platform.paths.runtimeResources, "Listener-web.yaml");
    const inode = (await fs.stat(runtimeFile)).ino;
    assert.ok(await resources.updateStatus("Listener", "web", { status: "Pending" }));
    assert.equal((await fs.stat(runtimeFile)).ino, inode, "an unchanged status is not written again");
    const later = await resources.updateStatus("Listener", "web", { status: "Ready" });
    assert.equal(later?.metadata.uid, uid);
    assert.equal(later?.metadata.creationTimestamp, creationTimestamp);
    assert.equal((await resources.get("Listener", "web"))?.metadata.uid, uid);
    // On disk too, for the next process.
    const again = openLocalPlatform({ home: platform.paths.home, namespace: "west" });
    assert.equal((await again.resources.get("Listener", "web"))?.metadata.uid, uid);
  });

  test("a runtime file of before observedGeneration: its metadata.generation is the observedGeneration", async () => {
    const platform = await newPlatform();
    await fs.writeFile(inputFile(platform, "Listener-web.yaml"), YAML.stringify({ ...listener("web"), metadata: { name: "web", generation: 3 } }));
    await fs.writeFile(
      path.join(platform.paths.runtimeResources, "Listener-web.yaml"),
      YAML.stringify({ ...listener("web"), metadata: { name: "web", generation: 2 }, status: { status: "Ready", message: "OK" } }),
    );
    const web = await platform.resources.get("Listener", "web");
    assert.equal(web?.metadata.generation, 3);
    assert.deepEqual(web?.status, { status: "Ready", message: "OK", observedGeneration: 2 });
    assert.deepEqual((await platform.resources.list("Listener"))[0]?.status, web?.status);
  });
});

describe("resources: delete and finalize", () => {
  test("a deleted resource with status stays, with deletionTimestamp, until finalize", async () => {
    const platform = await newPlatform();
    const { resources } = platform;
    await resources.create(listener("web"));
    await resources.create(listener("plain"));
    await resources.updateStatus("Listener", "web", { status: "Ready" });
    assert.equal(await resources.delete("Listener", "web"), true);
    assert.equal(await resources.delete("Listener", "plain"), true);
    assert.equal(await resources.delete("Listener", "plain"), false);
    const deleted = await resources.get("Listener", "web");
    assert.ok(deleted?.metadata.deletionTimestamp && !Number.isNaN(Date.parse(deleted.metadata.deletionTimestamp)));
    assert.deepEqual(deleted?.status, { status: "Ready", observedGeneration: 1 });
    assert.equal(await resources.get("Listener", "plain"), undefined, "without status it is gone at once");
    assert.deepEqual((await resources.list("Listener")).map((l) => [l.metadata.name, !!l.metadata.deletionTimestamp]), [["web", true]]);
    assert.equal(await resources.updateStatus("Listener", "web", { status: "Error" }), undefined, "no status for a deleted resource");
    await resources.finalize("Listener", "web");
    assert.equal(await resources.get("Listener", "web"), undefined);
    assert.deepEqual(await resources.list("Listener"), []);
  });

  test("creating a deleted resource's name again starts without the old status", async () => {
    const { resources } = await newPlatform();
    await resources.create(listener("web"));
    const old = await resources.updateStatus("Listener", "web", { status: "Ready" });
    await resources.delete("Listener", "web");
    const created = await resources.create(listener("web", 9999));
    assert.equal((created as { status?: unknown }).status, undefined);
    assert.equal(created.metadata.deletionTimestamp, undefined);
    const fresh = await resources.updateStatus("Listener", "web", { status: "Pending" });
    assert.notEqual(fresh?.metadata.uid, old?.metadata.uid, "a new resource, a new uid");
    await resources.finalize("Listener", "web");
    assert.ok((await resources.get("Listener", "web"))?.status, "finalize leaves a resource that exists again alone");
  });

  test("a resource in a hand-written file with others is not cut out of it; alone in one, it is deleted with it", async () => {
    const platform = await newPlatform();
    const shared = inputFile(platform, "mine.yaml");
    await fs.writeFile(shared, `${YAML.stringify(listener("a"))}---\n${YAML.stringify(listener("b"))}`);
    await fs.writeFile(inputFile(platform, "alone.yaml"), YAML.stringify(listener("c")));
    await assert.rejects(platform.resources.delete("Listener", "a"), new RegExp(`Listener "a" is defined in ${shared.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} together with other resources`));
    assert.equal(await platform.resources.delete("Listener", "c"), true);
    assert.deepEqual((await fs.readdir(platform.paths.inputResources)).sort(), ["mine.yaml"]);
  });

  test("an update of a resource in a hand-written file: alone there, it moves to its own file; with others, it is refused", async () => {
    const platform = await newPlatform();
    const shared = inputFile(platform, "mine.yaml");
    await fs.writeFile(shared, `${YAML.stringify(listener("a"))}---
${YAML.stringify(listener("b"))}`);
    await fs.writeFile(inputFile(platform, "alone.json"), JSON.stringify(listener("c")));
    const a = await platform.resources.get("Listener", "a");
    await assert.rejects(platform.resources.update({ ...a!, spec: { ...a!.spec, port: 1 } }), /Listener "a" is defined in .*mine\.yaml together with other resources; change it in that file by hand/);
    const c = await platform.resources.get("Listener", "c");
    const updated = await platform.resources.update({ ...c!, spec: { ...c!.spec, port: 2 } });
    assert.equal(updated.metadata.generation, 2);
    assert.deepEqual((await fs.readdir(platform.paths.inputResources)).sort(), ["Listener-c.yaml", "mine.yaml"]);
    assert.deepEqual(await platform.resources.get("Listener", "c"), updated);
  });
});

describe("resources: watch", () => {
  test("starts with added for every resource and deleted for every status left without input", async () => {
    const platform = await newPlatform();
    await platform.resources.create(listener("one"));
    await platform.resources.create(listener("gone"));
    await platform.resources.updateStatus("Listener", "gone", { status: "Ready" });
    await platform.resources.delete("Listener", "gone");
    const site = openLocalSiteHost({ home: platform.paths.home, namespace: "west" });
    const watch = record(site.resources);
    try {
      await watch.next("added", "one");
      await watch.next("deleted", "gone");
      assert.deepEqual(watch.events, [
        { type: "added", kind: "Listener", name: "one" },
        { type: "deleted", kind: "Listener", name: "gone" },
      ]);
      await site.resources.finalize("Listener", "gone");
      assert.equal(await platform.resources.get("Listener", "gone"), undefined, "finalize removed the status file");
    } finally {
      watch.stop();
      await site.close();
    }
  });

  test("reports files edited by hand: added, modified, deleted", async () => {
    const platform = await newPlatform();
    const site = openLocalSiteHost({ home: platform.paths.home, namespace: "west" });
    const watch = record(site.resources);
    try {
      const file = inputFile(platform, "by-hand.yaml");
      await fs.writeFile(file, YAML.stringify(listener("hand")));
      await watch.next("added", "hand");
      await fs.writeFile(file, YAML.stringify(listener("hand", 7070)));
      await watch.next("modified", "hand");
      assert.equal((await site.resources.get("Listener", "hand"))?.spec.port, 7070);
      await fs.rm(file);
      await watch.next("deleted", "hand");
      assert.equal(await site.resources.get("Listener", "hand"), undefined);
    } finally {
      watch.stop();
      await site.close();
    }
  });

  test("reports writes through the store at once, and the file watch does not report them again", async () => {
    const platform = await newPlatform();
    const site = openLocalSiteHost({ home: platform.paths.home, namespace: "west" });
    const watch = record(site.resources);
    try {
      assert.deepEqual(await site.resources.list("Listener"), []); // the watch has loaded
      const created = await site.resources.create(listener("web"));
      assert.deepEqual(watch.events, [{ type: "added", kind: "Listener", name: "web" }], "reported before create returned");
      await site.resources.update({ ...created, spec: { ...created.spec, port: 1 } });
      assert.deepEqual(watch.events.at(-1), { type: "modified", kind: "Listener", name: "web" });
      const fromFiles = await platform.resources.get("Listener", "web");
      assert.deepEqual(await site.resources.get("Listener", "web"), fromFiles, "memory and files agree, resourceVersion included");
      await site.resources.updateStatus("Listener", "web", { status: "Ready", message: "", conditions: [] });
      assert.deepEqual(await site.resources.get("Listener", "web"), await platform.resources.get("Listener", "web"), "and so they do on status");
      await site.resources.create(link("other"));
      await site.resources.delete("Link", "other");
      assert.deepEqual(watch.events.at(-1), { type: "deleted", kind: "Link", name: "other" });
      // A change by hand afterwards: once it is reported, the file watch has read the store's
      // writes too, and reported nothing more for them.
      const before = watch.events.length;
      await fs.writeFile(inputFile(platform, "marker.yaml"), YAML.stringify(listener("marker")));
      await watch.next("added", "marker");
      assert.deepEqual(watch.events.slice(before), [{ type: "added", kind: "Listener", name: "marker" }]);
    } finally {
      watch.stop();
      await site.close();
    }
  });

  test("reports a change another process (the CLI) makes through its own store", async () => {
    const platform = await newPlatform();
    const site = openLocalSiteHost({ home: platform.paths.home, namespace: "west" });
    const watch = record(site.resources);
    try {
      const created = await platform.resources.create(listener("web"));
      await watch.next("added", "web");
      await platform.resources.update({ ...created, spec: { ...created.spec, port: 2 } });
      await watch.next("modified", "web");
      await platform.resources.delete("Listener", "web");
      await watch.next("deleted", "web");
    } finally {
      watch.stop();
      await site.close();
    }
  });

  test("while watching, reads come from memory, and every write of the store shows at once", async () => {
    const platform = await newPlatform();
    // A long debounce: a change by hand is not seen for a while, which shows reads are not from the files.
    const store = new LocalResourceStore(platform.paths, { debounceMs: 60_000 });
    const watch = record(store);
    try {
      assert.deepEqual(await store.list("Listener"), []);
      await fs.writeFile(inputFile(platform, "by-hand.yaml"), YAML.stringify(listener("hand")));
      assert.equal(await store.get("Listener", "hand"), undefined, "served from the snapshot");

      const created = await store.create(listener("web"));
      assert.deepEqual(await store.get("Listener", "web"), created);
      const updated = await store.update({ ...created, spec: { ...created.spec, port: 5 } });
      assert.equal((await store.list("Listener")).find((l) => l.metadata.name === "web")?.spec.port, 5);
      const statused = await store.updateStatus("Listener", "web", { status: "Ready" });
      assert.deepEqual((await store.get("Listener", "web"))?.status, statused?.status);
      assert.equal((await store.get("Listener", "web"))?.metadata.resourceVersion, updated.metadata.resourceVersion);
      await store.delete("Listener", "web");
      assert.ok((await store.get("Listener", "web"))?.metadata.deletionTimestamp);
      await store.finalize("Listener", "web");
      assert.equal(await store.get("Listener", "web"), undefined);
      // What the files say agrees.
      assert.equal(await platform.resources.get("Listener", "web"), undefined);
      assert.equal((await platform.resources.get("Listener", "hand"))?.metadata.name, "hand");
    } finally {
      watch.stop();
    }
    // Without a watch, the files are read again.
    assert.equal((await store.get("Listener", "hand"))?.metadata.name, "hand");
  });

  test("input problems are kept for the network status and logged once each", async () => {
    const platform = await newPlatform();
    await fs.writeFile(inputFile(platform, "bad.yaml"), "kind: Nope\n");
    const lines: string[] = [];
    setLogSink((line) => lines.push(line));
    const site = openLocalSiteHost({ home: platform.paths.home, namespace: "west" });
    const watch = record(site.resources);
    try {
      await site.resources.list("Listener");
      assert.equal(site.resources.problems().length, 1);
      assert.match(site.resources.problems()[0]!, /^input\/resources\/bad\.yaml: kind "Nope" is not supported/);
      await fs.writeFile(inputFile(platform, "good.yaml"), YAML.stringify(listener("good")));
      await watch.next("added", "good");
      assert.equal(lines.filter((l) => l.includes("WARN") && l.includes("input: input/resources/bad.yaml")).length, 1);
      await site.state.publishNetworkStatus(networkStatus());
      assert.deepEqual((await platform.networkStatus())?.inputProblems, site.resources.problems());
    } finally {
      setLogSink((line) => process.stderr.write(line + "\n"));
      watch.stop();
      await site.close();
    }
  });
});

describe("credentials", () => {
  test("CAs in runtime/issuers, certificates in runtime/certs, files 0600 in directories 0700", async () => {
    const platform = await newPlatform();
    const site = openLocalSiteHost({ home: platform.paths.home, namespace: "west" });
    const credentials = { ca: "CA PEM", cert: "CERT PEM", key: "KEY PEM" };
    await site.credentials.save("skupper-site-ca", credentials);
    await site.credentials.save("skupper-site-server", { ...credentials, cert: "SERVER PEM" });
    const issuer = path.join(platform.paths.runtime, "issuers", "skupper-site-ca");
    const cert = path.join(platform.paths.runtime, "certs", "skupper-site-server");
    assert.equal(await mode(issuer), 0o700);
    assert.equal(await mode(cert), 0o700);
    for (const dir of [issuer, cert]) {
      assert.deepEqual((await fs.readdir(dir)).sort(), ["ca.crt", "tls.crt", "tls.key"]);
      for (const file of ["ca.crt", "tls.crt", "tls.key"]) assert.equal(await mode(path.join(dir, file)), 0o600, file);
    }
    assert.deepEqual(await site.credentials.load("skupper-site-ca"), credentials);
    assert.equal((await site.credentials.load("skupper-site-server"))?.cert, "SERVER PEM");
    assert.equal(await site.credentials.load("skupper-grant-server-ca"), undefined);
    await site.credentials.remove("skupper-site-server");
    await assert.rejects(fs.stat(cert));
    assert.equal(await site.credentials.load("skupper-site-server"), undefined);
    for (const name of ["../../x", "a/b", "", "UPPER"]) {
      await assert.rejects(site.credentials.save(name, credentials), InvalidInputError, name);
      await assert.rejects(site.credentials.remove(name), InvalidInputError, name);
    }
    await site.close();
  });
});

function networkStatus(): NetworkStatus {
  return { schema: NETWORK_STATUS_SCHEMA, siteId: "id", siteName: "west", namespace: "west", version: "1", inputProblems: [] };
}

describe("site state", () => {
  test("the identity is created once and the same on every later start", async () => {
    const paths = new SitePaths(newHome(), "west");
    const state = new LocalSiteState(paths);
    const [a, b] = await Promise.all([state.identity(), state.identity()]);
    assert.deepEqual(a, b);
    assert.deepEqual(await new LocalSiteState(paths).identity(), a);
    assert.equal(await mode(paths.stateFile), 0o600);
    assert.deepEqual(JSON.parse(await fs.readFile(paths.stateFile, "utf8")), a);
  });

  test("a damaged state file gives a new identity, logged", async () => {
    const paths = new SitePaths(newHome(), "west");
    await fs.mkdir(paths.runtime, { recursive: true });
    await fs.writeFile(paths.stateFile, "{not json");
    const lines: string[] = [];
    setLogSink((line) => lines.push(line));
    try {
      const { siteId } = await new LocalSiteState(paths).identity();
      assert.match(siteId, /^[0-9a-f-]{36}$/);
      assert.ok(lines.some((l) => l.includes(`${paths.stateFile} is damaged; the site gets a new identity`)), lines.join("\n"));
      assert.equal((await new LocalSiteState(paths).identity()).siteId, siteId);
    } finally {
      setLogSink((line) => process.stderr.write(line + "\n"));
    }
  });

  test("the network status is written 0600, only when it changed, and read back by the platform", async () => {
    const platform = await newPlatform();
    const state = new LocalSiteState(platform.paths, { problems: () => ["input/resources/x.yaml: broken"] });
    assert.equal(await platform.networkStatus(), undefined);
    await state.publishNetworkStatus(networkStatus());
    const inode = (await fs.stat(platform.paths.networkStatusFile)).ino;
    assert.equal(await mode(platform.paths.networkStatusFile), 0o600);
    await state.publishNetworkStatus(networkStatus());
    assert.equal((await fs.stat(platform.paths.networkStatusFile)).ino, inode, "not written again");
    assert.deepEqual(await platform.networkStatus(), { ...networkStatus(), inputProblems: ["input/resources/x.yaml: broken"] });
  });

  test("pending redemptions survive a restart and are removed", async () => {
    const paths = new SitePaths(newHome(), "west");
    const state = new LocalSiteState(paths);
    const longName = `${"t".repeat(250)}.ab`;
    const credentials = { secret: secret("west"), links: [link("west")] };
    await state.savePendingRedemption("token-1", credentials);
    await state.savePendingRedemption(longName, credentials);
    assert.equal(await mode(path.join(paths.redemptions, "token-1.yaml")), 0o600);
    const pending = await new LocalSiteState(paths).pendingRedemptions();
    assert.deepEqual([...pending.keys()].sort(), ["token-1", longName].sort());
    assert.deepEqual(pending.get("token-1"), credentials);
    await state.removePendingRedemption("token-1");
    await state.removePendingRedemption(longName);
    assert.equal((await state.pendingRedemptions()).size, 0);
    await assert.rejects(state.savePendingRedemption("../escape", credentials), InvalidInputError);
    await assert.rejects(state.removePendingRedemption("a/b"), InvalidInputError);
  });

  test("a redemption file written before the token line (named after the token) is read", async () => {
    const paths = new SitePaths(newHome(), "west");
    await fs.mkdir(paths.redemptions, { recursive: true });
    await fs.writeFile(path.join(paths.redemptions, "old-token.yaml"), `---\n${YAML.stringify(secret("s"))}---\n${YAML.stringify(link("s"))}`);
    await fs.writeFile(path.join(paths.redemptions, "broken.yaml"), "kind: Nope\n");
    const pending = await new LocalSiteState(paths).pendingRedemptions();
    assert.deepEqual([...pending.keys()], ["old-token"]);
  });
});

describe("requests to the site process", () => {
  const bundle = { link: link("to-west"), secret: secret("to-west") };

  function handler(calls: LinkBundleRequest[] = []): SiteRequestHandler {
    return {
      generateLink: async (request) => {
        calls.push(request);
        return bundle;
      },
      revokeAccess: async () => undefined,
    };
  }

  /** Sends raw bytes and returns all the server answered before it closed. */
  function raw(file: string, data: string | Buffer, end = false): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection(file);
      const chunks: Buffer[] = [];
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error("the server did not close the connection"));
      }, 5000);
      socket.on("data", (c: Buffer) => chunks.push(c));
      socket.on("error", () => undefined);
      socket.on("close", () => {
        clearTimeout(timer);
        resolve(Buffer.concat(chunks).toString("utf8"));
      });
      socket.write(data, () => {
        if (end) socket.end();
      });
    });
  }

  test("a link bundle and revoke-access, round trip; the socket is runtime/site.sock, mode 0600", async () => {
    const platform = await newPlatform();
    const site = openLocalSiteHost({ home: platform.paths.home, namespace: "west" });
    const calls: LinkBundleRequest[] = [];
    const stop = await site.serveRequests(handler(calls));
    try {
      assert.equal(socketLocation(platform.paths).file, path.join(platform.paths.runtime, "site.sock"));
      assert.equal(await mode(platform.paths.socketFile), 0o600);
      assert.deepEqual(await platform.requests.generateLink({ name: "to-west", host: "west.example", cost: 2, tlsCredentials: "to-west" }), bundle);
      assert.deepEqual(calls, [{ name: "to-west", host: "west.example", cost: 2, tlsCredentials: "to-west" }]);
      assert.deepEqual(await platform.requests.generateLink({}), bundle);
      await platform.requests.revokeAccess();
    } finally {
      await stop();
      await site.close();
    }
    await assert.rejects(fs.lstat(platform.paths.socketFile), "the socket is removed when serving ends");
  });

  test("an error of the handler reaches the client with its code and exit code", async () => {
    const platform = await newPlatform();
    const stop = await serveSiteRequests(platform.paths, {
      generateLink: async () => {
        throw new InvalidInputError('host "x" is not one of the site\'s hosts');
      },
      revokeAccess: async () => {
        throw new Error("disk on fire");
      },
    });
    try {
      await assert.rejects(platform.requests.generateLink({ host: "x" }), (err: unknown) => {
        assert.ok(err instanceof SkupperError);
        assert.equal(err.exitCode, 2);
        assert.equal(err.code, "ERR_INVALID_INPUT");
        assert.equal(err.message, 'host "x" is not one of the site\'s hosts');
        return true;
      });
      const lines: string[] = [];
      setLogSink((line) => lines.push(line));
      try {
        await assert.rejects(platform.requests.revokeAccess(), (err: unknown) => err instanceof SkupperError && err.exitCode === 1 && /disk on fire/.test(err.message));
      } finally {
        setLogSink((line) => process.stderr.write(line + "\n"));
      }
    } finally {
      await stop();
    }
  });

  test("invalid requests are answered with exit code 2 before the handler runs", async () => {
    const platform = await newPlatform();
    const calls: LinkBundleRequest[] = [];
    const stop = await serveSiteRequests(platform.paths, handler(calls));
    try {
      const bad = [
        { op: "generate-link", request: { name: "../../etc" } },
        { op: "generate-link", request: { tlsCredentials: "A B" } },
        { op: "generate-link", request: { host: "" } },
        { op: "generate-link", request: { host: "h".repeat(254) } },
        { op: "generate-link", request: { cost: 0 } },
        { op: "generate-link", request: { cost: 1.5 } },
        { op: "generate-link", request: { cost: "2" } },
        { op: "generate-link", request: { extra: true } },
        { op: "generate-link", request: [] },
        { op: "revoke-access", now: true },
        { op: "delete-everything" },
        [],
      ];
      for (const request of bad) {
        const answer = JSON.parse(await raw(platform.paths.socketFile, `${JSON.stringify(request)}\n`));
        assert.equal(answer.ok, false, JSON.stringify(request));
        assert.equal(answer.error.exitCode, 2, JSON.stringify(request));
        assert.equal(answer.error.code, "ERR_INVALID_INPUT");
      }
      const notJson = JSON.parse(await raw(platform.paths.socketFile, "{nope\n"));
      assert.equal(notJson.error.exitCode, 2);
      const unfinished = JSON.parse(await raw(platform.paths.socketFile, '{"op":"revoke-access"}', true));
      assert.equal(unfinished.error.exitCode, 2, "a request without its newline");
      assert.deepEqual(calls, []);
      // The client checks the same rules before it sends anything.
      await assert.rejects(platform.requests.generateLink({ cost: -1 }), (err: unknown) => err instanceof InvalidInputError && err.exitCode === 2);
    } finally {
      await stop();
    }
  });

  test("an oversized request is refused and its connection closed", async () => {
    const platform = await newPlatform();
    const calls: LinkBundleRequest[] = [];
    const stop = await serveSiteRequests(platform.paths, handler(calls));
    try {
      const answer = await raw(platform.paths.socketFile, Buffer.alloc(MAX_REQUEST_BYTES + 1024, "x"));
      assert.equal(JSON.parse(answer).error.code, "ERR_TOO_LARGE");
      assert.deepEqual(calls, []);
      assert.deepEqual(await platform.requests.generateLink({}), bundle, "the server still serves");
    } finally {
      await stop();
    }
  });

  test("a request that does not arrive in time is dropped", async () => {
    const platform = await newPlatform();
    const stop = await serveSiteRequests(platform.paths, handler(), { requestDeadlineMs: 100 });
    try {
      const answer = await raw(platform.paths.socketFile, '{"op":');
      assert.equal(JSON.parse(answer).error.code, "ERR_TIMEOUT");
    } finally {
      await stop();
    }
  });

  test("without a site process: SiteNotRunningError, naming the command that starts it", async () => {
    const west = await newPlatform("west");
    await assert.rejects(west.requests.generateLink({}), (err: unknown) => {
      assert.ok(err instanceof SiteNotRunningError);
      assert.equal(err.message, 'The site process of namespace "west" is not running. Start it with "skupper -n west system start".');
      return true;
    });
    const byDefault = await newPlatform("default");
    // A socket file left by a process that died: nobody listens on it.
    const stale = net.createServer().listen(byDefault.paths.socketFile);
    await new Promise((resolve) => stale.once("listening", resolve));
    const copy = `${byDefault.paths.socketFile}.copy`;
    await fs.rename(byDefault.paths.socketFile, copy);
    await new Promise((resolve) => stale.close(resolve));
    await fs.rename(copy, byDefault.paths.socketFile);
    await assert.rejects(byDefault.requests.revokeAccess(), (err: unknown) => {
      assert.ok(err instanceof SiteNotRunningError);
      assert.equal(err.message, 'The site process of namespace "default" is not running. Start it with "skupper system start".');
      return true;
    });
    // The site process removes such a leftover and serves.
    const stop = await serveSiteRequests(byDefault.paths, handler());
    try {
      await byDefault.requests.revokeAccess();
    } finally {
      await stop();
    }
  });

  test("a site process that does not answer is a TimeoutError", async () => {
    const platform = await newPlatform();
    const stop = await serveSiteRequests(platform.paths, { generateLink: () => new Promise(() => undefined), revokeAccess: async () => undefined });
    try {
      await assert.rejects(requestSite(platform.paths, { op: "generate-link", request: {} }, { timeoutMs: 200 }), (err: unknown) => {
        assert.ok(err instanceof SkupperError && err.code === "ERR_TIMEOUT");
        assert.match(err.message, /The site process of namespace "west" did not answer within 0 s/);
        return true;
      });
    } finally {
      // The handler never ends; closing does not wait for it for ever.
      const started = Date.now();
      await stop();
      assert.ok(Date.now() - started < 4000);
    }
  });

  test("a namespace directory too deep for a socket path: the socket goes to a private directory in TMPDIR", async () => {
    const home = path.join(root, "deep", "d".repeat(120));
    const tmpdir = await fs.mkdtemp(path.join(os.tmpdir(), "skupper-sock-"));
    try {
      const platform = openLocalPlatform({ home, namespace: "west", requests: { tmpdir } });
      await platform.prepare();
      assert.ok(Buffer.byteLength(platform.paths.socketFile) > 100);
      const location = socketLocation(platform.paths, { tmpdir });
      const dir = path.join(tmpdir, `skupper-${process.getuid!()}`);
      assert.equal(location.privateDirectory, dir);
      assert.match(path.basename(location.file), /^[0-9a-f]{16}\.sock$/);
      const stop = await serveSiteRequests(platform.paths, handler(), { tmpdir });
      try {
        assert.equal(await mode(dir), 0o700);
        assert.equal(await mode(location.file), 0o600);
        assert.deepEqual(await platform.requests.generateLink({}), bundle);
      } finally {
        await stop();
      }
      // A directory others can write to is refused, by the server and by the client.
      await fs.chmod(dir, 0o755);
      await assert.rejects(serveSiteRequests(platform.paths, handler(), { tmpdir }), (err: unknown) => err instanceof SkupperError && err.code === "ERR_SOCKET_DIRECTORY");
      await assert.rejects(platform.requests.generateLink({}), (err: unknown) => err instanceof SkupperError && err.code === "ERR_SOCKET_DIRECTORY");
      // No directory at all: nothing serves.
      await fs.rm(dir, { recursive: true });
      await assert.rejects(platform.requests.generateLink({}), SiteNotRunningError);
    } finally {
      await fs.rm(tmpdir, { recursive: true, force: true });
    }
  });
});

describe("the platform", () => {
  test("prepare, describe, status of a stopped site, removeSiteState", async () => {
    const platform = await newPlatform();
    for (const dir of [platform.paths.root, platform.paths.inputResources, platform.paths.runtimeResources, platform.paths.logs]) {
      assert.equal(await mode(dir), 0o700, dir);
    }
    assert.equal(platform.name, "linux");
    assert.deepEqual(platform.runner.describe(), { location: platform.paths.root, log: platform.paths.logFile });
    assert.deepEqual(await platform.runner.status(), { running: false });
    assert.deepEqual(await platform.runner.stop(), {});
    await platform.resources.create(listener("web"));
    await platform.resources.updateStatus("Listener", "web", { status: "Ready" });
    await platform.removeSiteState({ all: false });
    await assert.rejects(fs.stat(platform.paths.runtime));
    assert.equal((await platform.resources.get("Listener", "web"))?.status, undefined, "input kept, status gone");
    await platform.removeSiteState({ all: true });
    await assert.rejects(fs.stat(platform.paths.input));
  });

  test("namespaces are checked", () => {
    assert.throws(() => openLocalPlatform({ home: newHome(), namespace: "../x" }), InvalidInputError);
  });
});
