/**
 * `skupper --platform kubernetes` without a cluster: the real CLI against a small fake API server
 * (what it asks for, and what it says when the Skupper CRDs are missing), the kubeconfig
 * flags, and the Kubernetes runner and requests against fakes of what they read.
 */
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { ApiException, type V1Pod } from "@kubernetes/client-node";
import YAML from "yaml";
import { API_VERSION, NETWORK_STATUS_SCHEMA, SITE_CA, SITE_SERVER, GRANT_SERVER, type NetworkStatus, type Site } from "../../src/api/index.js";
import { createCA, isIssuedBy } from "../../src/certs/index.js";
import { SkupperError } from "../../src/common/errors.js";
import {
  CliResourceStore,
  KubernetesSiteRequests,
  KubernetesSiteRunner,
  kubernetesConfig,
  podState,
  SiteWorkloads,
  type SitePod,
} from "../../src/platform/kubernetes/index.js";
import { MemoryCredentialStore, MemoryResourceStore } from "../../src/platform/memory/index.js";
import { skupper } from "../helpers/cli.js";

const INSTALL = 'Install Skupper with "kubectl apply -f deploy/kubernetes/skupper.yaml"';
const root = await fs.mkdtemp(path.join(os.tmpdir(), "skupper-kube-cli-"));
after(() => fs.rm(root, { recursive: true, force: true }));

// ---- a fake API server ----

interface Answer {
  status: number;
  body: unknown;
}

type Route = (method: string, pathname: string, query: URLSearchParams) => Answer | undefined;

const NOT_FOUND_PAGE: Answer = { status: 404, body: "404 page not found\n" };

function notFound(kind: string, name: string): Answer {
  return { status: 404, body: { kind: "Status", apiVersion: "v1", status: "Failure", reason: "NotFound", message: `${kind} "${name}" not found`, details: { name, kind }, code: 404 } };
}

function list(kind: string, items: unknown[]): Answer {
  return { status: 200, body: { apiVersion: "v1", kind: `${kind}List`, metadata: { resourceVersion: "1" }, items } };
}

class FakeApiServer {
  readonly requests: string[] = [];
  route: Route = () => undefined;
  private server: http.Server | undefined;
  port = 0;

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://fake");
      this.requests.push(`${req.method} ${url.pathname}`);
      req.resume();
      const answer = this.route(req.method ?? "GET", url.pathname, url.searchParams) ?? NOT_FOUND_PAGE;
      const text = typeof answer.body === "string" ? answer.body : JSON.stringify(answer.body);
      res.writeHead(answer.status, { "content-type": typeof answer.body === "string" ? "text/plain" : "application/json" });
      res.end(text);
    });
    await new Promise<void>((resolve) => this.server?.listen(0, "127.0.0.1", resolve));
    this.port = (this.server?.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }

  /** A kubeconfig with two contexts on this server: `west-ctx` (namespace west, current) and `plain` (no namespace). */
  async kubeconfig(): Promise<string> {
    const file = path.join(root, `kubeconfig-${this.port}`);
    const cluster = { server: `http://127.0.0.1:${this.port}`, "insecure-skip-tls-verify": true };
    await fs.writeFile(
      file,
      YAML.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [{ name: "fake", cluster }],
        users: [{ name: "u", user: { token: "t" } }],
        contexts: [
          { name: "west-ctx", context: { cluster: "fake", user: "u", namespace: "west" } },
          { name: "plain", context: { cluster: "fake", user: "u" } },
        ],
        "current-context": "west-ctx",
      }),
    );
    return file;
  }
}

/** A cluster with namespaces but none of the Skupper CRDs. */
const withoutCrds: Route = (method, pathname) => {
  const namespace = /^\/api\/v1\/namespaces\/([^/]+)$/.exec(pathname);
  if (method === "GET" && namespace) return { status: 200, body: { apiVersion: "v1", kind: "Namespace", metadata: { name: namespace[1] } } };
  return undefined;
};

const server = new FakeApiServer();
let kubeconfig = "";

before(async () => {
  await server.start();
  kubeconfig = await server.kubeconfig();
});
after(() => server.stop());

function kube(args: string[], env: Record<string, string> = {}) {
  return skupper(args, { home: root, env: { KUBECONFIG: kubeconfig, ...env }, timeoutMs: 60_000 });
}

describe("the CLI on Kubernetes, against a fake API server", () => {
  test("without the Skupper CRDs every command says to install Skupper, with exit code 2 (a validation failure, as in the original)", async () => {
    server.route = withoutCrds;
    for (const args of [["site", "create", "west", "--wait", "none"], ["site", "status"], ["listener", "create", "web", "8080"], ["token", "issue", path.join(root, "t.yaml")], ["get", "sites"]]) {
      const result = await kube(["--platform", "kubernetes", ...args]);
      assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
      assert.equal(result.stderr, `Error: The Skupper custom resources are not installed in this cluster. ${INSTALL}.\n`, args.join(" "));
    }
    const viaEnv = await kube(["connector", "status"], { SKUPPER_PLATFORM: "kubernetes" });
    assert.equal(viaEnv.code, 2);
    assert.match(viaEnv.stderr, /custom resources are not installed/, "SKUPPER_PLATFORM=kubernetes chooses the platform too");
  });

  test("the namespace is -n, else the kubeconfig context's, else default; --context chooses the context", async () => {
    server.route = withoutCrds;
    const asked = async (args: string[]): Promise<string[]> => {
      server.requests.length = 0;
      await kube(["--platform", "kubernetes", ...args, "site", "status"]);
      return server.requests.filter((r) => r.includes("/sites"));
    };
    assert.deepEqual(await asked([]), ["GET /apis/skupper.io/v2alpha1/namespaces/west/sites"]);
    assert.deepEqual(await asked(["-n", "east"]), ["GET /apis/skupper.io/v2alpha1/namespaces/east/sites"]);
    assert.deepEqual(await asked(["--context", "plain"]), ["GET /apis/skupper.io/v2alpha1/namespaces/default/sites"]);
    assert.deepEqual(await asked(["--kubeconfig", kubeconfig, "-c", "plain", "-n", "south"]), ["GET /apis/skupper.io/v2alpha1/namespaces/south/sites"]);
  });

  test("a missing namespace is named, with the command that creates it", async () => {
    server.route = (method, pathname) => (pathname === "/api/v1/namespaces/nowhere" ? notFound("namespaces", "nowhere") : withoutCrds(method, pathname, new URLSearchParams()));
    const result = await kube(["--platform", "kubernetes", "-n", "nowhere", "site", "create", "west", "--wait", "none"]);
    assert.equal(result.code, 2, "not found: a validation failure");
    assert.equal(result.stderr, 'Error: Namespace "nowhere" does not exist in this cluster; create it with "kubectl create namespace nowhere"\n');
  });

  test("an unknown --context or an unreadable --kubeconfig is invalid input (exit code 2)", async () => {
    const context = await kube(["--platform", "kubernetes", "--context", "nope", "site", "status"]);
    assert.equal(context.code, 2);
    assert.match(context.stderr, /^Error: The kubeconfig has no context "nope" \(it has: west-ctx, plain\)\n$/);
    const file = await kube(["--platform", "kubernetes", "--kubeconfig", path.join(root, "missing"), "site", "status"]);
    assert.equal(file.code, 2);
    assert.match(file.stderr, /Cannot read the kubeconfig ".*missing"/);
  });

  test("without any kubeconfig the CLI says so instead of trying localhost:8080", async () => {
    const none = await skupper(["--platform", "kubernetes", "site", "status"], { home: root, env: { KUBECONFIG: "", HOME: root, KUBERNETES_SERVICE_HOST: "" } });
    assert.equal(none.code, 2);
    assert.equal(none.stderr, "Error: No Kubernetes cluster is configured: there is no ~/.kube/config and KUBECONFIG is not set. Set KUBECONFIG or pass --kubeconfig\n");
    const missing = path.join(root, "gone");
    const named = await skupper(["--platform", "kubernetes", "site", "status"], { home: root, env: { KUBECONFIG: missing, HOME: root } });
    assert.equal(named.code, 2);
    assert.match(named.stderr, /KUBECONFIG names no file that exists \(".*gone"\)/);
  });

  test("on the linux platform --context and --kubeconfig are ignored with a warning; an unknown platform is invalid input", async () => {
    const linux = await kube(["--context", "x", "--kubeconfig", "y", "site", "status"]);
    assert.equal(linux.code, 0, linux.stderr);
    assert.equal(linux.stderr, "Warning: --context flag is not supported on this platform\nWarning: --kubeconfig flag is not supported on this platform\n");
    const unknown = await kube(["--platform", "windows", "site", "status"]);
    assert.equal(unknown.code, 2, "an unknown platform is invalid input");
    assert.match(unknown.stderr, /platform "windows" not supported/);
  });

  test("system start, stop and reload refuse on Kubernetes, saying that the controller runs the site", async () => {
    server.route = withoutCrds;
    for (const verb of ["start", "stop", "reload"]) {
      const result = await kube(["--platform", "kubernetes", "system", verb]);
      assert.equal(result.code, 1, verb);
      assert.match(result.stderr, new RegExp(`^Error: "system ${verb}" is not available on the kubernetes platform: there the Skupper controller runs the site`));
      assert.match(result.stderr, /"skupper --platform kubernetes site delete" stops it/, "hints repeat --platform when it was a flag");
    }
  });
});

describe("CliResourceStore", () => {
  test("a 404 for the type (no CRD) becomes the install message; a 404 for an object means it is missing", async () => {
    const config = kubernetesConfig({ kubeconfig });
    const store = new CliResourceStore(config, { namespace: "west" });
    const missingType = store.translate(new ApiException(404, "Not Found", "404 page not found", {}), "list", "Site", undefined);
    assert.ok(missingType instanceof SkupperError);
    assert.equal(missingType.code, "ERR_CRDS_MISSING");
    assert.equal(missingType.message, `The Skupper custom resources are not installed in this cluster. ${INSTALL}.`);
    const missingObject = store.translate(new ApiException(404, "Not Found", notFound("sites.skupper.io", "west").body, {}), "get", "Site", "west");
    assert.equal(typeof missingObject, "symbol");
  });
});

// ---- pods ----

function pod(name: string, status: V1Pod["status"], created = "2026-01-01T00:00:00Z"): V1Pod {
  return { apiVersion: "v1", kind: "Pod", metadata: { name, creationTimestamp: new Date(created) }, status } as V1Pod;
}

const READY: V1Pod["status"] = { phase: "Running", conditions: [{ type: "Ready", status: "True" }] };
const NEVER_PULL: V1Pod["status"] = {
  phase: "Pending",
  containerStatuses: [{ name: "router", image: "x", imageID: "", ready: false, restartCount: 0, state: { waiting: { reason: "ErrImageNeverPull", message: 'Container image "x" is not present with pull policy of Never' } } }],
};

describe("podState", () => {
  test("a pod is ready when running with the Ready condition; otherwise its reason is the one kubectl shows", () => {
    assert.deepEqual(podState(pod("a", READY)), { name: "a", ready: true, reason: "Running", created: Date.parse("2026-01-01T00:00:00Z") });
    assert.equal(podState(pod("b", NEVER_PULL)).reason, "ErrImageNeverPull");
    assert.match(podState(pod("b", NEVER_PULL)).message ?? "", /pull policy of Never/);
    const crashing = { phase: "Running", containerStatuses: [{ name: "r", image: "x", imageID: "", ready: false, restartCount: 3, state: { waiting: { reason: "CrashLoopBackOff" } } }] };
    assert.equal(podState(pod("c", crashing)).reason, "CrashLoopBackOff");
    assert.equal(podState(pod("d", { phase: "Running", conditions: [{ type: "Ready", status: "False" }] })).reason, "Running, not ready");
    assert.equal(podState(pod("e", { phase: "Pending", conditions: [{ type: "PodScheduled", status: "False", reason: "Unschedulable", message: "0/1 nodes" }] })).reason, "Unschedulable");
    const terminating = pod("f", READY);
    terminating.metadata = { ...terminating.metadata, deletionTimestamp: new Date() };
    assert.deepEqual([podState(terminating).ready, podState(terminating).reason], [false, "Terminating"]);
  });
});

// ---- the runner, against the fake server ----

const SITE = { apiVersion: API_VERSION, kind: "Site", metadata: { name: "west", namespace: "west", resourceVersion: "1", generation: 1 }, spec: {} };

interface ClusterScene {
  sites?: unknown[];
  routerDeployment?: boolean;
  pods?: V1Pod[];
  /** The answer to a GET of the controller's Deployment. */
  controller?: Answer;
}

function scene(s: ClusterScene): Route {
  return (method, pathname) => {
    if (method !== "GET") return undefined;
    if (pathname === "/apis/skupper.io/v2alpha1/namespaces/west/sites") return { status: 200, body: { apiVersion: API_VERSION, kind: "SiteList", metadata: { resourceVersion: "1" }, items: s.sites ?? [SITE] } };
    if (pathname === "/api/v1/namespaces/west/pods") return list("Pod", s.pods ?? []);
    if (pathname === "/apis/apps/v1/namespaces/west/deployments/skupper-router") {
      return s.routerDeployment ? { status: 200, body: { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "skupper-router" }, spec: { selector: {}, template: {} } } } : notFound("deployments", "skupper-router");
    }
    if (pathname === "/apis/apps/v1/namespaces/skupper/deployments/skupper-controller") return s.controller ?? notFound("deployments", "skupper-controller");
    return undefined;
  };
}

function runner(progress: string[] = [], timeoutMs = 1200): KubernetesSiteRunner {
  const config = kubernetesConfig({ kubeconfig });
  return new KubernetesSiteRunner(new SiteWorkloads(config, "west"), new CliResourceStore(config, { namespace: "west" }), {
    contextName: "west-ctx",
    timeoutMs,
    pollMs: 20,
    progressEveryMs: 300,
    progress: (line) => progress.push(line),
  });
}

describe("KubernetesSiteRunner", () => {
  test("status is the ready pod of the site; start waits for it and started nothing", async () => {
    server.route = scene({ routerDeployment: true, pods: [pod("skupper-router-old", NEVER_PULL, "2026-01-01T00:00:00Z"), pod("skupper-router-new", READY, "2026-01-01T00:01:00Z")] });
    assert.deepEqual(await runner().status(), { running: true, id: "skupper-router-new" });
    assert.deepEqual(await runner().start(), { id: "skupper-router-new", started: false });
    server.route = scene({ routerDeployment: true, pods: [] });
    assert.deepEqual(await runner().status(), { running: false });
  });

  test("start shows why the pod is not ready as soon as that is a problem, and fails with it and where to look", async () => {
    server.route = scene({ routerDeployment: true, pods: [pod("skupper-router-1", NEVER_PULL)] });
    const progress: string[] = [];
    const started = Date.now();
    await assert.rejects(runner(progress).start(), (err: SkupperError) => {
      assert.equal(err.code, "ERR_SITE_START");
      assert.match(err.message, /^The site pod of namespace "west" is not ready after 1 s \(ErrImageNeverPull: Container image "x" is not present with pull policy of Never\)\./);
      assert.match(err.message, /"kubectl -n west logs deployment\/skupper-router"/);
      return true;
    });
    assert.ok(Date.now() - started < 5000, "the wait is bounded by the timeout");
    assert.match(progress[0] ?? "", /^Waiting for the site pod in namespace "west" \(ErrImageNeverPull: /, "shown at once, not after the first period");
    assert.ok(progress.length <= 1 + Math.ceil((Date.now() - started) / 300), `then one line per period: ${progress.length}`);
  });

  test("without a Deployment for the site, the error says whether the controller is missing, stopped or unknown", async () => {
    const cases: Array<[Answer, RegExp]> = [
      [notFound("deployments", "skupper-controller"), /the Skupper controller is not installed in this cluster \(there is no Deployment "skupper-controller" in namespace "skupper"\)\. Install it with "kubectl apply -f deploy\/kubernetes\/skupper\.yaml"/],
      [{ status: 200, body: { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "skupper-controller" }, spec: { replicas: 1, selector: {}, template: {} }, status: {} } }, /the Skupper controller is not running \(Deployment "skupper-controller" in namespace "skupper" has 0 of 1 pods ready\)/],
      [{ status: 403, body: { kind: "Status", reason: "Forbidden", message: "forbidden", code: 403 } }, /the Skupper controller seems not to be installed or not running\. Check with "kubectl -n skupper get deployment skupper-controller"; install it with "kubectl apply -f deploy\/kubernetes\/skupper\.yaml"/],
    ];
    for (const [controller, message] of cases) {
      server.route = scene({ controller });
      const progress: string[] = [];
      await assert.rejects(runner(progress, 700).start(), (err: SkupperError) => {
        assert.match(err.message, message);
        return true;
      });
      assert.match(progress[0] ?? "", /^Waiting for the site pod in namespace "west" \(no Deployment "skupper-router" yet\)…$/);
    }
  });

  test("without a Site there is nothing to start; with one there is nothing to stop", async () => {
    server.route = scene({ sites: [] });
    await assert.rejects(runner().start(), { code: "ERR_NO_SITE", message: /Namespace "west" has no site to run\. Create one with "skupper -n west site create <name>"/ });
    server.route = scene({});
    await assert.rejects(runner().stop(), { code: "ERR_SITE_MANAGED", message: /the site pod runs as long as its Site exists: delete Site "west"/ });
    server.route = scene({ sites: [], pods: [] });
    assert.deepEqual(await runner().stop(), {});
  });

  test("describe names the namespace, the context and the log command", () => {
    assert.deepEqual(runner().describe(), { location: "namespace west (context west-ctx)", log: "kubectl -n west logs deployment/skupper-router" });
  });
});

// ---- requests, on in-memory stores ----

class FakePod implements SitePod {
  running = true;
  restarts = 0;
  async status() {
    return this.running ? { running: true, id: "skupper-router-1" } : { running: false };
  }
  async restart() {
    this.restarts++;
  }
  notRunning() {
    return new SkupperError("ERR_SITE_NOT_RUNNING", "no pod");
  }
}

function view(site: string, hosts: string[] = ["10.0.0.7"]): NetworkStatus {
  return {
    schema: NETWORK_STATUS_SCHEMA,
    siteId: "site-id-1",
    siteName: site,
    namespace: "west",
    version: "test",
    linkAccess: { hosts, linkPort: 46871, grantServerPort: 46872, linkServer: "OK", grantServer: "OK" },
    inputProblems: [],
  };
}

async function requestsScene(options: { linkAccess?: string; ready?: boolean; published?: NetworkStatus | undefined; settings?: Record<string, string>; credential?: string } = {}) {
  const resources = new MemoryResourceStore("west");
  const credentials = new MemoryCredentialStore();
  const pod = new FakePod();
  const site: Site = { apiVersion: API_VERSION, kind: "Site", metadata: { name: "west" }, spec: { linkAccess: options.linkAccess ?? "default", ...(options.settings ? { settings: options.settings } : {}) } };
  const created = await resources.create(site);
  if (options.ready !== false) await resources.updateStatus("Site", "west", { status: "Ready", message: "OK", observedGeneration: created.metadata.generation ?? 1 });
  const siteCa = await createCA("west site CA");
  await credentials.save(SITE_CA, siteCa);
  const published = "published" in options ? options.published : view("west");
  const requests = new KubernetesSiteRequests({ namespace: "west", resources, credentials, networkStatus: async () => published, observerCredential: async () => options.credential, pod });
  return { resources, credentials, pod, requests, siteCa };
}

describe("KubernetesSiteRequests", () => {
  test("generateLink issues a client certificate from the site CA for the advertised host and link port", async () => {
    const { requests, siteCa } = await requestsScene();
    const { link, secret } = await requests.generateLink({ cost: 3 });
    assert.equal(link.metadata.name, "link-west");
    assert.deepEqual(link.spec.endpoints, [{ name: "inter-router", host: "10.0.0.7", port: "46871", group: "skupper-router" }]);
    assert.equal(link.spec.cost, 3);
    assert.equal(link.metadata.annotations?.["skupper.io/remote-site-id"], "site-id-1");
    assert.equal(secret.metadata.name, "link-west");
    const data = (key: string) => Buffer.from(secret.data?.[key] ?? "", "base64").toString();
    assert.equal(data("ca.crt"), siteCa.cert);
    assert.ok(isIssuedBy(data("tls.crt"), siteCa.cert), "the client certificate is the site CA's");
    const named = await requests.generateLink({ name: "to-west", host: "west.example.com", tlsCredentials: "west-creds" });
    assert.equal(named.link.spec.endpoints[0]?.host, "west.example.com");
    assert.equal(named.link.spec.tlsCredentials, "west-creds");
    assert.equal(named.secret.metadata.name, "west-creds");
  });

  test("generateLink refuses, as the site would, without a site, link access, a running pod or a ready site", async () => {
    const none = new KubernetesSiteRequests({ namespace: "west", resources: new MemoryResourceStore("west"), credentials: new MemoryCredentialStore(), networkStatus: async () => undefined, observerCredential: async () => undefined, pod: new FakePod() });
    await assert.rejects(none.generateLink({}), { code: "ERR_NO_SITE", message: 'There is no site in namespace "west". Create one with "skupper -n west site create <name>".' });
    await assert.rejects((await requestsScene({ linkAccess: "none" })).requests.generateLink({}), { code: "ERR_LINK_ACCESS", message: /link access is not enabled\. Use "skupper site update --enable-link-access"/ });
    const stopped = await requestsScene();
    stopped.pod.running = false;
    await assert.rejects(stopped.requests.generateLink({}), { code: "ERR_SITE_NOT_RUNNING" });
    const notReady = /^The site "west" has not set up link access yet; check "skupper -n west site status"$/;
    await assert.rejects((await requestsScene({ ready: false })).requests.generateLink({}), { code: "ERR_SITE_NOT_READY", message: notReady });
    await assert.rejects((await requestsScene({ published: undefined })).requests.generateLink({}), { code: "ERR_SITE_NOT_READY", message: notReady });
    await assert.rejects((await requestsScene({ published: view("east") })).requests.generateLink({}), { code: "ERR_SITE_NOT_READY", message: notReady }, "a view of another site");
    const noCa = await requestsScene();
    await noCa.credentials.remove(SITE_CA);
    await assert.rejects(noCa.requests.generateLink({}), { code: "ERR_SITE_NOT_READY" });
    await assert.rejects((await requestsScene({ published: view("west", []) })).requests.generateLink({}), { code: "ERR_SITE_NOT_READY", message: /advertises no host for links yet/ });
  });

  test("observerAccess: off, a bad setting, loopback through port-forward, and elsewhere with the site's credential", async () => {
    assert.equal((await (await requestsScene()).requests.observerAccess()).state, "off");
    const bad = await (await requestsScene({ settings: { "observer-port": "99999" } })).requests.observerAccess();
    assert.equal(bad.state, "error");
    assert.match(bad.message, /between 1 and 65535/);
    const loopback = await (await requestsScene({ settings: { "observer-port": "8640" } })).requests.observerAccess();
    assert.deepEqual(
      { ...loopback },
      { state: "listening", message: "in the site's pod on 127.0.0.1:8640", url: "http://127.0.0.1:8640/", reach: "kubectl -n west port-forward deployment/skupper-router 8640", credentialRequired: false },
    );
    const open = await (await requestsScene({ settings: { "observer-port": "8640", "observer-host": "0.0.0.0" }, credential: "s3cret-credential" })).requests.observerAccess();
    assert.equal(open.credentialRequired, true);
    assert.equal(open.credential, "s3cret-credential");
    const notYet = await (await requestsScene({ settings: { "observer-port": "8640", "observer-host": "0.0.0.0" } })).requests.observerAccess();
    assert.equal(notYet.state, "error");
    assert.match(notYet.message, /has not made the observer credential yet/);
    const stopped = await requestsScene({ settings: { "observer-port": "8640" } });
    stopped.pod.running = false;
    await assert.rejects(stopped.requests.observerAccess(), { code: "ERR_SITE_NOT_RUNNING" });
  });

  test("revokeAccess deletes every grant and the site's CA and server credentials, then restarts the pod", async () => {
    const { requests, resources, credentials, pod } = await requestsScene();
    for (const name of ["g1", "g2"]) await resources.create({ apiVersion: API_VERSION, kind: "AccessGrant", metadata: { name }, spec: {} });
    const kept = await createCA("grant CA");
    await credentials.save("skupper-grant-server-ca", kept);
    for (const name of [SITE_SERVER, GRANT_SERVER]) await credentials.save(name, kept);
    await requests.revokeAccess();
    assert.deepEqual(await resources.list("AccessGrant"), []);
    assert.deepEqual([...credentials.saved.keys()], ["skupper-grant-server-ca"], "the grant server's CA stays: tokens pin it, and they are gone with their grants");
    assert.equal(pod.restarts, 1);
    pod.running = false;
    await assert.rejects(requests.revokeAccess(), { code: "ERR_SITE_NOT_RUNNING" });
  });
});
