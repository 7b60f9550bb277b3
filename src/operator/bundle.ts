/**
 * The install bundle, `deploy/kubernetes/skupper.yaml`: one file for `kubectl apply -f` with the
 * CRDs, the namespace `skupper`, the cluster controller (ServiceAccount, ClusterRole and its
 * binding, Deployment) and the ClusterRole `skupper-site` that each site's RoleBinding grants in
 * its own namespace. The RBAC rules are one table each, with the reason for every rule: the same
 * table builds the ClusterRoles and the section of docs/kubernetes.md that explains them.
 * `npm run generate` writes both; test/unit/bundle.test.ts fails while either is stale.
 */
import type { V1ClusterRole, V1ClusterRoleBinding, V1Deployment, V1Namespace, V1PolicyRule, V1ServiceAccount } from "@kubernetes/client-node";
import { Document, type YAMLMap } from "yaml";
import { API_VERSION, CUSTOM_RESOURCE_KINDS, customResourceDefinitions, pluralName } from "../api/index.js";
import { CONTROLLER_NAME, CONTROLLER_NAMESPACE, defaultImage, SITE_CLUSTER_ROLE } from "../platform/kubernetes/names.js";
import { CONTROLLER_COMMAND, restrictedSecurityContext } from "./objects.js";
import { IMAGE_ENV } from "./settings.js";

export const BUNDLE_FILE = "deploy/kubernetes/skupper.yaml";
/** The file whose generated section lists the rules. */
export const RBAC_DOCS_FILE = "docs/kubernetes.md";

const SKUPPER_GROUP = API_VERSION.split("/")[0]!;
const RBAC_GROUP = "rbac.authorization.k8s.io";

/** One rule of a ClusterRole and why it is there. */
export interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
  /** One sentence: what needs it. Shown in the bundle and in the docs. */
  why: string;
}

/** The kinds a site reconciles, as RBAC names them: `sites`, `links`, … (every custom resource kind). */
export const SKUPPER_RESOURCES: readonly string[] = CUSTOM_RESOURCE_KINDS.map(pluralName);

/** What the cluster controller may do, in every namespace (or, bound by RoleBindings, in those it watches). */
export const CONTROLLER_RULES: readonly Rule[] = [
  {
    apiGroups: [SKUPPER_GROUP],
    resources: ["sites"],
    verbs: ["get", "list", "watch"],
    why: "Finds the Sites to run. It never writes a Site: a Site's status belongs to its site process.",
  },
  {
    apiGroups: [SKUPPER_GROUP],
    resources: ["sites/finalizers"],
    verbs: ["update"],
    why: "Lets it set `blockOwnerDeletion` in the owner reference to a Site where the OwnerReferencesPermissionEnforcement admission plugin is on (OpenShift). Gives no access to Sites.",
  },
  {
    apiGroups: [""],
    resources: ["serviceaccounts"],
    verbs: ["get", "list", "watch", "create", "update", "delete"],
    why: "Makes and repairs the ServiceAccount `skupper-router` of each site; deletes it when the Site names a ServiceAccount of its own.",
  },
  {
    apiGroups: [RBAC_GROUP],
    resources: ["rolebindings"],
    verbs: ["get", "list", "watch", "create", "update", "delete"],
    why: "Makes and repairs the RoleBinding `skupper-router` that grants `skupper-site` to that ServiceAccount in the site's namespace (a roleRef cannot change: such a binding is deleted and made anew).",
  },
  {
    apiGroups: [RBAC_GROUP],
    resources: ["clusterroles"],
    verbs: ["bind"],
    resourceNames: [SITE_CLUSTER_ROLE],
    why: `Lets it bind the ClusterRole \`${SITE_CLUSTER_ROLE}\`, and only that one, without holding its permissions itself.`,
  },
  {
    apiGroups: ["apps"],
    resources: ["deployments"],
    verbs: ["get", "list", "watch", "create", "update", "delete"],
    why: "Makes the Deployment `skupper-router` that runs each site process, puts it back when it is deleted or changed, and makes it anew when its selector differs.",
  },
];

/** What a site process may do in its own namespace (granted there by the RoleBinding `skupper-router`). */
export const SITE_RULES: readonly Rule[] = [
  {
    apiGroups: [SKUPPER_GROUP],
    resources: [...SKUPPER_RESOURCES],
    verbs: ["get", "list", "watch", "create", "update", "delete"],
    why: "The reconcilers read and watch every kind; a redemption creates the Links and AccessTokens it yields, a revoke deletes AccessGrants; `finalize` removes (an update) the finalizer earlier versions added.",
  },
  {
    apiGroups: [SKUPPER_GROUP],
    resources: SKUPPER_RESOURCES.map((resource) => `${resource}/status`),
    verbs: ["get", "update", "patch"],
    why: "Each reconciler writes its resource's status (Pending, Ready, Error, observedGeneration) apart from the spec.",
  },
  {
    apiGroups: [""],
    resources: ["secrets"],
    verbs: ["get", "list", "watch", "create", "update", "delete"],
    why: "The site's CAs and certificates (`skupper-site-ca`, …), Link credentials from redemptions, and pending redemptions are Secrets; a revoke or a deleted Link removes them.",
  },
  {
    apiGroups: [""],
    resources: ["configmaps"],
    verbs: ["get", "list", "watch", "create", "update"],
    why: "The site's identity (`skupper-site-state`) and the network view it publishes (`skupper-network-status`).",
  },
  {
    apiGroups: [""],
    resources: ["services"],
    verbs: ["get", "list", "watch", "create", "update", "delete"],
    why: "The Service `skupper-router` through which remote sites reach the link and grant servers, and one Service per Listener.",
  },
  {
    apiGroups: [""],
    resources: ["pods"],
    verbs: ["get", "list", "watch"],
    why: "A Connector with a `selector` sends its connections to the pods it selects.",
  },
  {
    apiGroups: [""],
    resources: ["events"],
    verbs: ["create"],
    why: "Reports what the site did as Events (`kubectl describe`, `kubectl get events`).",
  },
];

/** Whether `rules` allow `verb` on `resource` of `group` (optionally on one named object). */
export function allows(rules: readonly Rule[], group: string, resource: string, verb: string, name?: string): boolean {
  return rules.some(
    (rule) =>
      rule.apiGroups.includes(group) &&
      rule.resources.includes(resource) &&
      rule.verbs.includes(verb) &&
      (rule.resourceNames === undefined || (name !== undefined && rule.resourceNames.includes(name))),
  );
}

function policyRules(rules: readonly Rule[]): V1PolicyRule[] {
  return rules.map(({ apiGroups, resources, verbs, resourceNames }) => ({ apiGroups, resources, verbs, ...(resourceNames ? { resourceNames } : {}) }));
}

/** Labels of the installed objects. Not `managed-by: skupper`: that marks what Skupper makes at run time. */
const BUNDLE_LABELS = { "app.kubernetes.io/part-of": "skupper" };

export function controllerDeployment(image: string): V1Deployment {
  const labels = { "app.kubernetes.io/name": CONTROLLER_NAME, "app.kubernetes.io/component": "controller" };
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: CONTROLLER_NAME, namespace: CONTROLLER_NAMESPACE, labels: { ...BUNDLE_LABELS, ...labels } },
    spec: {
      replicas: 1,
      // One controller at a time: two would make the same objects at once.
      strategy: { type: "Recreate" },
      selector: { matchLabels: labels },
      template: {
        metadata: { labels: { ...BUNDLE_LABELS, ...labels } },
        spec: {
          serviceAccountName: CONTROLLER_NAME,
          automountServiceAccountToken: true,
          terminationGracePeriodSeconds: 10,
          containers: [
            {
              name: "controller",
              image,
              imagePullPolicy: "IfNotPresent",
              command: [...CONTROLLER_COMMAND],
              env: [{ name: IMAGE_ENV, value: image }],
              resources: { requests: { cpu: "50m", memory: "64Mi" }, limits: { memory: "256Mi" } },
              securityContext: restrictedSecurityContext(),
            },
          ],
        },
      },
    },
  };
}

/** The objects of the bundle, in the order `kubectl apply` needs them. */
export function bundleObjects(image: string = defaultImage()): object[] {
  const namespace: V1Namespace = { apiVersion: "v1", kind: "Namespace", metadata: { name: CONTROLLER_NAMESPACE, labels: { ...BUNDLE_LABELS } } };
  const serviceAccount: V1ServiceAccount = {
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: { name: CONTROLLER_NAME, namespace: CONTROLLER_NAMESPACE, labels: { ...BUNDLE_LABELS } },
  };
  const controllerRole: V1ClusterRole = {
    apiVersion: `${RBAC_GROUP}/v1`,
    kind: "ClusterRole",
    metadata: { name: CONTROLLER_NAME, labels: { ...BUNDLE_LABELS } },
    rules: policyRules(CONTROLLER_RULES),
  };
  const controllerBinding: V1ClusterRoleBinding = {
    apiVersion: `${RBAC_GROUP}/v1`,
    kind: "ClusterRoleBinding",
    metadata: { name: CONTROLLER_NAME, labels: { ...BUNDLE_LABELS } },
    roleRef: { apiGroup: RBAC_GROUP, kind: "ClusterRole", name: CONTROLLER_NAME },
    subjects: [{ kind: "ServiceAccount", name: CONTROLLER_NAME, namespace: CONTROLLER_NAMESPACE }],
  };
  const siteRole: V1ClusterRole = {
    apiVersion: `${RBAC_GROUP}/v1`,
    kind: "ClusterRole",
    metadata: { name: SITE_CLUSTER_ROLE, labels: { ...BUNDLE_LABELS } },
    rules: policyRules(SITE_RULES),
  };
  return [...customResourceDefinitions(), namespace, serviceAccount, controllerRole, controllerBinding, siteRole, controllerDeployment(image)];
}

const HEADER = [
  "# Skupper on Kubernetes (1.20 and newer): the CRDs, the cluster controller in the namespace",
  `# "${CONTROLLER_NAMESPACE}", and the ClusterRole "${SITE_CLUSTER_ROLE}" each site is granted in its own namespace.`,
  `#   kubectl apply -f ${BUNDLE_FILE}`,
  "# Generated by src/operator/bundle.ts: do not edit. Regenerate with `npm run generate`;",
  "# test/unit/bundle.test.ts fails while this file is stale. docs/kubernetes.md explains every object and rule.",
  "",
].join("\n");

/** The bundle as one multi-document YAML file, each RBAC rule preceded by its reason. */
export function bundleYaml(image: string = defaultImage()): string {
  const documents = bundleObjects(image).map((object) => {
    const doc = new Document(object);
    const role = object as V1ClusterRole;
    if (role.kind === "ClusterRole") {
      const table = role.metadata?.name === SITE_CLUSTER_ROLE ? SITE_RULES : CONTROLLER_RULES;
      table.forEach((rule, i) => {
        const node = doc.getIn(["rules", i], true) as YAMLMap | undefined;
        if (node) node.commentBefore = ` ${rule.why}`;
      });
    }
    return `---\n${doc.toString({ lineWidth: 0 })}`;
  });
  return HEADER + documents.join("");
}

// ---- the generated part of docs/kubernetes.md ----

export const DOCS_BEGIN = "<!-- BEGIN generated by src/operator/bundle.ts (npm run generate): RBAC rules -->";
export const DOCS_END = "<!-- END generated: RBAC rules -->";

function ruleTable(rules: readonly Rule[]): string {
  const rows = rules.map((rule) => {
    const resources = rule.resources.map((r) => `\`${r}\``).join(", ");
    const group = rule.apiGroups.map((g) => (g === "" ? "core" : `\`${g}\``)).join(", ");
    const names = rule.resourceNames ? ` (only ${rule.resourceNames.map((n) => `\`${n}\``).join(", ")})` : "";
    return `| ${group} | ${resources}${names} | ${rule.verbs.join(", ")} | ${rule.why} |`;
  });
  return ["| API group | Resources | Verbs | Why |", "| --- | --- | --- | --- |", ...rows].join("\n");
}

/** The markdown between the markers. */
export function rbacMarkdown(): string {
  return [
    `ClusterRole \`${CONTROLLER_NAME}\`, bound to the ServiceAccount \`${CONTROLLER_NAMESPACE}/${CONTROLLER_NAME}\` by the ClusterRoleBinding \`${CONTROLLER_NAME}\`:`,
    "",
    ruleTable(CONTROLLER_RULES),
    "",
    `ClusterRole \`${SITE_CLUSTER_ROLE}\`, granted to each site's ServiceAccount \`skupper-router\` in the site's namespace only, by the RoleBinding \`skupper-router\`:`,
    "",
    ruleTable(SITE_RULES),
  ].join("\n");
}

/** `markdown` with the generated section replaced by the current one; throws if the markers are missing. */
export function withRbacDocs(markdown: string): string {
  const begin = markdown.indexOf(DOCS_BEGIN);
  const end = markdown.indexOf(DOCS_END);
  if (begin < 0 || end < begin) throw new Error(`${RBAC_DOCS_FILE} has no section marked "${DOCS_BEGIN}" … "${DOCS_END}"`);
  return `${markdown.slice(0, begin + DOCS_BEGIN.length)}\n${rbacMarkdown()}\n${markdown.slice(end)}`;
}
