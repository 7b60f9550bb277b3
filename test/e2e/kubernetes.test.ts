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
import {
  API_VERSION,
  crdsYaml,
  CUSTOM_RESOURCE_KINDS,
  customResourceDefinitions,
  NETWORK_STATUS_SCHEMA,
  pluralName,
  readNetworkStatus,
  type Link,
  type Listener,
  type NetworkStatus,
  type Secret,
} from "../../src/api/index.js";
import { errorMessage, SkupperError } from "../../src/common/errors.js";
import {
  GENERATION_ANNOTATION,
  KubernetesResourceStore,
  kubernetesConfig,
  SKUPPER_FINALIZER,
  type KubeConfig,
  type KubernetesResourceStoreOptions,
} from "../../src/platform/kubernetes/index.js";
import { useCluster, kubectl, applyManifest } from "../helpers/kube-cluster.js";
import { describeResourceStoreContract, WatchRecorder } from "../helpers/resource-store-contract.js";
import { createCA, describeCertificate, ensureCA, ensureLeaf, isIssuedBy } from "../../src/certs/index.js";
import { SiteController } from "../../src/controller/index.js";
import { slot } from "../../src/controller/reconcilers/site.js";
import {
  ACCESS_TOKEN_ANNOTATION,
  KubernetesCredentialStore,
  KubernetesSiteState,
  NETWORK_STATUS_CONFIGMAP,
  NETWORK_STATUS_KEY,
  PENDING_REDEMPTION_LABEL,
  redemptionSecretName,
  SITE_ID_KEY,
  SITE_STATE_CONFIGMAP,
} from "../../src/platform/kubernetes/index.js";
import type { SiteHost } from "../../src/platform/index.js";
import { fakeDataPlaneFactory } from "../helpers/fake-data-plane.js";
import { FakeGrantServer, linkAccessSite, listener as harnessListener, logLines } from "../helpers/controller-harness.js";

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
    const path = { group: "skupper.io", version: "v2alpha1", namespace, plural: pluralName(kind) };
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

/** A fresh namespace (removed after the test file), without a resource store. */
async function freshNamespace(): Promise<string> {
  const { store } = await openStore();
  return store.namespace;
}

/** A fresh namespace with the site's credential store and state on it. */
async function openSiteParts(): Promise<{ namespace: string; credentials: KubernetesCredentialStore; state: KubernetesSiteState }> {
  const namespace = await freshNamespace();
  return { namespace, credentials: new KubernetesCredentialStore(config, { namespace }), state: new KubernetesSiteState(config, { namespace }) };
}

async function kubectlOk(args: string[]): Promise<string> {
  const out = await kubectl(args);
  assert.equal(out.code, 0, out.stderr);
  return out.stdout;
}

async function kubectlJson<T>(args: string[]): Promise<T> {
  const out = await kubectl([...args, "-o", "json"]);
  assert.equal(out.code, 0, out.stderr);
  return JSON.parse(out.stdout) as T;
}

interface CoreJson {
  type?: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  data?: Record<string, string>;
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

  describeResourceStoreContract("KubernetesResourceStore", () => openStore(), { holdsDeleted: false });

  describe("KubernetesCredentialStore", () => {
    test("credentials round trip through a kubernetes.io/tls Secret named after them, replaced and removed", async () => {
      const { namespace, credentials } = await openSiteParts();
      assert.equal(await credentials.load("skupper-site-ca"), undefined);
      const first = await createCA("first CA");
      await credentials.save("skupper-site-ca", first);
      assert.deepEqual(await credentials.load("skupper-site-ca"), first);
      const secret = await kubectlJson<CoreJson>(["-n", namespace, "get", "secret", "skupper-site-ca"]);
      assert.equal(secret.type, "kubernetes.io/tls");
      assert.deepEqual(Object.keys(secret.data ?? {}).sort(), ["ca.crt", "tls.crt", "tls.key"]);
      assert.equal(secret.metadata.labels?.["app.kubernetes.io/managed-by"], "skupper");
      assert.equal(Buffer.from(secret.data?.["tls.key"] ?? "", "base64").toString(), first.key);

      const second = await createCA("second CA");
      await credentials.save("skupper-site-ca", second);
      assert.deepEqual(await credentials.load("skupper-site-ca"), second, "save replaces");
      await credentials.remove("skupper-site-ca");
      assert.equal(await credentials.load("skupper-site-ca"), undefined);
      await credentials.remove("skupper-site-ca"); // no error when missing
      await assert.rejects(credentials.load("../etc"), /credentials name "\.\.\/etc" is not valid/);
    });

    test("a Secret without all three keys is no credentials", async () => {
      const { namespace, credentials } = await openSiteParts();
      const ca = await createCA("partial");
      await applyManifest(JSON.stringify({ apiVersion: "v1", kind: "Secret", metadata: { name: "partial", namespace }, type: "Opaque", stringData: { "tls.crt": ca.cert, "ca.crt": ca.ca } }));
      assert.equal(await credentials.load("partial"), undefined);
    });

    test("ensureCA and ensureLeaf work through a slot over it: created once, then reused", async () => {
      const { credentials } = await openSiteParts();
      const ca = await ensureCA(slot(credentials, "skupper-site-ca"), "west site CA");
      assert.equal(ca.created, true);
      const again = await ensureCA(slot(credentials, "skupper-site-ca"), "west site CA");
      assert.equal(again.created, false);
      assert.deepEqual(again.credentials, ca.credentials);
      const request = { commonName: "skupper-router", hosts: ["127.0.0.1"], usage: "server" as const };
      const leaf = await ensureLeaf(slot(credentials, "skupper-site-server"), ca.credentials, request);
      assert.equal(leaf.issued, true);
      assert.ok(isIssuedBy(leaf.credentials.cert, ca.credentials.cert));
      assert.equal(describeCertificate(leaf.credentials.cert).commonName, "skupper-router");
      const reused = await ensureLeaf(slot(credentials, "skupper-site-server"), ca.credentials, request);
      assert.equal(reused.issued, false);
      assert.deepEqual(reused.credentials, leaf.credentials);
    });
  });

  describe("KubernetesSiteState", () => {
    test("the identity is created once, in a ConfigMap, and the same for a second instance", async () => {
      const { namespace, state } = await openSiteParts();
      const { siteId } = await state.identity();
      assert.match(siteId, /^[0-9a-f-]{36}$/);
      const configMap = await kubectlJson<CoreJson>(["-n", namespace, "get", "configmap", SITE_STATE_CONFIGMAP]);
      assert.equal(configMap.data?.[SITE_ID_KEY], siteId);
      assert.deepEqual(await new KubernetesSiteState(config, { namespace }).identity(), { siteId });
    });

    test("concurrent first uses by several instances yield one identity", async () => {
      const namespace = await freshNamespace();
      const ids = await Promise.all(Array.from({ length: 6 }, () => new KubernetesSiteState(config, { namespace }).identity()));
      assert.equal(new Set(ids.map((i) => i.siteId)).size, 1, JSON.stringify(ids));
      const configMap = await kubectlJson<CoreJson>(["-n", namespace, "get", "configmap", SITE_STATE_CONFIGMAP]);
      assert.equal(configMap.data?.[SITE_ID_KEY], ids[0]?.siteId);
    });

    test("the network view round trips through its ConfigMap and readNetworkStatus", async () => {
      const { namespace, state } = await openSiteParts();
      assert.equal(await state.networkStatus(), undefined);
      const view: NetworkStatus = { schema: NETWORK_STATUS_SCHEMA, siteId: "id-1", siteName: "west", namespace, version: "1.2.3", inputProblems: [] };
      await state.publishNetworkStatus(view);
      const configMap = await kubectlJson<CoreJson>(["-n", namespace, "get", "configmap", NETWORK_STATUS_CONFIGMAP]);
      const text = configMap.data?.[NETWORK_STATUS_KEY];
      assert.ok(text);
      assert.deepEqual(readNetworkStatus(JSON.parse(text)), view);
      assert.deepEqual(await state.networkStatus(), view);
      const version = (await kubectlJson<{ metadata: { resourceVersion: string } }>(["-n", namespace, "get", "configmap", NETWORK_STATUS_CONFIGMAP])).metadata.resourceVersion;
      await state.publishNetworkStatus(structuredClone(view));
      const unchanged = (await kubectlJson<{ metadata: { resourceVersion: string } }>(["-n", namespace, "get", "configmap", NETWORK_STATUS_CONFIGMAP])).metadata.resourceVersion;
      assert.equal(unchanged, version, "an unchanged view is not written again");
      await state.publishNetworkStatus({ ...view, siteName: "east" });
      assert.equal((await new KubernetesSiteState(config, { namespace }).networkStatus())?.siteName, "east");
    });

    test("pending redemptions are durable Secrets, found by label by another instance, long token names included, and removed", async () => {
      const { namespace, state } = await openSiteParts();
      assert.deepEqual(await state.pendingRedemptions(), new Map());
      const pending = (name: string) => ({
        secret: secret(`${name}-creds`, "key material"),
        links: [{ apiVersion: API_VERSION, kind: "Link", metadata: { name: `${name}-link` }, spec: { endpoints: [{ name: "inter-router", host: "10.0.0.1", port: "55671" }], tlsCredentials: `${name}-creds`, cost: 1 } } as Link],
      });
      const long = `t${"x".repeat(240)}.y`;
      await state.savePendingRedemption("token-a", pending("a"));
      await state.savePendingRedemption(long, pending("b"));
      await state.savePendingRedemption("token-a", pending("a")); // saving again replaces
      const secrets = await kubectlJson<{ items: CoreJson[] }>(["-n", namespace, "get", "secrets", "-l", `${PENDING_REDEMPTION_LABEL}=true`]);
      assert.deepEqual(secrets.items.map((s) => s.metadata.name).sort(), [redemptionSecretName("token-a"), redemptionSecretName(long)].sort());
      assert.ok(redemptionSecretName(long).length <= 253);
      assert.deepEqual(secrets.items.map((s) => s.metadata.annotations?.[ACCESS_TOKEN_ANNOTATION]).sort(), ["token-a", long].sort());

      const found = await new KubernetesSiteState(config, { namespace }).pendingRedemptions();
      assert.deepEqual([...found.keys()].sort(), ["token-a", long].sort());
      assert.equal(found.get("token-a")?.secret.metadata.name, "a-creds");
      assert.equal(found.get("token-a")?.secret.data?.token, pending("a").secret.data?.token);
      assert.equal(found.get(long)?.links[0]?.metadata.name, "b-link");
      assert.equal(found.get(long)?.links[0]?.spec.endpoints?.[0]?.host, "10.0.0.1");

      await state.removePendingRedemption(long);
      await state.removePendingRedemption("never-saved");
      assert.deepEqual([...(await state.pendingRedemptions()).keys()], ["token-a"]);
      await assert.rejects(state.savePendingRedemption("Not_A_Name", pending("c")), /access token name "Not_A_Name" is not valid/);
    });

    test("without permission, the error names the verb and the resource to grant", async () => {
      const namespace = await freshNamespace();
      const limited = await nobodyConfig(namespace);
      await assert.rejects(new KubernetesCredentialStore(limited).load("skupper-site-ca"), (err: unknown) => {
        assert.ok(err instanceof SkupperError, errorMessage(err));
        assert.equal(err.code, "ERR_KUBERNETES_FORBIDDEN");
        assert.match(err.message, new RegExp(`may not get secrets in namespace "${namespace}"`));
        return true;
      });
      await assert.rejects(new KubernetesSiteState(limited).identity(), /may not get configmaps in namespace/);
      const missing = new KubernetesSiteState(config, { namespace: `skt-none-${randomBytes(3).toString("hex")}` });
      await assert.rejects(missing.identity(), /Namespace "skt-none-[0-9a-f]+" does not exist/);
    });
  });

  describe("the controller on Kubernetes", () => {
    test("a Site and a Listener applied with kubectl get their documented status from the unchanged reconcilers", async () => {
      const { store } = await openStore();
      const namespace = store.namespace;
      const host: SiteHost = {
        name: "kubernetes",
        namespace,
        resources: store,
        credentials: new KubernetesCredentialStore(config, { namespace }),
        state: new KubernetesSiteState(config, { namespace }),
        serveRequests: async () => async () => undefined,
      };
      const planes = fakeDataPlaneFactory();
      const grantServer = new FakeGrantServer();
      const controller = new SiteController(host, { version: "9.9.9-test", createDataPlane: planes.factory, createGrantServer: () => grantServer, backoff: { initialMs: 100, maxMs: 1000 } });
      try {
        await controller.start();
        await applyManifest(JSON.stringify({ ...linkAccessSite("west"), metadata: { name: "west", namespace } }));
        await applyManifest(JSON.stringify({ ...harnessListener("web", 8080), metadata: { name: "web", namespace } }));
        const describe = () => `controller log:\n${logLines.slice(-20).join("\n")}`;
        const siteStatus = await waitFor(async () => {
          const got = await store.get("Site", "west");
          return got?.status?.status === "Ready" ? got.status : undefined;
        }, 60_000).catch((err: unknown) => assert.fail(`${errorMessage(err)}: Site not Ready; ${describe()}`));
        assert.equal(siteStatus.message, "OK");
        const listenerStatus = await waitFor(async () => {
          const got = await store.get("Listener", "web");
          return got?.status?.status ? got.status : undefined;
        }, 60_000).catch((err: unknown) => assert.fail(`${errorMessage(err)}: Listener has no status; ${describe()}`));
        assert.equal(listenerStatus.status, "Pending");
        assert.equal(listenerStatus.message, "No matching connectors");
        assert.equal(grantServer.listening, true, "the grant server was configured with certificates from the Secrets");

        const sites = await kubectl(["-n", namespace, "get", "sites"]);
        assert.equal(sites.code, 0, sites.stderr);
        assert.match(sites.stdout, /^NAME\s+STATUS\s+SITES IN NETWORK\s+MESSAGE/m);
        assert.match(sites.stdout, /^west\s+Ready\s+(\d+\s+)?OK/m);
        const listeners = await kubectl(["-n", namespace, "get", "listeners"]);
        assert.match(listeners.stdout, /^web\s+web\s+8080\s+127\.0\.0\.1\s+Pending/m);

        // The site's keys and state live where docs/kubernetes.md says.
        for (const name of ["skupper-site-ca", "skupper-site-server", "skupper-grant-server-ca", "skupper-grant-server"]) {
          assert.equal((await kubectlJson<CoreJson>(["-n", namespace, "get", "secret", name])).type, "kubernetes.io/tls", name);
        }
        const identity = (await kubectlJson<CoreJson>(["-n", namespace, "get", "configmap", SITE_STATE_CONFIGMAP])).data?.[SITE_ID_KEY];
        const view = await waitFor(async () => {
          const published = await (host.state as KubernetesSiteState).networkStatus();
          return published?.siteName === "west" ? published : undefined;
        });
        assert.equal(view.siteId, identity);
      } finally {
        await controller.stop();
      }
    });
  });

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

    test("a status write adds no finalizer (a namespace's deletion is never blocked); a finalizer of earlier versions is hidden, kept by updates, removed by finalize", async () => {
      const { store, close } = await openStore();
      try {
        await store.create(listener("web"));
        await store.updateStatus("Listener", "web", { status: "Ready", message: "OK", observedGeneration: 1 });
        assert.deepEqual(await finalizersOf(store.namespace, "listeners", "web"), []);
        await kubectlOk(["-n", store.namespace, "patch", "listeners.skupper.io", "web", "--type=merge", "-p", JSON.stringify({ metadata: { finalizers: [SKUPPER_FINALIZER] } })]);
        assert.equal((await store.get("Listener", "web"))?.metadata.finalizers, undefined);
        await store.update({ ...listener("web", 9090), metadata: { name: "web", finalizers: ["example.com/other"] } });
        assert.deepEqual((await finalizersOf(store.namespace, "listeners", "web")).sort(), ["example.com/other", SKUPPER_FINALIZER].sort());
        await store.update({ ...listener("web", 9090) });
        assert.deepEqual(await finalizersOf(store.namespace, "listeners", "web"), [SKUPPER_FINALIZER]);
        await store.delete("Listener", "web");
        assert.ok((await store.get("Listener", "web"))?.metadata.deletionTimestamp);
        await store.finalize("Listener", "web");
        assert.equal(await store.get("Listener", "web"), undefined);
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
        const limited = await nobodyConfig(ns);
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

/** A kubeconfig for a service account of `namespace` that has no Role at all. */
async function nobodyConfig(namespace: string): Promise<KubeConfig> {
  assert.equal((await kubectl(["-n", namespace, "create", "serviceaccount", "nobody"])).code, 0);
  const token = await waitFor(async () => {
    const out = await kubectl(["-n", namespace, "get", "secret", "-o", "jsonpath={.items[?(@.metadata.annotations.kubernetes\\.io/service-account\\.name=='nobody')].data.token}"]);
    return out.stdout.trim() ? Buffer.from(out.stdout.trim(), "base64").toString() : undefined;
  });
  const limited = kubernetesConfig({ kubeconfig: (cluster as { kubeconfig: string }).kubeconfig });
  const server = limited.getCurrentCluster();
  assert.ok(server);
  limited.loadFromOptions({
    clusters: [server],
    users: [{ name: "nobody", token }],
    contexts: [{ name: "nobody", cluster: server.name, user: "nobody", namespace }],
    currentContext: "nobody",
  });
  return limited;
}

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
