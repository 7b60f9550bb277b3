/**
 * The Kubernetes SiteRequestHandler, run by the CLI with the user's credentials: on the local
 * platform a client asks the site process (which alone can read the keys) over a private
 * socket; on Kubernetes the keys are Secrets, and whoever may read Secrets in the namespace
 * can read the site CA anyway. Doing the work here therefore gives a user nothing RBAC did not
 * already give them, and needs no request channel into the pod (docs/kubernetes.md).
 *
 * - `generateLink`: issues a Link and its Secret from the site CA (Secret `skupper-site-ca`) for
 *   the host and port the site advertises (ConfigMap `skupper-network-status`).
 * - `revokeAccess`: deletes every AccessGrant and the Secrets of the site CA, the link server and
 *   the grant server, then restarts the site's pod, which makes a new CA as it starts.
 */
import {
  GRANT_SERVER,
  isLoopback,
  linkAccessEnabled,
  observerConfig,
  namespaceFlag,
  SITE_CA,
  SITE_SERVER,
  type Link,
  type NetworkStatus,
  type Secret,
  type Site,
} from "../../api/index.js";
import { SkupperError } from "../../common/errors.js";
import { issueGeneratedLink, linkAccessNotEnabled, revokeWithUserIssuer, siteIssuer, userIssuer } from "../../grants/index.js";
import type { CredentialStore, LinkBundleRequest, ObserverAccess, ResourceStore, SiteRequestHandler, SiteRunnerStatus } from "../types.js";
import { ROUTER_DEPLOYMENT } from "./names.js";
import { activeSite } from "./site-runner.js";

/** What the requests need of the runner: whether the site's pod runs, and replacing it. */
export interface SitePod {
  status(): Promise<SiteRunnerStatus>;
  /** Replaces the site's pod and resolves once a new one is ready. */
  restart(): Promise<unknown>;
  /** The error for a request that needs the site's pod while none is ready. */
  notRunning(): Error;
}

export interface KubernetesSiteRequestsParts {
  namespace: string;
  resources: ResourceStore;
  credentials: CredentialStore;
  /** The view the site published. */
  networkStatus(): Promise<NetworkStatus | undefined>;
  /** The observer credential the site made, if any (a Secret). */
  observerCredential(): Promise<string | undefined>;
  pod: SitePod;
}

export class KubernetesSiteRequests implements SiteRequestHandler {
  constructor(private readonly parts: KubernetesSiteRequestsParts) {}

  async generateLink(request: LinkBundleRequest): Promise<{ link: Link; secret: Secret }> {
    const { namespace, credentials } = this.parts;
    const nsFlag = namespaceFlag(namespace);
    const site = await this.requireSite();
    if (!linkAccessEnabled(site)) throw linkAccessNotEnabled();
    if (!(await this.parts.pod.status()).running) throw this.parts.pod.notRunning();
    const notReady = () => new SkupperError("ERR_SITE_NOT_READY", `The site "${site.metadata.name}" has not set up link access yet; check "skupper${nsFlag} site status"`);
    const view = await this.parts.networkStatus();
    const access = view?.siteName === site.metadata.name ? view.linkAccess : undefined;
    if (!view || !access || !isReady(site)) throw notReady();
    const issuerName = siteIssuer(site);
    const siteCa = issuerName === SITE_CA ? await credentials.load(SITE_CA) : userIssuer(issuerName, await this.parts.resources.get("Secret", issuerName));
    if (!siteCa) throw notReady();
    if (typeof siteCa === "string") throw new SkupperError("ERR_SITE_NOT_READY", siteCa);
    const host = request.host ?? access.hosts[0];
    if (!host) throw new SkupperError("ERR_SITE_NOT_READY", `The site "${site.metadata.name}" advertises no host for links yet; check "skupper${nsFlag} site status", or give one with --host`);
    return issueGeneratedLink(siteCa, request, { siteId: view.siteId, siteName: site.metadata.name, host, port: access.linkPort });
  }

  async revokeAccess(): Promise<void> {
    const { resources, credentials, pod } = this.parts;
    const site = await this.requireSite();
    if (siteIssuer(site) !== SITE_CA) throw revokeWithUserIssuer(site);
    if (!(await pod.status()).running) throw pod.notRunning();
    for (const grant of await resources.list("AccessGrant")) await resources.delete("AccessGrant", grant.metadata.name);
    for (const name of [SITE_CA, SITE_SERVER, GRANT_SERVER]) await credentials.remove(name);
    // The running site holds the old CA in memory: a new pod starts with none, and makes one.
    await pod.restart();
  }

  /**
   * The observer port as the Site sets it. It listens inside the site's pod: reached with
   * `kubectl port-forward` (which connects to the pod's own addresses, loopback included), or
   * from the cluster at the pod's address when bound to another address, with the credential.
   */
  async observerAccess(): Promise<ObserverAccess> {
    const { namespace, pod } = this.parts;
    const site = await this.requireSite();
    const config = observerConfig(site.spec.settings);
    if (!config.enabled) {
      return config.problems.length > 0
        ? { state: "error", message: config.problems.join("; "), credentialRequired: false }
        : { state: "off", message: "the observer port is off (the Site sets no observer-port)", credentialRequired: false };
    }
    if (!(await pod.status()).running) throw pod.notRunning();
    const credentialRequired = !isLoopback(config.host);
    const credential = credentialRequired ? await this.parts.observerCredential() : undefined;
    if (credentialRequired && !credential) {
      return { state: "error", message: "the site has not made the observer credential yet; try again once its pod is ready", credentialRequired };
    }
    return {
      state: "listening",
      message: `in the site's pod on ${config.host}:${config.port}`,
      url: `http://127.0.0.1:${config.port}/`,
      reach: `kubectl${namespaceFlag(namespace)} port-forward deployment/${ROUTER_DEPLOYMENT} ${config.port}`,
      credentialRequired,
      ...(credential ? { credential } : {}),
    };
  }

  private async requireSite(): Promise<Site> {
    const site = await activeSite(this.parts.resources);
    if (!site) {
      const { namespace } = this.parts;
      throw new SkupperError("ERR_NO_SITE", `There is no site in namespace "${namespace}". Create one with "skupper${namespaceFlag(namespace)} site create <name>".`);
    }
    return site;
  }
}

/** Ready, and the status is about the Site as it is now (the site has seen its last change). */
function isReady(site: Site): boolean {
  return site.status?.status === "Ready" && site.status.observedGeneration === site.metadata.generation;
}
