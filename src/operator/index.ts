/**
 * The cluster controller (docs/kubernetes.md, "The cluster controller and the install bundle"):
 * for the Site of each namespace, the ServiceAccount, RoleBinding and Deployment that run the
 * site process there; and the install bundle that deploys the controller itself.
 */
export { Operator, availability, chooseSite, type OperatorOptions } from "./operator.js";
export { controllerSettings, IMAGE_ENV, watchNamespaces, WATCH_NAMESPACES_ENV, type ControllerSettings } from "./settings.js";
export {
  CONTROLLER_COMMAND,
  covers,
  deploymentDrifted,
  deploymentFor,
  deploymentUpdate,
  FOREGROUND_DELETION,
  isSkuppers,
  NAMESPACE_ENV,
  restrictedSecurityContext,
  roleBindingDrift,
  roleBindingFor,
  RUN_AS,
  selectorChanged,
  serviceAccountFor,
  SITE_COMMAND,
  siteLabelValue,
  siteObjects,
  siteOwnerReference,
  siteServiceAccount,
  type SiteObject,
  type SiteObjects,
} from "./objects.js";
export { Informer, type ListWatchSource, type Listing } from "./informer.js";
