/**
 * Names and labels of the objects the Kubernetes platform makes, shared by the cluster
 * controller (which runs a site's pod), the site process (which exposes its link access and
 * listeners as Services) and the CLI (which reads them). Part of the platform's contract with
 * users: docs/kubernetes.md lists them.
 */
import { version } from "../../common/version.js";

/** The namespace and Deployment of the cluster controller the install bundle creates. */
export const CONTROLLER_NAMESPACE = "skupper";
export const CONTROLLER_NAME = "skupper-controller";

/** Per site namespace: the Deployment running the site process, its ServiceAccount and RoleBinding. */
export const ROUTER_DEPLOYMENT = "skupper-router";
export const SITE_SERVICE_ACCOUNT = "skupper-router";
export const SITE_ROLE_BINDING = "skupper-router";
/** The ClusterRole (in the bundle) a site's RoleBinding grants in its own namespace. */
export const SITE_CLUSTER_ROLE = "skupper-site";
/** The Service through which remote sites reach a site's link and grant servers. */
export const ROUTER_SERVICE = "skupper-router";

/** Labels of the site's pods: what the link access Service and the listeners' Services select. */
export const ROUTER_POD_LABELS: Readonly<Record<string, string>> = {
  "app.kubernetes.io/name": "skupper-router",
  "skupper.io/component": "router",
};

/** A label of the site's pods naming their Site (the name itself, or its start and a hash when longer than a label value may be). */
export const SITE_NAME_LABEL = "skupper.io/site";

/** Port names on the site's pod and its Service. */
export const LINK_PORT_NAME = "inter-router";
export const GRANT_PORT_NAME = "grant-server";

/** The install bundle, as messages name it. */
export const INSTALL_COMMAND = "kubectl apply -f deploy/kubernetes/skupper.yaml";

/** The image of the controller and of the site pods, built by `npm run image`. */
export function defaultImage(): string {
  return `localhost/skupper-ts:${version()}`;
}
