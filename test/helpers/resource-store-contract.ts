/**
 * What every ResourceStore must do (the semantics documented on the interface in
 * src/platform/types.ts), as a suite any implementation runs against itself:
 *
 *   describeResourceStoreContract("LocalResourceStore", async () => ({ store, close }));
 *
 * It assumes nothing an implementation may do differently: resourceVersion is opaque, list
 * order is free, watch events may come late and a burst of changes to one resource may be
 * reported by fewer events, as long as the state after the last change is reported. Status
 * writes may or may not be reported, so nothing here depends on it.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { API_VERSION, type Listener, type ListenerStatus, type Secret } from "../../src/api/index.js";
import { AlreadyExistsError, ConflictError, NotFoundError } from "../../src/common/errors.js";
import type { ResourceStore, Unwatch, WatchEvent, WatchEventType } from "../../src/platform/types.js";

export interface OpenedResourceStore {
  store: ResourceStore;
  close(): Promise<void>;
}

/** How long a watch event may take to arrive. */
const EVENT_TIMEOUT_MS = 10_000;

export interface ContractOptions {
  /** Whether a deleted resource with status stays, with deletionTimestamp, until finalize (default true). */
  holdsDeleted?: boolean;
}

export function describeResourceStoreContract(name: string, open: () => Promise<OpenedResourceStore>, options: ContractOptions = {}): void {
  const holdsDeleted = options.holdsDeleted ?? true;
  /** A test body run against a freshly opened store, closed afterwards whatever happens. */
  const withStore = (body: (store: ResourceStore) => Promise<void>) => async () => {
    const opened = await open();
    try {
      await body(opened.store);
    } finally {
      await opened.close();
    }
  };

  describe(`ResourceStore contract: ${name}`, () => {
    describe("create, get and list", () => {
      test(
        "create assigns resourceVersion and generation 1 (uid and creationTimestamp by the first status write at the latest); get and list return what was stored",
        withStore(async (store) => {
          const created = await store.create(listener("web"));
          assert.equal(created.metadata.name, "web");
          assert.deepEqual(created.spec, listener("web").spec);
          assert.equal(typeof created.metadata.resourceVersion, "string");
          assert.notEqual(created.metadata.resourceVersion, "");
          assert.equal(created.metadata.generation, 1);
          assert.deepEqual(await store.get("Listener", "web"), created);
          assert.deepEqual(await store.list("Listener"), [created]);
        }),
      );

      test(
        "create of an existing kind and name throws AlreadyExistsError; the same name of another kind is another resource",
        withStore(async (store) => {
          await store.create(listener("web"));
          await assert.rejects(store.create(listener("web", 9090)), AlreadyExistsError);
          assert.equal((await store.get("Listener", "web"))?.spec.port, 8080);
          await store.create(secret("web", "a"));
          assert.equal((await store.list("Secret")).length, 1);
          assert.equal((await store.list("Listener")).length, 1);
        }),
      );

      test(
        "get of a missing resource is undefined; list returns every resource of the kind asked for, and only those",
        withStore(async (store) => {
          assert.equal(await store.get("Listener", "none"), undefined);
          assert.deepEqual(await store.list("Connector"), []);
          for (const name of ["c", "a", "b"]) await store.create(listener(name));
          await store.create(secret("d", "x"));
          assert.deepEqual(names(await store.list("Listener")), ["a", "b", "c"]);
          assert.deepEqual(await store.list("Connector"), []);
        }),
      );

      test(
        "what a caller gives or gets is its own copy: changing it does not change the store",
        withStore(async (store) => {
          const input = listener("web");
          const created = await store.create(input);
          input.spec.port = 1;
          created.spec.port = 2;
          const got = await store.get("Listener", "web");
          assert.ok(got);
          got.spec.port = 3;
          (await store.list("Listener"))[0]!.spec.port = 4;
          assert.equal((await store.get("Listener", "web"))?.spec.port, 8080);
        }),
      );
    });

    describe("generation", () => {
      test(
        "advances when the spec changes, not when only metadata or status does; a client's generation is ignored",
        withStore(async (store) => {
          const created = await store.create({ ...listener("web"), metadata: { name: "web", generation: 7 } });
          assert.equal(created.metadata.generation, 1);
          const labelled = await store.update({ ...created, metadata: { ...created.metadata, labels: { team: "a" } } });
          assert.equal(labelled.metadata.generation, 1, "a label is not desired state");
          assert.deepEqual(labelled.metadata.labels, { team: "a" });
          const changed = await store.update({ ...labelled, spec: { ...labelled.spec, port: 9090 } });
          assert.equal(changed.metadata.generation, 2);
          const withStatus = await store.updateStatus("Listener", "web", ready(2));
          assert.equal(withStatus?.metadata.generation, 2, "status is not desired state");
          const forged = await store.update({ ...changed, metadata: { ...changed.metadata, generation: 99, resourceVersion: undefined } });
          assert.equal(forged.metadata.generation, 2);
          assert.equal((await store.get("Listener", "web"))?.metadata.generation, 2);
        }),
      );

      test(
        "counts changes of everything but metadata and status: a Secret's data",
        withStore(async (store) => {
          const created = await store.create(secret("creds", "one"));
          const updated = await store.update({ ...created, data: { token: base64("two") } });
          assert.equal(updated.metadata.generation, 2);
        }),
      );
    });

    describe("resourceVersion", () => {
      test(
        "changes on every write of desired state or metadata (a status write may change it too)",
        withStore(async (store) => {
          const created = await store.create(listener("web"));
          const updated = await store.update({ ...created, spec: { ...created.spec, port: 9090 } });
          const labelled = await store.update({ ...updated, metadata: { ...updated.metadata, labels: { team: "a" } } });
          const versions = [created, updated, labelled].map((r) => r?.metadata.resourceVersion);
          assert.equal(new Set(versions).size, 3, `versions ${versions.join(", ")}`);
          const withStatus = await store.updateStatus("Listener", "web", ready(2));
          assert.equal((await store.get("Listener", "web"))?.metadata.resourceVersion, withStatus?.metadata.resourceVersion);
        }),
      );

      test(
        "update with a stale resourceVersion throws ConflictError and changes nothing; without one it is unconditional",
        withStore(async (store) => {
          const created = await store.create(listener("web"));
          await store.update({ ...created, metadata: { ...created.metadata, labels: { by: "another-client" } } });
          await assert.rejects(store.update({ ...created, spec: { ...created.spec, port: 1111 } }), ConflictError);
          assert.equal((await store.get("Listener", "web"))?.spec.port, 8080);
          const current = await store.get("Listener", "web");
          assert.ok(current);
          const updated = await store.update({ ...current, spec: { ...current.spec, port: 2222 } });
          assert.equal(updated.spec.port, 2222);
          const unconditional = await store.update({ ...listener("web", 3333) });
          assert.equal(unconditional.spec.port, 3333);
        }),
      );

      test(
        "update of a missing resource throws NotFoundError",
        withStore(async (store) => {
          await assert.rejects(store.update(listener("none")), NotFoundError);
          assert.equal(await store.get("Listener", "none"), undefined);
        }),
      );

      test(
        "uid and creationTimestamp stay as the store assigned them",
        withStore(async (store) => {
          await store.create(listener("web"));
          const first = await store.updateStatus("Listener", "web", ready(1));
          assert.ok(first?.metadata.uid, "uid after the first status write");
          assert.ok(first?.metadata.creationTimestamp, "creationTimestamp after the first status write");
          await store.update({ ...listener("web", 9090) });
          await store.updateStatus("Listener", "web", ready(2));
          const current = await store.get("Listener", "web");
          assert.equal(current?.metadata.uid, first?.metadata.uid);
          assert.equal(current?.metadata.creationTimestamp, first?.metadata.creationTimestamp);
        }),
      );
    });

    describe("status", () => {
      test(
        "create and update ignore status; updateStatus changes only status",
        withStore(async (store) => {
          const created = await store.create({ ...listener("web"), status: ready(5) });
          assert.equal(created.status, undefined);
          assert.equal((await store.get("Listener", "web"))?.status, undefined);
          const withStatus = await store.updateStatus("Listener", "web", ready(1));
          assert.deepEqual(withStatus?.status, ready(1));
          assert.deepEqual(withStatus?.spec, created.spec);
          const updated = await store.update({ ...listener("web", 9090), status: { status: "Error", message: "from a client" } });
          assert.deepEqual(updated.status, ready(1), "update keeps the stored status");
          assert.equal(updated.spec.port, 9090);
          const current = await store.get("Listener", "web");
          assert.deepEqual(current?.status, ready(1));
          assert.equal(current?.spec.port, 9090);
        }),
      );

      test(
        "updateStatus replaces the whole status",
        withStore(async (store) => {
          await store.create(listener("web"));
          await store.updateStatus("Listener", "web", { ...ready(1), hasMatchingConnector: true });
          const replaced = await store.updateStatus("Listener", "web", { status: "Pending", message: "waiting", observedGeneration: 1 });
          assert.deepEqual(replaced?.status, { status: "Pending", message: "waiting", observedGeneration: 1 });
        }),
      );

      test(
        "updateStatus of a missing resource returns undefined and creates nothing",
        withStore(async (store) => {
          assert.equal(await store.updateStatus("Listener", "none", ready(1)), undefined);
          assert.equal(await store.get("Listener", "none"), undefined);
          assert.deepEqual(await store.list("Listener"), []);
        }),
      );
    });

    describe("delete and finalize", () => {
      test(
        "a resource never given status disappears at once; delete of a missing one returns false",
        withStore(async (store) => {
          await store.create(listener("web"));
          assert.equal(await store.delete("Listener", "web"), true);
          assert.equal(await store.get("Listener", "web"), undefined);
          assert.deepEqual(await store.list("Listener"), []);
          assert.equal(await store.delete("Listener", "web"), false);
          await store.create(listener("web"));
        }),
      );

      test(
        holdsDeleted ? "a resource with status stays, with deletionTimestamp, until finalize" : "a resource with status disappears at once too; finalize then does nothing",
        withStore(async (store) => {
          await store.create(listener("web"));
          await store.updateStatus("Listener", "web", ready(1));
          assert.equal(await store.delete("Listener", "web"), true);
          const terminating = await store.get("Listener", "web");
          if (holdsDeleted) {
            assert.ok(terminating?.metadata.deletionTimestamp, "deletionTimestamp is set");
            assert.deepEqual(names(await store.list("Listener")), ["web"]);
          } else {
            assert.equal(terminating, undefined);
            assert.deepEqual(await store.list("Listener"), []);
          }
          // Whether it can be deleted again or created anew while being deleted is the store's choice.
          await store.finalize("Listener", "web");
          assert.equal(await store.get("Listener", "web"), undefined);
          assert.deepEqual(await store.list("Listener"), []);
          assert.equal(await store.delete("Listener", "web"), false);
          const again = await store.create(listener("web"));
          assert.equal(again.metadata.deletionTimestamp ?? undefined, undefined);
          assert.equal(again.metadata.generation, 1);
        }),
      );
    });

    describe("watch", () => {
      test(
        holdsDeleted ? "first reports added for each resource, and deleted for one being deleted" : "first reports added for each resource",
        withStore(async (store) => {
          await store.create(listener("a"));
          await store.create(secret("b", "x"));
          await store.create(listener("gone"));
          await store.updateStatus("Listener", "gone", ready(1));
          await store.delete("Listener", "gone");
          const watch = new WatchRecorder(store);
          try {
            await watch.next({ type: "added", kind: "Listener", name: "a" });
            await watch.next({ type: "added", kind: "Secret", name: "b" });
            if (holdsDeleted) await watch.next({ type: "deleted", kind: "Listener", name: "gone" });
          } finally {
            watch.stop();
          }
        }),
      );

      test(
        "reports each create, update and delete",
        withStore(async (store) => {
          const watch = new WatchRecorder(store);
          try {
            let mark = watch.mark();
            const created = await store.create(listener("web"));
            await watch.next({ type: "added", kind: "Listener", name: "web" }, mark);

            mark = watch.mark();
            await store.update({ ...created, spec: { ...created.spec, port: 9090 } });
            await watch.next({ type: "modified", kind: "Listener", name: "web" }, mark);

            await store.updateStatus("Listener", "web", ready(2));
            mark = watch.mark();
            await store.delete("Listener", "web");
            await watch.next({ type: "deleted", kind: "Listener", name: "web" }, mark);

            // finalize may or may not be reported: the resource was reported deleted already.
            await store.finalize("Listener", "web");

            mark = watch.mark();
            await store.create(secret("creds", "x"));
            await store.delete("Secret", "creds");
            await watch.next({ type: "deleted", kind: "Secret", name: "creds" }, mark);
          } finally {
            watch.stop();
          }
        }),
      );

      test(
        "a burst of changes reports every resource and each one's last state",
        withStore(async (store) => {
          const watch = new WatchRecorder(store);
          try {
            const burst = ["a", "b", "c", "d", "e"];
            await Promise.all(burst.map((name) => store.create(listener(name))));
            for (const name of burst) await watch.next({ kind: "Listener", name });

            const mark = watch.mark();
            const created = await store.create(listener("short-lived"));
            await store.update({ ...created, spec: { ...created.spec, port: 9090 } });
            await store.delete("Listener", "short-lived");
            await watch.next({ type: "deleted", kind: "Listener", name: "short-lived" }, mark);
          } finally {
            watch.stop();
          }
        }),
      );

      test(
        "each watch gets the events; stopping one leaves the other",
        withStore(async (store) => {
          const first = new WatchRecorder(store);
          const second = new WatchRecorder(store);
          try {
            await store.create(listener("a"));
            await first.next({ type: "added", name: "a" });
            await second.next({ type: "added", name: "a" });
            first.stop();
            await store.create(listener("b"));
            await second.next({ type: "added", name: "b" });
          } finally {
            first.stop();
            second.stop();
          }
        }),
      );
    });
  });
}

// ---- fixtures ----

function listener(name: string, port = 8080): Listener {
  return { apiVersion: API_VERSION, kind: "Listener", metadata: { name }, spec: { routingKey: name, host: "127.0.0.1", port } };
}

function secret(name: string, token: string): Secret {
  return { apiVersion: "v1", kind: "Secret", metadata: { name }, type: "Opaque", data: { token: base64(token) } };
}

function ready(observedGeneration: number): ListenerStatus {
  return { observedGeneration, status: "Ready", message: "OK" };
}

function base64(text: string): string {
  return Buffer.from(text).toString("base64");
}

function names(resources: Array<{ metadata: { name: string } }>): string[] {
  return resources.map((r) => r.metadata.name).sort();
}

// ---- waiting for watch events ----

/** Records a watch's events and waits, for a bounded time, for one to arrive. */
export class WatchRecorder {
  readonly events: WatchEvent[] = [];
  private readonly arrived = new Set<() => void>();
  private readonly unwatch: Unwatch;

  constructor(store: ResourceStore) {
    this.unwatch = store.watch((event) => {
      this.events.push(event);
      for (const notify of this.arrived) notify();
    });
  }

  /** The position of the next event: pass it to `next` to wait only for events after this point. */
  mark(): number {
    return this.events.length;
  }

  /** The first event from position `from` on that has the given fields; fails after `timeoutMs`. */
  next(match: { type?: WatchEventType; kind?: string; name?: string }, from = 0, timeoutMs = EVENT_TIMEOUT_MS): Promise<WatchEvent> {
    const find = () =>
      this.events
        .slice(from)
        .find((e) => (match.type === undefined || e.type === match.type) && (match.kind === undefined || e.kind === match.kind) && (match.name === undefined || e.name === match.name));
    const found = find();
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const check = () => {
        const event = find();
        if (!event) return;
        done();
        resolve(event);
      };
      const timer = setTimeout(() => {
        done();
        const seen = this.events.slice(from).map((e) => `${e.type} ${e.kind}/${e.name}`);
        reject(new Error(`no watch event ${JSON.stringify(match)} within ${timeoutMs} ms; saw: ${seen.join(", ") || "nothing"}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.arrived.delete(check);
      };
      this.arrived.add(check);
    });
  }

  stop(): void {
    this.unwatch();
  }
}
