/**
 * The cluster controller without a cluster: the ServiceAccount, RoleBinding and Deployment it
 * wants for a Site (src/operator/objects.ts); how it tells drift from the API server's defaults;
 * which Site of a namespace runs; how it words the site pod's availability; its settings; and
 * its informer's list, watch, resume and re-list after 410 Gone, against a scripted source.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { V1Deployment, V1RoleBinding } from "@kubernetes/client-node";
import { InvalidInputError } from "../../src/common/errors.js";
import {
  availability,
  chooseSite,
  controllerSettings,
  covers,
  deploymentDrifted,
  deploymentUpdate,
  FOREGROUND_DELETION,
  Informer,
  isSkuppers,
  roleBindingDrift,
  selectorChanged,
  siteLabelValue,
  siteObjects,
  watchNamespaces,
  type Listing,
  type ListWatchSource,
  type SiteObject,
} from "../../src/operator/index.js";
import { defaultImage, ROUTER_POD_LABELS } from "../../src/platform/kubernetes/names.js";

const IMAGE = "localhost/skupper-ts:test";

function site(name: string, uid = `uid-${name}`, spec: Record<string, unknown> = {}, namespace = "west"): SiteObject {
  return { apiVersion: "skupper.io/v2alpha1", kind: "Site", metadata: { name, namespace, uid }, spec } as SiteObject;
}

const copy = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

/** What an API server returns for a Deployment made from `desired`: defaults filled in, server metadata added. */
function asStored(desired: V1Deployment): V1Deployment {
  const stored = copy(desired) as any;
  stored.metadata = { ...stored.metadata, uid: "d-1", resourceVersion: "42", generation: 1, creationTimestamp: "2026-01-01T00:00:00Z", annotations: { "deployment.kubernetes.io/revision": "1" } };
  stored.spec.progressDeadlineSeconds = 600;
  stored.spec.revisionHistoryLimit = 10;
  stored.spec.template.metadata.creationTimestamp = null;
  const pod = stored.spec.template.spec;
  Object.assign(pod, { dnsPolicy: "ClusterFirst", restartPolicy: "Always", schedulerName: "default-scheduler", securityContext: {}, serviceAccount: pod.serviceAccountName });
  for (const container of pod.containers) {
    Object.assign(container, { terminationMessagePath: "/dev/termination-log", terminationMessagePolicy: "File" });
    for (const env of container.env) if (env.valueFrom?.fieldRef) env.valueFrom.fieldRef.apiVersion = "v1";
  }
  stored.status = { observedGeneration: 1, replicas: 1 };
  return stored as V1Deployment;
}

describe("what the controller makes for a Site", () => {
  const west = site("west");
  const objects = siteObjects(west, { image: IMAGE });
  const owner = { apiVersion: "skupper.io/v2alpha1", kind: "Site", name: "west", uid: "uid-west", controller: true, blockOwnerDeletion: true };
  const labels = { "app.kubernetes.io/managed-by": "skupper", "app.kubernetes.io/part-of": "skupper" };

  test("a ServiceAccount skupper-router, owned by the Site, labelled as Skupper's", () => {
    assert.deepEqual(objects.serviceAccount, {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: "skupper-router", namespace: "west", labels, ownerReferences: [owner] },
    });
  });

  test("a RoleBinding that grants the ClusterRole skupper-site to that ServiceAccount in the Site's namespace", () => {
    assert.deepEqual(objects.roleBinding, {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name: "skupper-router", namespace: "west", labels, ownerReferences: [owner] },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "skupper-site" },
      subjects: [{ kind: "ServiceAccount", name: "skupper-router", namespace: "west" }],
    });
  });

  test("a Deployment skupper-router: one pod at a time, never two, running the site process as the ServiceAccount", () => {
    const deployment = objects.deployment as any;
    assert.equal(deployment.apiVersion, "apps/v1");
    assert.equal(deployment.kind, "Deployment");
    assert.deepEqual(deployment.metadata.ownerReferences, [owner]);
    assert.deepEqual(deployment.metadata.labels, { ...labels, "app.kubernetes.io/name": "skupper-router", "skupper.io/site": "west" });
    assert.deepEqual(deployment.metadata.finalizers, [FOREGROUND_DELETION]);
    assert.equal(deployment.spec.replicas, 1);
    assert.deepEqual(deployment.spec.strategy, { type: "Recreate" });
    assert.deepEqual(deployment.spec.selector, { matchLabels: { ...ROUTER_POD_LABELS } });
    assert.deepEqual(deployment.spec.template.metadata.labels, { ...ROUTER_POD_LABELS, "skupper.io/site": "west" });
    const pod = deployment.spec.template.spec;
    assert.equal(pod.serviceAccountName, "skupper-router");
    assert.equal(pod.automountServiceAccountToken, true);
    assert.equal(pod.terminationGracePeriodSeconds, 10);
    assert.equal(pod.containers.length, 1);
    const [container] = pod.containers;
    assert.equal(container.image, IMAGE);
    assert.equal(container.imagePullPolicy, "IfNotPresent");
    assert.deepEqual(container.command, ["/usr/bin/node", "/app/dist/src/site/main.js", "--platform", "kubernetes"]);
    assert.deepEqual(container.env, [
      { name: "SKUPPER_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
      { name: "SKUPPER_NODE_IP", valueFrom: { fieldRef: { fieldPath: "status.hostIP" } } },
    ]);
    assert.deepEqual(container.ports, [
      { name: "inter-router", containerPort: 55671, protocol: "TCP" },
      { name: "grant-server", containerPort: 9090, protocol: "TCP" },
    ]);
    assert.deepEqual(container.resources, { requests: { cpu: "50m", memory: "64Mi" }, limits: { memory: "256Mi" } });
    assert.deepEqual(container.securityContext, {
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    });
  });

  test("a Site that names its own ServiceAccount runs as that one, and gets no ServiceAccount or RoleBinding", () => {
    const own = siteObjects(site("west", "uid-west", { serviceAccount: "my-router" }), { image: IMAGE });
    assert.equal(own.serviceAccount, undefined);
    assert.equal(own.roleBinding, undefined);
    assert.equal(own.deployment.spec?.template.spec?.serviceAccountName, "my-router");
  });

  test("a ServiceAccount name that is not one is refused with a sentence", () => {
    assert.throws(
      () => siteObjects(site("west", "uid-west", { serviceAccount: "My Router" }), { image: IMAGE }),
      (err: unknown) => err instanceof InvalidInputError && /names the ServiceAccount "My Router", which is not a valid name/.test(err.message),
    );
  });

  test("the site label is the name, or its start and a hash when the name is longer than a label value may be", () => {
    assert.equal(siteLabelValue("west"), "west");
    const long = `${"a".repeat(60)}.${"b".repeat(100)}`;
    const value = siteLabelValue(long);
    assert.ok(value.length <= 63, value);
    assert.match(value, /^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$/);
    assert.notEqual(value, siteLabelValue(`${long}c`));
    assert.equal(value, siteLabelValue(long));
    const dotted = siteLabelValue(`${"a".repeat(51)}.${"b".repeat(20)}`);
    assert.ok(!dotted.includes(".-"), dotted);
  });
});

describe("drift", () => {
  const desired = siteObjects(site("west"), { image: IMAGE }).deployment;

  test("a Deployment as the API server stores it, with its defaults, has not drifted", () => {
    assert.equal(deploymentDrifted(asStored(desired), desired), false);
  });

  test("a field it sets that was changed, a container added, a label or finalizer removed, another owner: drifted", () => {
    const changes: Array<[string, (d: any) => void]> = [
      ["replicas", (d) => (d.spec.replicas = 3)],
      ["image", (d) => (d.spec.template.spec.containers[0].image = "busybox")],
      ["strategy", (d) => (d.spec.strategy = { type: "RollingUpdate", rollingUpdate: { maxSurge: "25%", maxUnavailable: "25%" } })],
      ["a second container", (d) => d.spec.template.spec.containers.push({ name: "extra", image: "busybox" })],
      ["an env var", (d) => d.spec.template.spec.containers[0].env.push({ name: "X", value: "1" })],
      ["security", (d) => (d.spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem = false)],
      ["a label", (d) => delete d.metadata.labels["app.kubernetes.io/managed-by"]],
      ["the finalizer", (d) => delete d.metadata.finalizers],
      ["the owner", (d) => (d.metadata.ownerReferences[0].uid = "uid-east")],
      ["no owner", (d) => delete d.metadata.ownerReferences],
    ];
    for (const [what, change] of changes) {
      const actual = asStored(desired) as any;
      change(actual);
      assert.equal(deploymentDrifted(actual, desired), true, what);
    }
  });

  test("what others add beside (annotations, labels, a toleration) is not drift", () => {
    const actual = asStored(desired) as any;
    actual.metadata.labels.team = "blue";
    actual.spec.template.metadata.annotations = { "kubectl.kubernetes.io/restartedAt": "now" };
    actual.spec.template.spec.tolerations = [{ key: "k", operator: "Exists" }];
    assert.equal(deploymentDrifted(actual, desired), false);
  });

  test("the repaired Deployment is the desired one, keeping the resourceVersion, others' metadata and the pod annotations", () => {
    const actual = asStored(desired) as any;
    actual.spec.replicas = 0;
    actual.metadata.labels.team = "blue";
    actual.spec.template.metadata.annotations = { "kubectl.kubernetes.io/restartedAt": "now" };
    const repaired = deploymentUpdate(actual, desired) as any;
    assert.equal(repaired.metadata.resourceVersion, "42");
    assert.equal(repaired.metadata.labels.team, "blue");
    assert.equal(repaired.metadata.annotations["deployment.kubernetes.io/revision"], "1");
    assert.deepEqual(repaired.metadata.finalizers, [FOREGROUND_DELETION]);
    assert.equal(repaired.spec.replicas, 1);
    assert.deepEqual(repaired.spec.template.metadata.annotations, { "kubectl.kubernetes.io/restartedAt": "now" });
    assert.equal(deploymentDrifted(asStored(repaired), desired), false);
  });

  test("a selector cannot change: another one means making the Deployment anew", () => {
    const actual = asStored(desired) as any;
    assert.equal(selectorChanged(actual, desired), false);
    actual.spec.selector.matchLabels.extra = "x";
    assert.equal(selectorChanged(actual, desired), true);
  });

  test("an object is Skupper's by its label or, if someone removed that, by its Site owner; else it is left alone", () => {
    const made = asStored(desired) as any;
    assert.equal(isSkuppers(made), true);
    delete made.metadata.labels["app.kubernetes.io/managed-by"];
    assert.equal(isSkuppers(made), true);
    assert.equal(deploymentDrifted(made, desired), true);
    delete made.metadata.ownerReferences;
    assert.equal(isSkuppers(made), false);
    assert.equal(isSkuppers(undefined), false);
  });

  test("a RoleBinding: other subjects are updated, another roleRef is made anew", () => {
    const binding = siteObjects(site("west"), { image: IMAGE }).roleBinding!;
    assert.equal(roleBindingDrift(copy(binding), binding), "none");
    const subjects = copy(binding) as V1RoleBinding;
    subjects.subjects!.push({ kind: "User", name: "mallory", apiGroup: "rbac.authorization.k8s.io" });
    assert.equal(roleBindingDrift(subjects, binding), "update");
    const role = copy(binding) as V1RoleBinding;
    role.roleRef.name = "cluster-admin";
    assert.equal(roleBindingDrift(role, binding), "recreate");
  });

  test("covers: objects by their fields, arrays whole, scalars equal", () => {
    assert.equal(covers({ a: 1, b: { c: 2, d: 3 } }, { b: { c: 2 } }), true);
    assert.equal(covers({ a: [1, 2] }, { a: [1] }), false);
    assert.equal(covers({ a: "1" }, { a: 1 }), false);
    assert.equal(covers(undefined, { a: 1 }), false);
    assert.equal(covers({}, {}), true);
  });
});

describe("which Site of a namespace runs", () => {
  const a = site("a");
  const b = site("b");
  const ownedBy = (s: SiteObject) => ({ metadata: { ownerReferences: [{ apiVersion: "skupper.io/v2alpha1", kind: "Site", name: s.metadata.name, uid: s.metadata.uid, controller: true }] } });

  test("the first by name when none owns the objects", () => {
    assert.equal(chooseSite([a, b], []), a);
    assert.equal(chooseSite([], []), undefined);
  });

  test("the one that owns them already, so that a new Site never moves a running router", () => {
    assert.equal(chooseSite([a, b], [ownedBy(b) as V1Deployment]), b);
  });

  test("an owner that is gone does not count", () => {
    assert.equal(chooseSite([b], [ownedBy(a) as V1Deployment]), b);
  });
});

describe("the site pod's availability, in words", () => {
  const deployment = (status: object, generation = 2): V1Deployment => ({ metadata: { generation }, status }) as V1Deployment;

  test("available when an up-to-date pod is available for the current generation", () => {
    assert.deepEqual(availability(deployment({ observedGeneration: 2, availableReplicas: 1, updatedReplicas: 1 })), { text: "is available", stuck: false });
  });

  test("not yet while it starts or rolls out", () => {
    assert.deepEqual(availability(deployment({})), { text: "is not available yet", stuck: false });
    assert.deepEqual(availability(deployment({ observedGeneration: 1, availableReplicas: 1, updatedReplicas: 1 })), { text: "is not available yet", stuck: false });
  });

  test("stuck, with Kubernetes' reason, when it gave up or cannot make the pod", () => {
    const late = availability(deployment({ observedGeneration: 2, conditions: [{ type: "Progressing", status: "False", reason: "ProgressDeadlineExceeded", message: 'ReplicaSet "x" has timed out progressing.' }] }));
    assert.deepEqual(late, { text: 'is not available: ReplicaSet "x" has timed out progressing.', stuck: true });
    const failed = availability(deployment({ conditions: [{ type: "ReplicaFailure", status: "True", reason: "FailedCreate", message: "pods is forbidden: exceeded quota" }] }));
    assert.deepEqual(failed, { text: "is not available: pods is forbidden: exceeded quota", stuck: true });
  });
});

describe("the controller's settings", () => {
  test("SKUPPER_WATCH_NAMESPACES: comma-separated, blanks and repeats ignored; empty means all", () => {
    assert.deepEqual(watchNamespaces(" west, east,,west "), ["west", "east"]);
    assert.equal(watchNamespaces(""), undefined);
    assert.equal(watchNamespaces(" , "), undefined);
    assert.equal(watchNamespaces(undefined), undefined);
  });

  test("a namespace that cannot be one is refused, naming the variable", () => {
    assert.throws(() => watchNamespaces("west,East_1"), (err: unknown) => err instanceof InvalidInputError && /SKUPPER_WATCH_NAMESPACES: namespace "East_1" is not valid/.test(err.message));
  });

  test("the site image is SKUPPER_IMAGE, else the project's image of this version", () => {
    assert.equal(controllerSettings({}).image, defaultImage());
    assert.equal(controllerSettings({ SKUPPER_IMAGE: "example.org/s:1" }).image, "example.org/s:1");
    assert.deepEqual(controllerSettings({ SKUPPER_WATCH_NAMESPACES: "a" }, { watchTimeout: "5" }), { image: defaultImage(), namespaces: ["a"], watchTimeoutSeconds: 5 });
    assert.throws(() => controllerSettings({}, { watchTimeout: "soon" }), InvalidInputError);
  });
});

// ---- the informer, against a scripted API server ----

interface WatchCall {
  resourceVersion: string;
  onEvent(type: string, object: unknown): void;
  onDone(err: unknown): void;
  aborted: boolean;
}

/** A list-and-watch source whose answers the test gives, recording the calls. */
class ScriptedSource implements ListWatchSource {
  readonly what = "Sites (scripted)";
  readonly lists: Array<Listing | Error> = [];
  listCalls = 0;
  readonly watches: WatchCall[] = [];

  async list(): Promise<Listing> {
    this.listCalls++;
    const next = this.lists.shift();
    if (!next) throw new Error("no list scripted");
    if (next instanceof Error) throw next;
    return next;
  }

  async watch(resourceVersion: string, onEvent: WatchCall["onEvent"], onDone: WatchCall["onDone"]) {
    const call: WatchCall = { resourceVersion, onEvent, onDone, aborted: false };
    this.watches.push(call);
    return { abort: () => (call.aborted = true) };
  }

  get current(): WatchCall {
    const call = this.watches.at(-1);
    assert.ok(call, "no watch was opened");
    return call;
  }
}

const item = (namespace: string, name: string, resourceVersion: string) => ({ metadata: { namespace, name, resourceVersion } });

async function until(description: string, check: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${description}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

describe("the informer", () => {
  function start(source: ScriptedSource) {
    const changes: string[] = [];
    const informer = new Informer(source, { onChange: (ns) => changes.push(ns), backoff: { initialMs: 5, maxMs: 20 } });
    informer.start();
    return { informer, changes };
  }

  test("lists, reports each namespace, then watches from the list's resourceVersion", async () => {
    const source = new ScriptedSource();
    source.lists.push({ items: [item("west", "a", "1"), item("east", "b", "2")], resourceVersion: "10" });
    const { informer, changes } = start(source);
    await until("a watch", () => source.watches.length === 1);
    assert.deepEqual(changes, ["west", "east"]);
    assert.equal(source.current.resourceVersion, "10");
    assert.deepEqual(informer.namespaces(), new Set(["west", "east"]));
    informer.stop();
    assert.equal(source.current.aborted, true);
  });

  test("reports added, modified and deleted objects; bookmarks and repeats of a version are no change", async () => {
    const source = new ScriptedSource();
    source.lists.push({ items: [item("west", "a", "1")], resourceVersion: "10" });
    const { informer, changes } = start(source);
    await until("a watch", () => source.watches.length === 1);
    changes.length = 0;
    source.current.onEvent("ADDED", item("north", "c", "11"));
    source.current.onEvent("MODIFIED", item("west", "a", "12"));
    source.current.onEvent("MODIFIED", item("west", "a", "12"));
    source.current.onEvent("BOOKMARK", { metadata: { resourceVersion: "13" } });
    source.current.onEvent("DELETED", item("north", "c", "14"));
    assert.deepEqual(changes, ["north", "west", "north"]);
    assert.deepEqual(informer.namespaces(), new Set(["west"]));
    informer.stop();
  });

  test("a closed watch is resumed from the last resourceVersion seen, without listing again", async () => {
    const source = new ScriptedSource();
    source.lists.push({ items: [], resourceVersion: "10" });
    const { informer } = start(source);
    await until("a watch", () => source.watches.length === 1);
    source.current.onEvent("ADDED", item("west", "a", "15"));
    source.current.onEvent("BOOKMARK", { metadata: { resourceVersion: "17" } });
    source.current.onDone(null);
    await until("a second watch", () => source.watches.length === 2);
    assert.equal(source.current.resourceVersion, "17");
    assert.equal(source.listCalls, 1);
    informer.stop();
  });

  test("a failed watch is resumed after a backoff", async () => {
    const source = new ScriptedSource();
    source.lists.push({ items: [], resourceVersion: "10" });
    const { informer } = start(source);
    await until("a watch", () => source.watches.length === 1);
    source.current.onDone(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }));
    await until("a second watch", () => source.watches.length === 2);
    assert.equal(source.current.resourceVersion, "10");
    informer.stop();
  });

  test("410 Gone lists again and reports what changed meanwhile, deletions included", async () => {
    for (const gone of ["event", "status"] as const) {
      const source = new ScriptedSource();
      source.lists.push({ items: [item("west", "a", "1"), item("east", "b", "2"), item("south", "d", "3")], resourceVersion: "10" });
      source.lists.push({ items: [item("west", "a", "1"), item("south", "d", "30"), item("north", "c", "31")], resourceVersion: "40" });
      const { informer, changes } = start(source);
      await until("a watch", () => source.watches.length === 1);
      changes.length = 0;
      if (gone === "event") {
        source.current.onEvent("ERROR", { kind: "Status", code: 410, reason: "Expired", message: "too old resource version" });
        source.current.onDone(null);
      } else {
        source.current.onDone(Object.assign(new Error("Gone"), { statusCode: 410 }));
      }
      await until("a watch after the second list", () => source.watches.length === 2);
      assert.equal(source.listCalls, 2, gone);
      assert.equal(source.current.resourceVersion, "40", gone);
      assert.deepEqual([...changes].sort(), ["east", "north", "south"], gone);
      informer.stop();
    }
  });

  test("a failed list is tried again with backoff", async () => {
    const source = new ScriptedSource();
    source.lists.push(new Error("forbidden"), new Error("forbidden"), { items: [item("west", "a", "1")], resourceVersion: "10" });
    const { informer, changes } = start(source);
    await until("a watch", () => source.watches.length === 1);
    assert.equal(source.listCalls, 3);
    assert.deepEqual(changes, ["west"]);
    informer.stop();
  });

  test("after stop, nothing more is reported and nothing reconnects", async () => {
    const source = new ScriptedSource();
    source.lists.push({ items: [], resourceVersion: "10" });
    const { informer, changes } = start(source);
    await until("a watch", () => source.watches.length === 1);
    informer.stop();
    source.current.onEvent("ADDED", item("west", "a", "11"));
    source.current.onDone(null);
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.deepEqual(changes, []);
    assert.equal(source.watches.length, 1);
  });
});
