/**
 * The install bundle (src/operator/bundle.ts): the committed deploy/kubernetes/skupper.yaml and
 * the RBAC section of docs/kubernetes.md are what the generator writes now; the bundle holds the
 * CRDs, the controller and both ClusterRoles; every rule has its reason, in the YAML and in the
 * docs; the site's ClusterRole covers every resource the site process reads and writes (derived
 * from the kinds of the API, so a new kind fails here until the role has it); the controller's
 * ClusterRole grants what the controller calls and nothing near Secrets.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { parseAllDocuments } from "yaml";
import { CRDS_FILE, crdsYaml, CUSTOM_RESOURCE_KINDS, KINDS, pluralName } from "../../src/api/index.js";
import {
  allows,
  BUNDLE_FILE,
  bundleObjects,
  bundleYaml,
  CONTROLLER_RULES,
  DOCS_BEGIN,
  DOCS_END,
  RBAC_DOCS_FILE,
  rbacMarkdown,
  SITE_RULES,
  withRbacDocs,
  type Rule,
} from "../../src/operator/bundle.js";
import { CONTROLLER_NAME, CONTROLLER_NAMESPACE, defaultImage, SITE_CLUSTER_ROLE } from "../../src/platform/kubernetes/names.js";

const ROOT = new URL("../../../", import.meta.url);

type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; [field: string]: unknown };

function committedBundle(): Obj[] {
  return parseAllDocuments(readFileSync(new URL(BUNDLE_FILE, ROOT), "utf8")).map((doc) => doc.toJS() as Obj);
}

function find(objects: Obj[], kind: string, name: string): Obj {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  assert.ok(found, `the bundle has no ${kind} "${name}"`);
  return found;
}

type PolicyRule = { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] };

/** The rules of a ClusterRole of the committed file, as `allows` reads them. */
function rulesOf(objects: Obj[], name: string): Rule[] {
  return (find(objects, "ClusterRole", name).rules as PolicyRule[]).map((rule) => ({ ...rule, why: "" }));
}

describe("the install bundle", () => {
  test(`${BUNDLE_FILE} is what the generator writes now`, () => {
    const committed = readFileSync(new URL(BUNDLE_FILE, ROOT), "utf8");
    assert.ok(
      committed === bundleYaml(),
      `${BUNDLE_FILE} is stale: src/operator/bundle.ts, the CRDs or the version changed. Run \`npm run generate\` and commit the file.`,
    );
  });

  test(`the RBAC section of ${RBAC_DOCS_FILE} is what the generator writes now`, () => {
    const docs = readFileSync(new URL(RBAC_DOCS_FILE, ROOT), "utf8");
    assert.ok(docs.includes(DOCS_BEGIN) && docs.includes(DOCS_END), `${RBAC_DOCS_FILE} lost its generated section markers`);
    assert.ok(docs === withRbacDocs(docs), `the RBAC section of ${RBAC_DOCS_FILE} is stale. Run \`npm run generate\` and commit the file.`);
    assert.ok(docs.includes(rbacMarkdown()));
  });

  test("it says it is generated, how to apply it, and holds the objects in the order kubectl needs", () => {
    const text = readFileSync(new URL(BUNDLE_FILE, ROOT), "utf8");
    assert.match(text, /do not edit/);
    assert.match(text, /npm run generate/);
    assert.match(text, /kubectl apply -f deploy\/kubernetes\/skupper\.yaml/);
    const kinds = committedBundle().map((o) => `${o.kind}/${o.metadata.name}`);
    assert.deepEqual(kinds, [
      ...CUSTOM_RESOURCE_KINDS.map((kind) => `CustomResourceDefinition/${pluralName(kind)}.skupper.io`),
      `Namespace/${CONTROLLER_NAMESPACE}`,
      `ServiceAccount/${CONTROLLER_NAME}`,
      `ClusterRole/${CONTROLLER_NAME}`,
      `ClusterRoleBinding/${CONTROLLER_NAME}`,
      `ClusterRole/${SITE_CLUSTER_ROLE}`,
      `Deployment/${CONTROLLER_NAME}`,
    ]);
  });

  test(`its CRDs are those of ${CRDS_FILE}`, () => {
    const crds = parseAllDocuments(crdsYaml()).map((doc) => doc.toJS() as Obj);
    assert.deepEqual(
      committedBundle().filter((o) => o.kind === "CustomResourceDefinition"),
      crds,
    );
  });

  test("the controller runs as the bundle's ServiceAccount, bound to its ClusterRole, from the project's image, told to run sites from the same", () => {
    const objects = committedBundle();
    const binding = find(objects, "ClusterRoleBinding", CONTROLLER_NAME) as Obj & { roleRef: { kind: string; name: string }; subjects: Array<{ kind: string; name: string; namespace: string }> };
    assert.deepEqual(binding.roleRef, { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: CONTROLLER_NAME });
    assert.deepEqual(binding.subjects, [{ kind: "ServiceAccount", name: CONTROLLER_NAME, namespace: CONTROLLER_NAMESPACE }]);
    assert.equal(find(objects, "ServiceAccount", CONTROLLER_NAME).metadata.namespace, CONTROLLER_NAMESPACE);

    const deployment = find(objects, "Deployment", CONTROLLER_NAME) as Obj & { spec: any };
    assert.equal(deployment.metadata.namespace, CONTROLLER_NAMESPACE);
    assert.equal(deployment.spec.replicas, 1);
    assert.deepEqual(deployment.spec.strategy, { type: "Recreate" });
    const pod = deployment.spec.template.spec;
    assert.equal(pod.serviceAccountName, CONTROLLER_NAME);
    assert.equal(pod.automountServiceAccountToken, true);
    const [container] = pod.containers;
    assert.equal(container.image, defaultImage());
    assert.equal(container.imagePullPolicy, "IfNotPresent");
    assert.deepEqual(container.command, ["/usr/bin/node", "/app/dist/src/operator/main.js"]);
    assert.deepEqual(container.env, [{ name: "SKUPPER_IMAGE", value: defaultImage() }]);
    assert.deepEqual(container.securityContext, {
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    });
    assert.deepEqual(container.resources, { requests: { cpu: "50m", memory: "64Mi" }, limits: { memory: "256Mi" } });
    for (const [label, value] of Object.entries(deployment.spec.selector.matchLabels)) assert.equal(deployment.spec.template.metadata.labels[label], value, `the pods lack the selector's label ${label}`);
  });

  test("another image goes into the controller and into what it runs", () => {
    const deployment = bundleObjects("example.org/skupper:1").find((o) => (o as Obj).kind === "Deployment") as { spec: any };
    const [container] = deployment.spec.template.spec.containers;
    assert.equal(container.image, "example.org/skupper:1");
    assert.deepEqual(container.env, [{ name: "SKUPPER_IMAGE", value: "example.org/skupper:1" }]);
  });
});

describe("the ClusterRoles", () => {
  test("the committed roles are the tables, each rule preceded by its reason in the YAML", () => {
    const objects = committedBundle();
    const strip = (rules: readonly Rule[]) => rules.map(({ why: _why, ...rule }) => rule);
    assert.deepEqual(find(objects, "ClusterRole", CONTROLLER_NAME).rules, strip(CONTROLLER_RULES));
    assert.deepEqual(find(objects, "ClusterRole", SITE_CLUSTER_ROLE).rules, strip(SITE_RULES));
    const text = readFileSync(new URL(BUNDLE_FILE, ROOT), "utf8");
    for (const rule of [...CONTROLLER_RULES, ...SITE_RULES]) {
      assert.ok(rule.why.length > 20 && rule.why.endsWith("."), `a rule on ${rule.resources.join(",")} has no sentence saying why`);
      assert.ok(text.includes(`# ${rule.why}`), `the reason of the rule on ${rule.resources.join(",")} is not in the bundle`);
    }
  });

  test("no rule grants a wildcard", () => {
    for (const rule of [...CONTROLLER_RULES, ...SITE_RULES]) {
      for (const field of [rule.apiGroups, rule.resources, rule.verbs, rule.resourceNames ?? []]) assert.ok(!field.includes("*"), JSON.stringify(rule));
    }
  });

  test("the site's role covers every resource the site process reads and writes", () => {
    const rules = rulesOf(committedBundle(), SITE_CLUSTER_ROLE);
    const needs: Array<[group: string, resource: string, verbs: string[]]> = [];
    // The resource store: every kind of the API, Secrets included (src/platform/kubernetes/resource-store.ts).
    for (const kind of KINDS) {
      if (kind === "Secret") {
        needs.push(["", "secrets", ["get", "list", "watch", "create", "update", "delete"]]);
      } else {
        needs.push(["skupper.io", pluralName(kind), ["get", "list", "watch", "create", "update", "delete"]]);
        needs.push(["skupper.io", `${pluralName(kind)}/status`, ["get", "update"]]);
      }
    }
    // Its identity and network view (state.ts), its Services, the pods of selector Connectors.
    needs.push(["", "configmaps", ["get", "create", "update"]]);
    needs.push(["", "services", ["get", "list", "watch", "create", "update", "delete"]]);
    needs.push(["", "pods", ["get", "list", "watch"]]);
    for (const [group, resource, verbs] of needs) {
      for (const verb of verbs) assert.ok(allows(rules, group, resource, verb), `the ClusterRole ${SITE_CLUSTER_ROLE} does not allow "${verb}" on ${resource}${group ? `.${group}` : ""}`);
    }
  });

  test("the site's role holds nothing outside what a site does in its namespace", () => {
    const rules = rulesOf(committedBundle(), SITE_CLUSTER_ROLE);
    for (const [group, resource] of [["", "namespaces"], ["", "nodes"], ["apps", "deployments"], ["", "serviceaccounts"], ["rbac.authorization.k8s.io", "rolebindings"], ["apiextensions.k8s.io", "customresourcedefinitions"]] as const) {
      for (const verb of ["get", "list", "create", "update", "delete"]) assert.ok(!allows(rules, group, resource, verb), `${SITE_CLUSTER_ROLE} allows ${verb} on ${resource}`);
    }
    assert.ok(!allows(rules, "", "configmaps", "delete"));
  });

  test("the controller's role allows what the controller does, binds only skupper-site, and reads no Secret", () => {
    const rules = rulesOf(committedBundle(), CONTROLLER_NAME);
    const does: Array<[string, string, string[]]> = [
      ["skupper.io", "sites", ["get", "list", "watch"]],
      ["", "serviceaccounts", ["get", "list", "watch", "create", "update", "delete"]],
      ["rbac.authorization.k8s.io", "rolebindings", ["get", "list", "watch", "create", "update", "delete"]],
      ["apps", "deployments", ["get", "list", "watch", "create", "update", "delete"]],
    ];
    for (const [group, resource, verbs] of does) for (const verb of verbs) assert.ok(allows(rules, group, resource, verb), `${CONTROLLER_NAME} may not ${verb} ${resource}`);
    assert.ok(allows(rules, "rbac.authorization.k8s.io", "clusterroles", "bind", SITE_CLUSTER_ROLE));
    assert.ok(!allows(rules, "rbac.authorization.k8s.io", "clusterroles", "bind", "cluster-admin"), "the controller could bind any ClusterRole");
    assert.ok(!allows(rules, "rbac.authorization.k8s.io", "clusterroles", "escalate", SITE_CLUSTER_ROLE));
    for (const verb of ["create", "update", "patch", "delete"]) assert.ok(!allows(rules, "skupper.io", "sites", verb), `the controller may ${verb} Sites`);
    for (const verb of ["update", "patch"]) assert.ok(!allows(rules, "skupper.io", "sites/status", verb), "the controller may write a Site's status");
    for (const verb of ["get", "list", "watch"]) assert.ok(!allows(rules, "", "secrets", verb), `the controller may ${verb} Secrets`);
    // Everything it has is something it does (or, for sites/finalizers, what setting blockOwnerDeletion asks).
    const granted = rules.flatMap((rule) => rule.resources.flatMap((resource) => rule.verbs.map((verb) => `${resource}:${verb}`)));
    const expected = [...does.flatMap(([, resource, verbs]) => verbs.map((verb) => `${resource}:${verb}`)), "clusterroles:bind", "sites/finalizers:update"];
    assert.deepEqual([...granted].sort(), [...expected].sort());
  });
});
