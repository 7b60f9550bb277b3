/**
 * `skupper --platform kubernetes` against a real cluster (KUBECONFIG, or the test cluster; skipped
 * with the reason otherwise), each test in a fresh namespace `cli-<hex>` removed afterwards.
 *
 * The cluster controller and the site image are built elsewhere, so where a test needs a running
 * site, it plays both here, as they will behave: a "controller" loop that makes the Deployment
 * `skupper-router` for the namespace's Site (owned by it, so garbage collection removes it with
 * the Site), whose pod is an idle `node` (the cluster's own image), and a "site process" that is
 * the real SiteController on the Kubernetes stores, with a real router and grant server, alive
 * exactly while that pod is ready. The CLI is the real one, in its own process.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { AppsV1Api, CoreV1Api, CustomObjectsApi, type V1Deployment } from "@kubernetes/client-node";
import YAML from "yaml";
import { API_VERSION, crdsYaml, CUSTOM_RESOURCE_KINDS, customResourceDefinitions, pluralName, SITE_CA, type AccessToken, type Link, type Secret } from "../../src/api/index.js";
import { isIssuedBy } from "../../src/certs/index.js";
import { errorMessage } from "../../src/common/errors.js";
import { setLogSink } from "../../src/common/log.js";
import { SiteController } from "../../src/controller/index.js";
import {
  activeSite,
  KubernetesCredentialStore,
  KubernetesResourceStore,
  KubernetesSiteState,
  kubernetesConfig,
  ROUTER_POD_SELECTOR,
  SiteWorkloads,
  type KubeConfig,
} from "../../src/platform/kubernetes/index.js";
import { CONTROLLER_NAME, CONTROLLER_NAMESPACE, ROUTER_DEPLOYMENT, ROUTER_POD_LABELS } from "../../src/platform/kubernetes/names.js";
import { eventually, freePort, skupper, type CliResult } from "../helpers/cli.js";
import { applyManifest, garbageCollectorComplaints, kubectl, useCluster } from "../helpers/kube-cluster.js";

const cluster = await useCluster();
const skip = "skip" in cluster ? cluster.skip : false;
let config: KubeConfig;
/** Why the tests that play the controller cannot run: a real one would run the test namespaces' sites too. */
let realController: string | false = false;
const namespaces = new Set<string>();
const logLines: string[] = [];
const scratch = await fs.mkdtemp(path.join(os.tmpdir(), "skupper-kube-cli-"));
/** The cluster's node image (tools/kube): what the stand-in site pods run. */
const NODE_IMAGE = "local/node-base:1";

async function waitForCrds(): Promise<void> {
  const result = await kubectl(["wait", "--for", "condition=established", "--timeout=60s", ...customResourceDefinitions().map((crd) => `crd/${crd.metadata.name}`)], { timeoutMs: 70_000 });
  assert.equal(result.code, 0, result.stderr);
}

async function freshNamespace(): Promise<string> {
  const namespace = `cli-${randomBytes(4).toString("hex")}`;
  await config.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: namespace } } });
  namespaces.add(namespace);
  return namespace;
}

/** Lets go of every custom resource of the namespace (their finalizers), then deletes it without waiting. */
async function removeNamespace(namespace: string): Promise<void> {
  const custom = config.makeApiClient(CustomObjectsApi);
  for (const kind of CUSTOM_RESOURCE_KINDS) {
    const where = { group: "skupper.io", version: "v2alpha1", namespace, plural: pluralName(kind) };
    const list = (await custom.listNamespacedCustomObject(where).catch(() => ({ items: [] }))) as { items: Array<{ metadata: { name: string; finalizers?: string[] } }> };
    for (const item of list.items) {
      if (!item.metadata.finalizers?.length) continue;
      item.metadata.finalizers = [];
      await custom.replaceNamespacedCustomObject({ ...where, name: item.metadata.name, body: item }).catch(() => undefined);
    }
  }
  await config.makeApiClient(CoreV1Api).deleteNamespace({ name: namespace }).catch(() => undefined);
  namespaces.delete(namespace);
}

/** The CLI on the cluster's kubeconfig, platform from SKUPPER_PLATFORM. */
function cli(namespace: string, args: string[], timeoutMs = 120_000): Promise<CliResult> {
  const kubeconfig = (cluster as { kubeconfig: string }).kubeconfig;
  return skupper(["-n", namespace, ...args], { home: scratch, env: { KUBECONFIG: kubeconfig, SKUPPER_PLATFORM: "kubernetes" }, timeoutMs });
}

async function ok(namespace: string, args: string[]): Promise<CliResult> {
  const result = await cli(namespace, args);
  if (result.code !== 0) {
    const gc = args[0] === "site" && args[1] === "delete" ? `\n${garbageCollectorComplaints()}` : "";
    assert.fail(`skupper -n ${namespace} ${args.join(" ")} exited ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}\n${recentLog()}${gc}`);
  }
  return result;
}

async function kubectlJson<T>(namespace: string, args: string[]): Promise<T> {
  const out = await kubectl(["-n", namespace, ...args, "-o", "json"]);
  assert.equal(out.code, 0, out.stderr);
  return JSON.parse(out.stdout) as T;
}

interface Cr {
  metadata: { name: string };
  spec: Record<string, unknown>;
  status?: Record<string, unknown>;
}

function recentLog(): string {
  return `site log:\n${logLines.slice(-30).join("\n")}`;
}

/**
 * Stands in for the cluster controller and the site image in one namespace: makes the site's
 * Deployment (owned by the Site) and runs the site's controller in this process while its pod
 * is ready. Stop it before the test ends.
 */
class StandInSite {
  readonly resources: KubernetesResourceStore;
  readonly credentials: KubernetesCredentialStore;
  readonly state: KubernetesSiteState;
  private readonly workloads: SiteWorkloads;
  private readonly apps: AppsV1Api;
  private controller: SiteController | undefined;
  /** The pod the running controller belongs to. */
  private pod: string | undefined;
  /** Site processes started so far (one per ready pod). */
  starts = 0;
  private stopped = false;
  private loop: Promise<void> | undefined;

  constructor(
    readonly namespace: string,
    private readonly image = NODE_IMAGE,
  ) {
    this.resources = new KubernetesResourceStore(config, { namespace });
    this.credentials = new KubernetesCredentialStore(config, { namespace });
    this.state = new KubernetesSiteState(config, { namespace });
    this.workloads = new SiteWorkloads(config, namespace);
    this.apps = config.makeApiClient(AppsV1Api);
  }

  start(): this {
    this.loop = (async () => {
      while (!this.stopped) {
        try {
          await this.step();
        } catch (err) {
          logLines.push(`stand-in site of ${this.namespace}: ${errorMessage(err)}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    })();
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    await this.controller?.stop();
    this.controller = undefined;
  }

  private async step(): Promise<void> {
    // The cluster controller: a Deployment for the active Site, owned by it.
    const site = await activeSite(this.resources);
    if (site && !(await this.workloads.routerDeployment())) await this.apps.createNamespacedDeployment({ namespace: this.namespace, body: this.deployment(site.metadata.name, site.metadata.uid as string) });
    // The site process: alive exactly while its pod is ready.
    const ready = (await this.workloads.routerPods()).find((p) => p.ready)?.name;
    if (this.pod !== undefined && ready !== this.pod) {
      await this.controller?.stop();
      this.controller = undefined;
      this.pod = undefined;
    }
    if (ready !== undefined && this.pod === undefined && !this.stopped) {
      const controller = new SiteController(
        { namespace: this.namespace, resources: this.resources, credentials: this.credentials, state: new KubernetesSiteState(config, { namespace: this.namespace }) },
        { version: "9.9.9-test", backoff: { initialMs: 200, maxMs: 2000 } },
      );
      await controller.start();
      this.controller = controller;
      this.pod = ready;
      this.starts++;
    }
  }

  private deployment(site: string, uid: string): V1Deployment {
    return {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: ROUTER_DEPLOYMENT, ownerReferences: [{ apiVersion: API_VERSION, kind: "Site", name: site, uid, controller: true, blockOwnerDeletion: true }] },
      spec: {
        replicas: 1,
        selector: { matchLabels: { ...ROUTER_POD_LABELS } },
        template: {
          metadata: { labels: { ...ROUTER_POD_LABELS } },
          spec: {
            terminationGracePeriodSeconds: 1,
            containers: [{ name: "router", image: this.image, imagePullPolicy: "Never", command: ["/usr/bin/node", "-e", "setInterval(() => {}, 1 << 30)"] }],
          },
        },
      },
    };
  }
}

describe("the CLI on Kubernetes", { skip }, () => {
  before(async () => {
    if (skip) return;
    setLogSink((line) => {
      logLines.push(line);
      if (logLines.length > 2000) logLines.splice(0, 1000);
    });
    config = kubernetesConfig({ kubeconfig: (cluster as { kubeconfig: string }).kubeconfig });
    await applyManifest(crdsYaml());
    await waitForCrds();
    const controller = await new SiteWorkloads(config, "default").controller();
    if (controller.state === "present") {
      realController = `a Skupper controller runs in this cluster (Deployment ${CONTROLLER_NAME} in namespace ${CONTROLLER_NAMESPACE}): it would run the test namespaces' sites itself`;
    }
  });

  after(async () => {
    for (const namespace of [...namespaces]) await removeNamespace(namespace);
    await fs.rm(scratch, { recursive: true, force: true });
  });

  test("an unknown --context is refused like kubectl refuses it, as invalid input", async () => {
    const result = await cli("default", ["--context", "nope", "site", "status"]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /^Error: The kubeconfig has no context "nope" \(it has: [^)]+\)\n$/);
  });

  test("site, listener and connector commands write the custom resources kubectl shows", async () => {
    const ns = await freshNamespace();
    try {
      const created = await ok(ns, ["site", "create", "west", "--enable-link-access", "--link-access-type", "loadbalancer", "--wait", "none"]);
      assert.equal(created.stdout, 'Site "west" is created.\n');
      assert.deepEqual((await kubectlJson<Cr>(ns, ["get", "site", "west"])).spec, { linkAccess: "loadbalancer" });
      const again = await cli(ns, ["site", "create", "east", "--wait", "none"]);
      assert.equal(again.code, 2);
      assert.equal(again.stderr, 'Error: There is already a site created for this namespace ("west")\n');
      const route = await cli(ns, ["site", "generate", "x", "--enable-link-access", "--link-access-type", "route"]);
      assert.equal(route.code, 2);
      assert.match(route.stderr, /value route not allowed\. It should be one of this options: \[default nodeport loadbalancer\]/);
      await ok(ns, ["site", "update", "--link-access-type", "nodeport", "--wait", "none"]);
      assert.deepEqual((await kubectlJson<Cr>(ns, ["get", "site", "west"])).spec, { linkAccess: "nodeport" });

      const listener = await ok(ns, ["listener", "create", "web", "8080"]);
      if (!realController) assert.match(listener.stdout, /^Note: the site pod of namespace "cli-[0-9a-f]+" is not running; the listener takes effect once it runs\.\nListener "web" is created\.\n$/);
      assert.deepEqual((await kubectlJson<Cr>(ns, ["get", "listener", "web"])).spec, { routingKey: "web", host: "web", port: 8080 }, "on Kubernetes a listener's host is its Service: by default its name");

      await applyManifest(
        YAML.stringify({
          apiVersion: "apps/v1",
          kind: "Deployment",
          metadata: { name: "backend", namespace: ns },
          spec: { replicas: 0, selector: { matchLabels: { app: "backend", tier: "api" } }, template: { metadata: { labels: { app: "backend", tier: "api" } }, spec: { containers: [{ name: "b", image: NODE_IMAGE }] } } },
        }),
      );
      // (--wait none: with a real site no pods match these selectors, so they never become configured.)
      await ok(ns, ["connector", "create", "db", "5432", "--selector", "app=postgres", "--wait", "none"]);
      await ok(ns, ["connector", "create", "backend", "8080", "--workload", "deployment/backend", "--wait", "none"]);
      await ok(ns, ["connector", "create", "plain", "80", "--wait", "none"]);
      const connectors = await kubectlJson<{ items: Cr[] }>(ns, ["get", "connectors"]);
      assert.deepEqual(
        Object.fromEntries(connectors.items.map((c) => [c.metadata.name, c.spec])),
        {
          backend: { routingKey: "backend", selector: "app=backend,tier=api", port: 8080 },
          db: { routingKey: "db", selector: "app=postgres", port: 5432 },
          plain: { routingKey: "plain", selector: "app=plain", port: 80 },
        },
        "--workload takes the Deployment's matchLabels; without --host or --selector the selector is app=<name>, as the original's",
      );
      const missing = await cli(ns, ["connector", "create", "x", "80", "--workload", "deployment/nope"]);
      assert.equal(missing.code, 2);
      assert.equal(missing.stderr, `Error: Deployment "nope" does not exist in namespace "${ns}"\n`);
      const both = await cli(ns, ["connector", "create", "y", "80", "--host", "db.example", "--selector", "app=db"]);
      assert.equal(both.code, 2);
      assert.match(both.stderr, /only one of --host, --selector and --workload can be given/);
      await ok(ns, ["connector", "update", "db", "--host", "db.example", "--wait", "none"]);
      assert.deepEqual((await kubectlJson<Cr>(ns, ["get", "connector", "db"])).spec, { routingKey: "db", host: "db.example", port: 5432 }, "a host replaces the selector");

      // apply, get and delete act on the custom resources, as kubectl's do.
      const listenerYaml = YAML.stringify({ apiVersion: API_VERSION, kind: "Listener", metadata: { name: "applied" }, spec: { routingKey: "r", host: "applied", port: 9090 } });
      const kubeconfig = (cluster as { kubeconfig: string }).kubeconfig;
      const applied = await skupper(["-n", ns, "apply", "-f", "-"], { home: scratch, env: { KUBECONFIG: kubeconfig, SKUPPER_PLATFORM: "kubernetes" }, input: listenerYaml });
      assert.equal(applied.code, 0, applied.stderr);
      assert.equal(applied.stdout, 'Listener "applied" created.\n');
      assert.equal((await ok(ns, ["get", "listener", "applied", "-o", "jsonpath={.spec.port}"])).stdout, "9090");
      assert.equal((await ok(ns, ["delete", "listener", "applied"])).stdout, 'Listener "applied" deleted.\n');
      assert.equal((await kubectl(["-n", ns, "get", "listener", "applied"])).code, 1);

      const get = await ok(ns, ["get", "connectors"]);
      assert.match(get.stdout, /^NAME\s+ROUTING KEY\s+PORT\s+HOST\s+SELECTOR\s+STATUS\s+HAS MATCHING LISTENER\s+MESSAGE$/m);
      assert.match(get.stdout, /^backend\s+backend\s+8080\s+app=backend,tier=api\s+(Pending|Error)\s/m, "a real site says no pods match");

      // Without a site pod, what needs one says so, and where to look (a real controller would start one).
      if (!realController) await checkWithoutSitePod(ns);

      const deleted = await ok(ns, ["site", "delete", "--all"]);
      assert.equal(deleted.stdout, 'Waiting for deletion to complete...\nSite "west" is deleted.\n');
      for (const plural of ["sites", "listeners", "connectors"]) assert.deepEqual((await kubectlJson<{ items: Cr[] }>(ns, ["get", plural])).items, [], plural);
    } finally {
      await removeNamespace(ns);
    }
  });

  async function checkWithoutSitePod(ns: string): Promise<void> {
    const status = await ok(ns, ["site", "status"]);
    assert.match(status.stdout, new RegExp(`^west\\s+Pending\\s+The site pod is not running; see "skupper -n ${ns} system status"$`, "m"));
    const token = await cli(ns, ["token", "issue", path.join(scratch, "never.yaml")]);
    assert.equal(token.code, 2);
    assert.match(token.stderr, new RegExp(`^Error: The site pod of namespace "${ns}" is not running\\. The Skupper controller runs it while the namespace has a Site; check "kubectl -n ${ns} get pods -l ${ROUTER_POD_SELECTOR}"`));
    const generate = await cli(ns, ["link", "generate"]);
    assert.equal(generate.code, 2);
    assert.equal(generate.stderr, `Error: The site "west" has not set up link access yet; check "skupper -n ${ns} site status" (is its site pod running?)\n`);
    const system = await ok(ns, ["system", "status"]);
    assert.match(system.stdout, /^Site pod:\s+not running$/m);
    assert.match(system.stdout, new RegExp(`^Log:\\s+kubectl -n ${ns} logs deployment/skupper-router$`, "m"));
  }

  test("site create in a cluster without the controller says what to install, within its timeout", async (t) => {
    if (realController) return t.skip(realController);
    const ns = await freshNamespace();
    try {
      const started = Date.now();
      const result = await cli(ns, ["site", "create", "west", "--timeout", "10s"]);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /Error: Nothing runs the site of namespace "cli-[0-9a-f]+": the Skupper controller is not installed in this cluster \(there is no Deployment "skupper-controller" in namespace "skupper"\)\. Install it with "kubectl apply -f deploy\/kubernetes\/skupper\.yaml"; it then starts the site\.\n$/);
      assert.ok(Date.now() - started < 30_000, "bounded by --timeout");
      assert.equal((await kubectlJson<Cr>(ns, ["get", "site", "west"])).metadata.name, "west", "the Site stays, for the controller once it is installed");
    } finally {
      await removeNamespace(ns);
    }
  });

  test("site create shows why the site pod does not start: the kubelet's reason", async (t) => {
    if (realController) return t.skip(realController);
    const ns = await freshNamespace();
    const stand = new StandInSite(ns, "localhost/skupper-no-such-image:0").start();
    try {
      const result = await cli(ns, ["site", "create", "west", "--timeout", "12s"]);
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, new RegExp(`^Waiting for the site pod in namespace "${ns}" \\(ErrImageNeverPull: [^\\n]*\\)…$`, "m"), "shown as soon as the kubelet reports it");
      assert.match(result.stderr, new RegExp(`Error: The site pod of namespace "${ns}" is not ready after 12 s \\(ErrImageNeverPull: .*\\)\\. See "kubectl -n ${ns} describe pods -l ${ROUTER_POD_SELECTOR}"`));
    } finally {
      await stand.stop();
      await removeNamespace(ns);
    }
  });

  // With the cluster's controller when one is installed, else with the stand-ins.
  test("two sites: token issue and redeem link them; link generate, revoke-access and site delete act on the site's pod and Secrets", async () => {
    const west = await freshNamespace();
    const east = await freshNamespace();
    const standIns = realController ? [] : [new StandInSite(west).start(), new StandInSite(east).start()];
    const westCredentials = new KubernetesCredentialStore(config, { namespace: west });
    const westResources = new KubernetesResourceStore(config, { namespace: west });
    try {
      // The stand-in sites run in this process: they listen on 127.0.0.1, on ports free here.
      const [linkPort, grantPort] = [await freePort(), await freePort()];
      const access = realController ? [] : ["--host", "127.0.0.1", "--bind-host", "127.0.0.1", "--link-port", String(linkPort), "--grant-server-port", String(grantPort)];
      const createdWest = await ok(west, ["site", "create", "west", "--enable-link-access", ...access]);
      assert.equal(createdWest.stdout, 'Waiting for status...\nSite "west" is ready.\n', "site create waits for the pod, then for the Site");
      await ok(east, ["site", "create", "east"]);
      const firstPod = (await new SiteWorkloads(config, west).routerPods())[0]?.name as string;
      assert.match((await ok(west, ["site", "status"])).stdout, /^west\s+Ready\s+OK$/m);
      assert.match((await ok(west, ["system", "status"])).stdout, new RegExp(`^Site pod:\\s+running \\(${firstPod}\\)$`, "m"));

      // A token from west, redeemed by east: a link over real TLS, between the two namespaces' sites.
      const tokenFile = path.join(scratch, `${west}.yaml`);
      const issued = await ok(west, ["token", "issue", tokenFile]);
      assert.match(issued.stdout, /^Waiting for token status \.\.\.\nAccess grant "west-[a-z0-9]+" is ready\.\nToken file .* created\./);
      const token = YAML.parse(await fs.readFile(tokenFile, "utf8")) as AccessToken;
      const published = (await new KubernetesSiteState(config, { namespace: west }).networkStatus())?.linkAccess;
      assert.ok(published, "west published its link access");
      if (!realController) assert.deepEqual([published.hosts[0], published.linkPort, published.grantServerPort], ["127.0.0.1", linkPort, grantPort]);
      assert.match(token.spec.url, new RegExp(`^https://${published.hosts[0]?.replace(/\./g, "\\.")}:${published.grantServerPort}/`));
      const redeemed = await ok(east, ["token", "redeem", tokenFile]);
      assert.match(redeemed.stdout, new RegExp(`^Token "${token.metadata.name}" has been redeemed\\.`));
      await eventually("east's link to be Ready", async () => /\sReady\s+west\s+1\s+outgoing\s+OK/.test((await ok(east, ["link", "status", "-o", "wide"])).stdout), 30_000);
      await eventually("west to see the incoming link", async () => /\sReady\s+east\s+1\s+incoming\s+OK/.test((await ok(west, ["link", "status", "-o", "wide"])).stdout), 30_000);
      assert.match((await ok(west, ["network", "status"])).stdout, /^Sites in the network: 2/);

      // link generate: a client certificate from west's CA (its Secret) for the advertised host and port.
      const generated = (await ok(west, ["link", "generate", "--name", "to-west"])).stdout;
      const [link, secret] = YAML.parseAllDocuments(generated).map((d) => d.toJS()) as [Link, Secret];
      assert.deepEqual(link.spec.endpoints, [{ name: "inter-router", host: published.hosts[0], port: String(published.linkPort), group: "skupper-router" }]);
      const westCa = (await westCredentials.load(SITE_CA))?.cert as string;
      assert.ok(westCa, "west has a site CA");
      assert.ok(isIssuedBy(Buffer.from(secret.data?.["tls.crt"] ?? "", "base64").toString(), westCa));

      // revoke-access: grants gone, west's pod replaced, and the CA the new pod made is another one.
      await ok(west, ["token", "issue", path.join(scratch, `${west}-2.yaml`)]);
      const revoked = await ok(west, ["revoke-access"]);
      assert.match(revoked.stdout, /^Access to site "west" has been revoked/);
      await eventually("the grants to be gone (finalized by the site)", async () => (await westResources.list("AccessGrant")).length === 0, 30_000);
      const secondPod = (await new SiteWorkloads(config, west).routerPods()).find((p) => p.ready)?.name;
      assert.ok(secondPod && secondPod !== firstPod, `a new pod (${secondPod}) replaced ${firstPod}`);
      const newCa = await eventually("a new site CA", async () => {
        const ca = (await westCredentials.load(SITE_CA))?.cert;
        return ca && ca !== westCa ? ca : undefined;
      }, 30_000);
      assert.ok(!isIssuedBy(Buffer.from(secret.data?.["tls.crt"] ?? "", "base64").toString(), newCa), "what west issued before is no longer its CA's");
      await eventually("east's link to fail against west's new CA", async () => !/\sReady\s+west/.test((await ok(east, ["link", "status", "-o", "wide"])).stdout), 30_000);

      // link delete: the Link goes once east's site has closed it, and so do its Secret and token.
      const linkName = token.metadata.name;
      assert.equal((await ok(east, ["link", "delete", linkName])).stdout, `Link "${linkName}" is deleted.\n`);
      for (const what of ["link", "secret", "accesstoken"]) assert.equal((await kubectl(["-n", east, "get", what, linkName])).code, 1, `${what} ${linkName} is gone`);

      // site delete: the Site goes (the site finalizes it), then its Deployment (garbage collected), then the site's state.
      const deleted = await ok(west, ["site", "delete"]);
      assert.equal(deleted.stdout, 'Waiting for deletion to complete...\nSite "west" is deleted.\n');
      assert.equal((await kubectl(["-n", west, "get", "deployment", ROUTER_DEPLOYMENT])).code, 1, "the site's Deployment is gone");
      const left = await kubectlJson<{ items: Cr[] }>(west, ["get", "secrets,configmaps", "-l", "app.kubernetes.io/managed-by=skupper"]);
      assert.deepEqual(left.items.map((i) => i.metadata.name), [], "no credentials or state of the site are left");
      if (standIns[0]) assert.equal(standIns[0].starts, 2, "one site process per pod: the first, and the one after revoke-access");
    } finally {
      for (const standIn of standIns) await standIn.stop();
      await removeNamespace(west);
      await removeNamespace(east);
    }
  });
});
