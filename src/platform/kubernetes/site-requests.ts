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
  linkAccessEnabled,
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
import type { CredentialStore, LinkBundleRequest, ResourceStore, SiteRequestHandler, SiteRunnerStatus } from "../types.js";
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
