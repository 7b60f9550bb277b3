/**
 * The KubernetesResourceStore against a real API server: the ResourceStore contract, with a
 * fresh namespace per test, then what only this store does. Skips, saying why, when no
 * cluster is available (see test/helpers/kube-cluster.ts).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { API_VERSION, type Listener, type Secret } from "../../src/api/index.js";
import { errorMessage, SkupperError } from "../../src/common/errors.js";
import {
  GENERATION_ANNOTATION,
  KubernetesResourceStore,
  kubernetesConfig,
  pluralOf,
  SKUPPER_FINALIZER,
  type KubeConfig,
  type KubernetesResourceStoreOptions,
} from "../../src/platform/kubernetes/index.js";
import { useCluster, kubectl, applyManifest } from "../helpers/kube-cluster.js";
import { crdsYaml, CUSTOM_RESOURCE_KINDS, customResourceDefinitions } from "../../src/api/index.js";
import { describeResourceStoreContract, WatchRecorder } from "../helpers/resource-store-contract.js";

const cluster = await useCluster();
const skip = "skip" in cluster ? cluster.skip : false;
let config: KubeConfig;
const namespaces = new Set<string>();

async function waitForCrds(): Promise<void> {
  const result = await kubectl(["wait", "--for", "condition=established", "--timeout=60s", ...customResourceDefinitions().map((crd) => `crd/${crd.metadata.name}`)], { timeoutMs: 70_000 });
  assert.equal(result.code, 0, result.stderr);
}

/** Removes this store's finalizers from every custom resource of the namespace, then deletes it without waiting. */
async function removeNamespace(namespace: string): Promise<void> {
  const custom = config.makeApiClient(CustomObjectsApi);
  for (const kind of CUSTOM_RESOURCE_KINDS) {
    const path = { group: "skupper.io", version: "v2alpha1", namespace, plural: pluralOf(kind) };
    try {
      const list = (await custom.listNamespacedCustomObject(path)) as { items: Array<{ metadata: { name: string; finalizers?: string[] } }> };
      for (const item of list.items) {
        if (!item.metadata.finalizers?.length) continue;
        item.metadata.finalizers = [];
        await custom.replaceNamespacedCustomObject({ ...path, name: item.metadata.name, body: item }).catch(() => undefined);
      }
    } catch {
      // The CRD may be missing (the test of that); nothing to remove then.
    }
  }
  await config.makeApiClient(CoreV1Api).deleteNamespace({ name: namespace }).catch(() => undefined);
  namespaces.delete(namespace);
}

async function openStore(options: KubernetesResourceStoreOptions = {}): Promise<{ store: KubernetesResourceStore; close: () => Promise<void> }> {
  const namespace = `skt-${randomBytes(4).toString("hex")}`;
  await config.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: namespace } } });
  namespaces.add(namespace);
  const store = new KubernetesResourceStore(config, { ...options, namespace });
  return { store, close: () => removeNamespace(namespace) };
}

describe("Kubernetes platform", { skip }, () => {
  before(async () => {
    if (skip) return;
    config = kubernetesConfig({ kubeconfig: (cluster as { kubeconfig: string }).kubeconfig });
    await applyManifest(crdsYaml());
    await waitForCrds();
  });

  after(async () => {
    for (const namespace of [...namespaces]) await removeNamespace(namespace);
  });

  describeResourceStoreContract("KubernetesResourceStore", () => openStore());

  describe("KubernetesResourceStore: what only it does", () => {
    test("a Secret's generation lives in an annotation the store advances on data changes and hides", async () => {
      const { store, close } = await openStore();
      try {
        const created = await store.create(secret("creds", "one"));
        assert.equal(created.metadata.generation, 1);
        assert.equal(created.metadata.annotations, undefined, "the annotation is not shown");
        assert.equal(await annotationOf(store.namespace, "creds"), "1");
        const labelled = await store.update({ ...created, metadata: { ...created.metadata, labels: { a: "b" }, annotations: { [GENERATION_ANNOTATION]: "40", mine: "x" } } });
        assert.equal(labelled.metadata.generation, 1, "metadata is not desired state; a client's annotation is ignored");
        assert.deepEqual(labelled.metadata.annotations, { mine: "x" });
        const changed = await store.update({ ...labelled, data: { token: Buffer.from("two").toString("base64") } });
        assert.equal(changed.metadata.generation, 2);
        const viaStringData = await store.update({ ...changed, data: undefined, stringData: { token: "three" } } as Secret);
        assert.equal(viaStringData.metadata.generation, 3);
        const same = await store.update({ ...viaStringData, stringData: { token: "three" } } as Secret);
        assert.equal(same.metadata.generation, 3, "stringData equal to the stored data is no change");
        assert.equal(await annotationOf(store.namespace, "creds"), "3");
      } finally {
        await close();
      }
    });

    test("the first status write adds the finalizer, hidden from clients and kept by their updates", async () => {
      const { store, close } = await openStore();
      try {
        await store.create(listener("web"));
        await store.updateStatus("Listener", "web", { status: "Ready", message: "OK", observedGeneration: 1 });
        assert.deepEqual(await finalizersOf(store.namespace, "listeners", "web"), [SKUPPER_FINALIZER]);
        const got = await store.get("Listener", "web");
        assert.equal(got?.metadata.finalizers, undefined);
        await store.update({ ...listener("web", 9090), metadata: { name: "web", finalizers: ["example.com/other"] } });
        assert.deepEqual((await finalizersOf(store.namespace, "listeners", "web")).sort(), ["example.com/other", SKUPPER_FINALIZER].sort());
        await store.update({ ...listener("web", 9090) });
        assert.deepEqual(await finalizersOf(store.namespace, "listeners", "web"), [SKUPPER_FINALIZER]);
      } finally {
        await close();
      }
    });

    test("a status write is not reported by watch (no feedback loop); a label change is", async () => {
      const { store, close } = await openStore();
      const watch = new WatchRecorder(store);
      try {
        const created = await store.create(listener("web"));
        await watch.next({ type: "added", name: "web" });
        let mark = watch.mark();
        await store.updateStatus("Listener", "web", { status: "Ready", message: "OK", observedGeneration: 1 });
        await store.updateStatus("Listener", "web", { status: "Pending", message: "again", observedGeneration: 1 });
        await store.update({ ...created, metadata: { name: "web", labels: { a: "b" } } });
        await watch.next({ type: "modified", name: "web" }, mark);
        assert.equal(watch.events.slice(mark).length, 1, `events after the status writes: ${JSON.stringify(watch.events.slice(mark))}`);
        mark = watch.mark();
        await sleep(500);
        assert.deepEqual(watch.events.slice(mark), []);
      } finally {
        watch.stop();
        await close();
      }
    });

    test("a watch resumes after the server closes its connection, without reporting the existing resources again", async () => {
      const { store, close } = await openStore({ watchTimeoutSeconds: 1 });
      const watch = new WatchRecorder(store);
      try {
        await store.create(listener("before"));
        await watch.next({ type: "added", name: "before" });
        await sleep(2_500); // each kind's connection was closed by the server at least once
        const mark = watch.mark();
        await store.create(listener("after"));
        await watch.next({ type: "added", name: "after" }, mark);
        await store.delete("Listener", "before");
        await watch.next({ type: "deleted", name: "before" }, mark);
        const again = watch.events.filter((e) => e.name === "before" && e.type === "added");
        assert.equal(again.length, 1, `"before" was reported added ${again.length} times`);
      } finally {
        watch.stop();
        await close();
      }
    });

    test("a namespace that does not exist is named in the error", async () => {
      const store = new KubernetesResourceStore(config, { namespace: `skt-none-${randomBytes(3).toString("hex")}` });
      await assert.rejects(store.create(listener("web")), (err: unknown) => err instanceof SkupperError && /Namespace "skt-none-[0-9a-f]+" does not exist/.test(err.message));
    });

    test("an API server that cannot be reached is named in the error", async () => {
      const unreachable = kubernetesConfig({ kubeconfig: (cluster as { kubeconfig: string }).kubeconfig });
      const current = unreachable.getCurrentCluster();
      assert.ok(current);
      unreachable.clusters = unreachable.clusters.map((c) => (c.name === current.name ? { ...c, server: "https://127.0.0.1:1" } : c));
      const store = new KubernetesResourceStore(unreachable, { namespace: "default" });
      await assert.rejects(store.list("Listener"), (err: unknown) => err instanceof SkupperError && err.code === "ERR_KUBERNETES_UNREACHABLE" && /https:\/\/127\.0\.0\.1:1/.test(err.message));
    });

    test("a user without the permission is told which one is missing", async () => {
      const { store, close } = await openStore();
      try {
        const ns = store.namespace;
        assert.equal((await kubectl(["-n", ns, "create", "serviceaccount", "nobody"])).code, 0);
        const token = await waitFor(async () => {
          const out = await kubectl(["-n", ns, "get", "secret", "-o", "jsonpath={.items[?(@.metadata.annotations.kubernetes\\.io/service-account\\.name=='nobody')].data.token}"]);
          return out.stdout.trim() ? Buffer.from(out.stdout.trim(), "base64").toString() : undefined;
        });
        const limited = kubernetesConfig({ kubeconfig: (cluster as { kubeconfig: string }).kubeconfig });
        const server = limited.getCurrentCluster();
        assert.ok(server);
        limited.loadFromOptions({
          clusters: [server],
          users: [{ name: "nobody", token }],
          contexts: [{ name: "nobody", cluster: server.name, user: "nobody", namespace: ns }],
          currentContext: "nobody",
        });
        const nobody = new KubernetesResourceStore(limited);
        await assert.rejects(nobody.list("Listener"), (err: unknown) => {
          assert.ok(err instanceof SkupperError, errorMessage(err));
          assert.equal(err.code, "ERR_KUBERNETES_FORBIDDEN");
          assert.match(err.message, new RegExp(`may not list listeners\\.skupper\\.io in namespace "${ns}"`));
          return true;
        });
      } finally {
        await close();
      }
    });

    test("without the CRDs, the error says to install them (runs last: it removes one CRD and puts it back)", async () => {
      const { store, close } = await openStore();
      try {
        const deleted = await kubectl(["delete", "crd", "routeraccesses.skupper.io", "--wait=true", "--timeout=60s"], { timeoutMs: 70_000 });
        assert.equal(deleted.code, 0, deleted.stderr);
        const err = await waitFor(async () => {
          try {
            await store.list("RouterAccess");
            return undefined;
          } catch (e) {
            return e;
          }
        });
        assert.ok(err instanceof SkupperError, errorMessage(err));
        assert.equal(err.code, "ERR_CRDS_MISSING");
        assert.match(err.message, /The Skupper CRDs are not installed in this cluster.*kubectl apply -f deploy\/kubernetes\/crds\.yaml/);
        assert.deepEqual(await store.list("Listener"), [], "other kinds still work");
      } finally {
        await applyManifest(crdsYaml());
        await waitForCrds();
        await close();
      }
    });
  });
});

async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`nothing within ${timeoutMs} ms`);
    await sleep(250);
  }
}

async function annotationOf(namespace: string, secretName: string): Promise<string> {
  const out = await kubectl(["-n", namespace, "get", "secret", secretName, "-o", "json"]);
  assert.equal(out.code, 0, out.stderr);
  return (JSON.parse(out.stdout) as { metadata: { annotations?: Record<string, string> } }).metadata.annotations?.[GENERATION_ANNOTATION] ?? "";
}

async function finalizersOf(namespace: string, plural: string, name: string): Promise<string[]> {
  const out = await kubectl(["-n", namespace, "get", `${plural}.skupper.io`, name, "-o", "json"]);
  assert.equal(out.code, 0, out.stderr);
  return (JSON.parse(out.stdout) as { metadata: { finalizers?: string[] } }).metadata.finalizers ?? [];
}

function listener(name: string, port = 8080): Listener {
  return { apiVersion: API_VERSION, kind: "Listener", metadata: { name }, spec: { routingKey: name, host: "127.0.0.1", port } };
}

function secret(name: string, token: string): Secret {
  return { apiVersion: "v1", kind: "Secret", metadata: { name }, type: "Opaque", data: { token: Buffer.from(token).toString("base64") } };
}
