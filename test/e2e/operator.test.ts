/**
 * The cluster controller on a real cluster, run out of the cluster as a child process but with
 * exactly the permissions the install bundle grants: a kubeconfig made from the token of a
 * ServiceAccount bound to the bundle's ClusterRole `skupper-controller`. A Site gets its
 * ServiceAccount, RoleBinding and Deployment; what is deleted or changed is put back; a second
 * Site takes over when the first is deleted; deleting the last one garbage-collects everything;
 * with permission only in some namespaces (a RoleBinding) it works there, and while it lacks a
 * permission it says which and tries again. Skips, saying why, when no cluster is available
 * (see test/helpers/kube-cluster.ts).
 *
 * The site pods run the image `local/node-base:1` (which the test cluster always has): they
 * start and fail at once, as no site process is in it. Nothing here depends on them running.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { AppsV1Api, CoreV1Api, CustomObjectsApi, RbacAuthorizationV1Api, type V1Deployment, type V1OwnerReference } from "@kubernetes/client-node";
import { stringify } from "yaml";
import { customResourceDefinitions } from "../../src/api/index.js";
import { bundleObjects } from "../../src/operator/bundle.js";
import { kubernetesConfig, type KubeConfig } from "../../src/platform/kubernetes/index.js";
import { CONTROLLER_NAME, SITE_CLUSTER_ROLE } from "../../src/platform/kubernetes/names.js";
import { ROOT } from "../helpers/cli.js";
import { applyManifest, garbageCollectorComplaints, kubectl, useCluster } from "../helpers/kube-cluster.js";

const cluster = await useCluster();
const skip = "skip" in cluster ? cluster.skip : false;

const OPERATOR = path.join(ROOT, "dist", "src", "operator", "main.js");
const SITE_IMAGE = "local/node-base:1";
const suffix = randomBytes(3).toString("hex");
const CONTROL_NS = `op-ctl-${suffix}`;
const SITE_NS = `op-site-${suffix}`;
const LIMITED_NS = `op-rb-${suffix}`;
const BINDING = `op-ctl-${suffix}`;
const LIMITED_SA = "limited-controller";

let config: KubeConfig;
let core: CoreV1Api;
let apps: AppsV1Api;
let rbac: RbacAuthorizationV1Api;
let custom: CustomObjectsApi;
let dir: string;
const children: ChildProcess[] = [];
/** The controllers' log lines, for the message of a wait that timed out. */
const recentLog: string[] = [];

// ---- waiting, bounded ----

async function waitFor<T>(description: string, probe: () => Promise<T | undefined | false>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const log = recentLog.slice(-20).join("\n");
      throw new Error(
        `timed out after ${ms / 1000} s waiting for ${description}${last ? ` (last error: ${(last as Error).message})` : ""}; the controller's last lines:\n${log}\n${garbageCollectorComplaints()}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** undefined on 404. */
async function optional<T>(request: () => Promise<T>): Promise<T | undefined> {
  try {
    return await request();
  } catch (err) {
    if (Number((err as { code?: unknown }).code) === 404) return undefined;
    throw err;
  }
}

// ---- the cluster ----

async function createNamespace(name: string): Promise<void> {
  await core.createNamespace({ body: { metadata: { name, labels: { "skupper-test": "operator" } } } });
}

async function createSite(namespace: string, name: string): Promise<{ uid: string }> {
  const site = (await custom.createNamespacedCustomObject({
    group: "skupper.io",
    version: "v2alpha1",
    namespace,
    plural: "sites",
    body: { apiVersion: "skupper.io/v2alpha1", kind: "Site", metadata: { name }, spec: {} },
  })) as { metadata: { uid: string } };
  return { uid: site.metadata.uid };
}

async function deleteSite(namespace: string, name: string): Promise<void> {
  await custom.deleteNamespacedCustomObject({ group: "skupper.io", version: "v2alpha1", namespace, plural: "sites", name });
}

const getDeployment = (namespace: string) => optional(() => apps.readNamespacedDeployment({ namespace, name: "skupper-router" }));
const getServiceAccount = (namespace: string) => optional(() => core.readNamespacedServiceAccount({ namespace, name: "skupper-router" }));
const getRoleBinding = (namespace: string) => optional(() => rbac.readNamespacedRoleBinding({ namespace, name: "skupper-router" }));

function controller(object: { metadata?: { ownerReferences?: V1OwnerReference[] } } | undefined): V1OwnerReference | undefined {
  return object?.metadata?.ownerReferences?.find((ref) => ref.controller);
}

/** The three objects, all owned by the Site with `uid`. */
async function siteObjectsOwnedBy(namespace: string, uid: string) {
  const [serviceAccount, roleBinding, deployment] = await Promise.all([getServiceAccount(namespace), getRoleBinding(namespace), getDeployment(namespace)]);
  if (!serviceAccount || !roleBinding || !deployment) return undefined;
  if ([serviceAccount, roleBinding, deployment].some((object) => controller(object)?.uid !== uid)) return undefined;
  return { serviceAccount, roleBinding, deployment };
}

/** A kubeconfig that authenticates as a ServiceAccount, with its token (1.20 keeps it in a Secret). */
async function serviceAccountKubeconfig(namespace: string, name: string): Promise<string> {
  const secretName = await waitFor(`the token Secret of ServiceAccount ${namespace}/${name}`, async () => {
    const account = await core.readNamespacedServiceAccount({ namespace, name });
    return account.secrets?.[0]?.name;
  });
  const secret = await waitFor("the token in it", async () => {
    const found = await core.readNamespacedSecret({ namespace, name: secretName });
    return found.data?.token && found.data["ca.crt"] ? found : undefined;
  });
  const server = config.getCurrentCluster()!.server;
  const file = path.join(dir, `${namespace}-${name}.kubeconfig`);
  const kubeconfig = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "test", cluster: { server, "certificate-authority-data": secret.data!["ca.crt"] } }],
    users: [{ name, user: { token: Buffer.from(secret.data!.token!, "base64").toString("utf8") } }],
    contexts: [{ name, context: { cluster: "test", user: name } }],
    "current-context": name,
  };
  writeFileSync(file, stringify(kubeconfig), { mode: 0o600 });
  return file;
}

async function canI(kubeconfig: string, args: string[]): Promise<boolean> {
  const result = await kubectl(["auth", "can-i", ...args], { kubeconfig });
  return result.stdout.trim() === "yes";
}

// ---- the controller as a child process ----

interface Running {
  child: ChildProcess;
  lines: string[];
  waitForLine(pattern: RegExp, ms?: number): Promise<string>;
}

function runOperator(kubeconfig: string, namespaces: string[]): Running {
  const env: NodeJS.ProcessEnv = { ...process.env, SKUPPER_WATCH_NAMESPACES: namespaces.join(","), SKUPPER_IMAGE: SITE_IMAGE, SKUPPER_LOG_LEVEL: "debug" };
  delete env.KUBECONFIG;
  // Watches end every 3 s, so every step below runs on resumed watches.
  const child = spawn(process.execPath, [OPERATOR, "--kubeconfig", kubeconfig, "--watch-timeout", "3"], { env, stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  const lines: string[] = [];
  let partial = "";
  const take = (chunk: Buffer) => {
    partial += chunk.toString("utf8");
    const complete = partial.split("\n");
    partial = complete.pop() ?? "";
    lines.push(...complete);
    recentLog.push(...complete);
  };
  child.stdout!.on("data", take);
  child.stderr!.on("data", take);
  return {
    child,
    lines,
    waitForLine: (pattern, ms = 60_000) => waitFor(`a log line matching ${pattern}`, async () => lines.find((line) => pattern.test(line)), ms),
  };
}

function stopped(child: ChildProcess, ms = 10_000): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the controller did not exit within ${ms} ms`)), ms);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

describe("the cluster controller, with the bundle's permissions", { skip, timeout: 600_000 }, () => {
  let operator: Running;
  let westUid: string;

  before(async () => {
    if (skip) return;
    config = kubernetesConfig({ kubeconfig: (cluster as { kubeconfig: string }).kubeconfig });
    core = config.makeApiClient(CoreV1Api);
    apps = config.makeApiClient(AppsV1Api);
    rbac = config.makeApiClient(RbacAuthorizationV1Api);
    custom = config.makeApiClient(CustomObjectsApi);
    dir = mkdtempSync(path.join(tmpdir(), "skupper-operator-test-"));

    // The bundle's cluster-wide objects this test needs (shared: applied, never deleted).
    const shared = bundleObjects().filter((o) => ["CustomResourceDefinition", "ClusterRole"].includes((o as { kind: string }).kind));
    await applyManifest(shared.map((o) => `---\n${stringify(o)}`).join(""));
    const established = await kubectl(["wait", "--for", "condition=established", "--timeout=60s", ...customResourceDefinitions().map((crd) => `crd/${crd.metadata.name}`)], { timeoutMs: 70_000 });
    assert.equal(established.code, 0, established.stderr);

    // The controller's ServiceAccount, bound to the bundle's ClusterRole as the bundle binds it.
    await createNamespace(CONTROL_NS);
    await core.createNamespacedServiceAccount({ namespace: CONTROL_NS, body: { metadata: { name: CONTROLLER_NAME } } });
    await rbac.createClusterRoleBinding({
      body: {
        metadata: { name: BINDING, labels: { "skupper-test": "operator" } },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: CONTROLLER_NAME },
        subjects: [{ kind: "ServiceAccount", name: CONTROLLER_NAME, namespace: CONTROL_NS }],
      },
    });
    await createNamespace(SITE_NS);
  });

  after(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    if (skip) return;
    for (const namespace of [SITE_NS, LIMITED_NS, CONTROL_NS]) await core.deleteNamespace({ name: namespace }).catch(() => undefined);
    await rbac.deleteClusterRoleBinding({ name: BINDING }).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  test("the ServiceAccount's kubeconfig holds the bundle's permissions and no more", async () => {
    const kubeconfig = await serviceAccountKubeconfig(CONTROL_NS, CONTROLLER_NAME);
    assert.equal(await canI(kubeconfig, ["create", "deployments.apps", "-n", SITE_NS]), true);
    assert.equal(await canI(kubeconfig, ["bind", `clusterroles.rbac.authorization.k8s.io/${SITE_CLUSTER_ROLE}`]), true);
    assert.equal(await canI(kubeconfig, ["bind", "clusterroles.rbac.authorization.k8s.io/cluster-admin"]), false);
    assert.equal(await canI(kubeconfig, ["get", "secrets", "-n", SITE_NS]), false);
    assert.equal(await canI(kubeconfig, ["update", "sites.skupper.io", "--subresource=status", "-n", SITE_NS]), false);
    assert.equal(await canI(kubeconfig, ["create", "links.skupper.io", "-n", SITE_NS]), false);
    operator = runOperator(kubeconfig, [SITE_NS]);
    await operator.waitForLine(/watching Sites in namespace "op-site-/);
  });

  test("a Site gets a ServiceAccount, a RoleBinding and a Deployment, owned by it, as the API server accepted them", async () => {
    westUid = (await createSite(SITE_NS, "west")).uid;
    const { serviceAccount, roleBinding, deployment } = await waitFor("the objects of Site west", () => siteObjectsOwnedBy(SITE_NS, westUid));
    for (const object of [serviceAccount, roleBinding, deployment]) {
      assert.deepEqual(
        { ...controller(object) },
        { apiVersion: "skupper.io/v2alpha1", kind: "Site", name: "west", uid: westUid, controller: true, blockOwnerDeletion: true },
      );
      assert.equal(object.metadata?.labels?.["app.kubernetes.io/managed-by"], "skupper");
    }
    assert.deepEqual({ ...roleBinding.roleRef }, { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: SITE_CLUSTER_ROLE });
    assert.deepEqual(roleBinding.subjects?.map((s) => ({ ...s })), [{ kind: "ServiceAccount", name: "skupper-router", namespace: SITE_NS }]);
    const spec = deployment.spec!;
    assert.equal(spec.replicas, 1);
    assert.equal(spec.strategy?.type, "Recreate");
    assert.deepEqual(deployment.metadata?.finalizers, ["foregroundDeletion"]);
    const pod = spec.template.spec!;
    assert.equal(pod.serviceAccountName, "skupper-router");
    assert.equal(spec.template.metadata?.labels?.["skupper.io/site"], "west");
    const container = pod.containers[0]!;
    assert.equal(container.image, SITE_IMAGE);
    assert.deepEqual(container.command, ["/usr/bin/node", "/app/dist/src/site/main.js", "--platform", "kubernetes"]);
    assert.equal(container.securityContext?.seccompProfile?.type, "RuntimeDefault", "the 1.20 API server kept the seccomp profile");
    assert.equal(container.securityContext?.readOnlyRootFilesystem, true);
    assert.deepEqual(container.securityContext?.capabilities?.drop, ["ALL"]);
    await operator.waitForLine(/made Deployment "skupper-router" in namespace "op-site-/);
    await operator.waitForLine(/the site pod of Site "west" in namespace "op-site-\w+" is not available yet/);
  });

  test("the site's ServiceAccount may do a site's work in its namespace, and nothing elsewhere", async () => {
    const admin = (cluster as { kubeconfig: string }).kubeconfig;
    const as = ["--as", `system:serviceaccount:${SITE_NS}:skupper-router`];
    assert.equal(await canI(admin, ["create", "links.skupper.io", "-n", SITE_NS, ...as]), true);
    assert.equal(await canI(admin, ["update", "sites.skupper.io", "--subresource=status", "-n", SITE_NS, ...as]), true);
    assert.equal(await canI(admin, ["get", "secrets", "-n", SITE_NS, ...as]), true);
    assert.equal(await canI(admin, ["get", "secrets", "-n", CONTROL_NS, ...as]), false);
    assert.equal(await canI(admin, ["create", "deployments.apps", "-n", SITE_NS, ...as]), false);
  });

  test("with its watches resumed, a deleted Deployment, ServiceAccount and RoleBinding come back, and a changed Deployment is put back", async () => {
    await operator.waitForLine(/closed; resuming from resourceVersion/, 15_000);
    const before = (await getDeployment(SITE_NS))!;
    await apps.deleteNamespacedDeployment({ namespace: SITE_NS, name: "skupper-router" });
    await waitFor("a new Deployment", async () => {
      const now = await getDeployment(SITE_NS);
      return now && now.metadata?.uid !== before.metadata?.uid && !now.metadata?.deletionTimestamp && controller(now)?.uid === westUid;
    });

    const changed = await kubectl(["-n", SITE_NS, "patch", "deployment", "skupper-router", "--type=json", "-p",
      JSON.stringify([
        { op: "replace", path: "/spec/replicas", value: 3 },
        { op: "replace", path: "/spec/template/spec/containers/0/image", value: "busybox:1" },
        { op: "remove", path: "/metadata/labels/app.kubernetes.io~1managed-by" },
      ])]);
    assert.equal(changed.code, 0, changed.stderr);
    await waitFor("the Deployment put back", async () => {
      const now = (await getDeployment(SITE_NS)) as V1Deployment | undefined;
      return now?.spec?.replicas === 1 && now.spec.template.spec?.containers[0]?.image === SITE_IMAGE && now.metadata?.labels?.["app.kubernetes.io/managed-by"] === "skupper";
    });
    await operator.waitForLine(/put Deployment "skupper-router" in namespace "op-site-\w+" back/);

    for (const [what, remove, get] of [
      ["ServiceAccount", () => core.deleteNamespacedServiceAccount({ namespace: SITE_NS, name: "skupper-router" }), () => getServiceAccount(SITE_NS)],
      ["RoleBinding", () => rbac.deleteNamespacedRoleBinding({ namespace: SITE_NS, name: "skupper-router" }), () => getRoleBinding(SITE_NS)],
    ] as const) {
      const old = (await get())!.metadata!.uid;
      await remove();
      await waitFor(`a new ${what}`, async () => {
        const now = await get();
        return now && now.metadata?.uid !== old && controller(now)?.uid === westUid;
      });
    }
  });

  test("a Site that names its own ServiceAccount runs as that one, and its ServiceAccount and RoleBinding go; without it, they come back", async () => {
    const patchSite = (spec: Record<string, unknown>) =>
      kubectl(["-n", SITE_NS, "patch", "sites.skupper.io", "west", "--type=merge", "-p", JSON.stringify({ spec })]);
    assert.equal((await patchSite({ serviceAccount: "custom-router" })).code, 0);
    await waitFor("the Deployment to run as custom-router, without skupper-router's ServiceAccount and RoleBinding", async () => {
      const [serviceAccount, roleBinding, deployment] = await Promise.all([getServiceAccount(SITE_NS), getRoleBinding(SITE_NS), getDeployment(SITE_NS)]);
      return !serviceAccount && !roleBinding && deployment?.spec?.template.spec?.serviceAccountName === "custom-router";
    });
    assert.equal((await patchSite({ serviceAccount: null })).code, 0);
    await waitFor("skupper-router again", async () => {
      const objects = await siteObjectsOwnedBy(SITE_NS, westUid);
      return objects?.deployment.spec?.template.spec?.serviceAccountName === "skupper-router";
    });
  });

  test("a second Site gets nothing; when the first is deleted, the objects go and come back for the second", async () => {
    // "alpha" sorts first, but "west" owns the objects and keeps them.
    const alphaUid = (await createSite(SITE_NS, "alpha")).uid;
    await operator.waitForLine(/namespace "op-site-\w+" has several Sites: "west" runs, "alpha" gets nothing/);
    assert.equal(controller(await getDeployment(SITE_NS))?.uid, westUid);

    await deleteSite(SITE_NS, "west");
    await operator.waitForLine(/Site "west" in namespace "op-site-\w+" was deleted; waiting for the garbage collector/);
    await waitFor("the objects of Site alpha", () => siteObjectsOwnedBy(SITE_NS, alphaUid), 180_000);
    const deployment = (await getDeployment(SITE_NS))!;
    assert.equal(deployment.spec?.template.metadata?.labels?.["skupper.io/site"], "alpha");
  });

  test("deleting the last Site garbage-collects its objects", async () => {
    await deleteSite(SITE_NS, "alpha");
    await waitFor(
      "the ServiceAccount, RoleBinding and Deployment to be gone",
      async () => {
        const [serviceAccount, roleBinding, deployment] = await Promise.all([getServiceAccount(SITE_NS), getRoleBinding(SITE_NS), getDeployment(SITE_NS)]);
        return !serviceAccount && !roleBinding && !deployment;
      },
      180_000,
    );
    // And nothing is made again.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.equal(await getDeployment(SITE_NS), undefined);
  });

  test("it stops cleanly on SIGTERM", async () => {
    operator.child.kill("SIGTERM");
    assert.equal(await stopped(operator.child), 0);
    assert.ok(operator.lines.some((line) => /stopping \(SIGTERM\)/.test(line)));
    assert.ok(!operator.lines.some((line) => / ERROR /.test(line)), `errors were logged:\n${operator.lines.filter((l) => / ERROR /.test(l)).join("\n")}`);
  });

  test("bound by a RoleBinding in one namespace, it says what it may not do there and goes on once it may", async () => {
    await createNamespace(LIMITED_NS);
    await core.createNamespacedServiceAccount({ namespace: CONTROL_NS, body: { metadata: { name: LIMITED_SA } } });
    // At first it may only read: Sites, and its own objects for its watches.
    await rbac.createNamespacedRole({
      namespace: LIMITED_NS,
      body: {
        metadata: { name: "read-only" },
        rules: [
          { apiGroups: ["skupper.io"], resources: ["sites"], verbs: ["get", "list", "watch"] },
          { apiGroups: ["", "apps", "rbac.authorization.k8s.io"], resources: ["serviceaccounts", "deployments", "rolebindings"], verbs: ["get", "list", "watch"] },
        ],
      },
    });
    const subjects = [{ kind: "ServiceAccount", name: LIMITED_SA, namespace: CONTROL_NS }];
    await rbac.createNamespacedRoleBinding({
      namespace: LIMITED_NS,
      body: { metadata: { name: "read-only" }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "read-only" }, subjects },
    });
    const kubeconfig = await serviceAccountKubeconfig(CONTROL_NS, LIMITED_SA);
    const limited = runOperator(kubeconfig, [LIMITED_NS]);
    const { uid } = await createSite(LIMITED_NS, "east");

    const refused = await limited.waitForLine(/cannot make the objects of Site "east" in namespace "op-rb-\w+" \(trying again in [\d.]+ s\): Permission denied: .* may not create serviceaccounts in namespace "op-rb-/);
    assert.match(refused, /Ask for a Role that allows "create" on "serviceaccounts" there/);

    // The namespaced install: the bundle's ClusterRole, granted in this namespace only.
    await rbac.createNamespacedRoleBinding({
      namespace: LIMITED_NS,
      body: { metadata: { name: "skupper-controller" }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: CONTROLLER_NAME }, subjects },
    });
    await waitFor("the objects of Site east", () => siteObjectsOwnedBy(LIMITED_NS, uid), 90_000);

    limited.child.kill("SIGTERM");
    assert.equal(await stopped(limited.child), 0);
  });
});
