/**
 * Sites in pods on a real cluster: the install bundle, seed 001 verbatim with kubectl, seed 000
 * with `skupper --platform kubernetes`, a Kubernetes site and a local site linked both ways,
 * a restarted site pod, and a deleted Site's clean-up. The cluster is the one npm test started
 * (or KUBECONFIG); the image is built once into its dockerd (or SKUPPER_TEST_IMAGE).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promises as fs } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { defaultImage } from "../../src/platform/kubernetes/names.js";
import { eventually, freePort, ok, parseTable, ROOT, skupper } from "../helpers/cli.js";
import { seed001TokenScript } from "../helpers/seeds.js";
import { kubectl, useCluster, type RunResult } from "../helpers/kube-cluster.js";
import { ensureSkupperImage, testDockerHost } from "../helpers/kube-image.js";

const cluster = await useCluster();
const image = "skip" in cluster ? cluster : await ensureSkupperImage({ dockerHost: await testDockerHost() });
const skip = "skip" in cluster ? cluster.skip : "skip" in image ? image.skip : false;
const kubeconfig = "kubeconfig" in cluster ? cluster.kubeconfig : "";
const imageName = "image" in image ? image.image : defaultImage();

const BUNDLE = path.join(ROOT, "deploy", "kubernetes", "skupper.yaml");
/** A pod start on this machine takes a few seconds; an image pull on another cluster longer. */
const POD_TIMEOUT_MS = 120_000;
const LINK_TIMEOUT_MS = 90_000;

let work: string;
const namespaces = new Set<string>();

async function kc(args: string[], input?: string): Promise<string> {
  const result = await kubectl(args, { kubeconfig, ...(input !== undefined ? { input } : {}) });
  if (result.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed (exit ${result.code}): ${result.stderr || result.stdout}`);
  return result.stdout;
}

async function kjson<T>(args: string[]): Promise<T> {
  return JSON.parse(await kc([...args, "-o", "json"])) as T;
}

async function tryJson<T>(args: string[]): Promise<T | undefined> {
  const result = await kubectl([...args, "-o", "json"], { kubeconfig });
  return result.code === 0 ? (JSON.parse(result.stdout) as T) : undefined;
}

async function createNamespace(name: string): Promise<void> {
  await kubectl(["delete", "namespace", name, "--wait=true", "--timeout=60s"], { kubeconfig, timeoutMs: 90_000 });
  await kc(["create", "namespace", name]);
  namespaces.add(name);
}

/** A shell in `dir` whose kubectl acts on `namespace`, as a user switched to that site's context. */
async function siteShell(namespace: string): Promise<(script: string) => Promise<RunResult>> {
  const dir = path.join(work, namespace);
  await fs.mkdir(dir, { recursive: true });
  const config = path.join(dir, "kubeconfig");
  await fs.copyFile(kubeconfig, config);
  await kubectl(["config", "set-context", "--current", `--namespace=${namespace}`], { kubeconfig: config });
  return (script) =>
    new Promise((resolve) => {
      execFile("bash", ["-euo", "pipefail", "-c", script], { cwd: dir, env: { ...process.env, KUBECONFIG: config }, timeout: 120_000 }, (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout: String(stdout), stderr: String(stderr) });
      });
    });
}

interface Condition {
  type: string;
  status: string;
}
interface CustomResource {
  metadata: { name: string; uid: string };
  status?: { status?: string; message?: string; conditions?: Condition[]; redemptions?: number; url?: string };
}

async function waitForStatus(namespace: string, kind: string, name: string, wanted = "Ready", timeoutMs = LINK_TIMEOUT_MS): Promise<CustomResource> {
  let last: CustomResource | undefined;
  try {
    return await eventually(
      `${kind} ${namespace}/${name} to be ${wanted}`,
      async () => {
        last = await tryJson<CustomResource>(["-n", namespace, "get", kind, name]);
        return last?.status?.status === wanted ? last : undefined;
      },
      timeoutMs,
      500,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; last status: ${JSON.stringify(last?.status)}\n${await siteLogs(namespace)}`);
  }
}

async function siteLogs(namespace: string): Promise<string> {
  const result = await kubectl(["-n", namespace, "logs", "deployment/skupper-router", "--tail=40"], { kubeconfig });
  return `site log of ${namespace}:\n${result.stdout}${result.stderr}`;
}

interface Pod {
  metadata: { name: string; deletionTimestamp?: string };
  status?: { phase?: string; conditions?: Condition[] };
}

async function readySitePod(namespace: string, not?: string): Promise<string> {
  return eventually(
    `a ready site pod in ${namespace}${not ? ` other than ${not}` : ""}`,
    async () => {
      const pods = await kjson<{ items: Pod[] }>(["-n", namespace, "get", "pods", "-l", "skupper.io/component=router"]);
      const pod = pods.items.find(
        (p) => p.metadata.name !== not && !p.metadata.deletionTimestamp && p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
      );
      return pod?.metadata.name;
    },
    POD_TIMEOUT_MS,
    500,
  );
}

/** A Deployment of HTTP servers answering "hello from <pod>" on 8080, labelled app=<name>. */
async function deployBackend(namespace: string, name: string): Promise<void> {
  const server = "require('http').createServer((q,s)=>s.end('hello from '+require('os').hostname()+'\\n')).listen(8080)";
  await kc(["-n", namespace, "apply", "-f", "-"], deploymentYaml(name, ["/usr/bin/node", "-e", server]));
  await kc(["-n", namespace, "rollout", "status", `deployment/${name}`, "--timeout=120s"]);
}

function deploymentYaml(name: string, command: string[]): string {
  return JSON.stringify({
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          containers: [{ name, image: imageName, imagePullPolicy: "IfNotPresent", command, readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 } }],
        },
      },
    },
  });
}

/** Runs a pod in `namespace` that GETs `url` until it answers (60 s at most); returns the body. */
async function httpFromPod(namespace: string, url: string): Promise<string> {
  const name = `client-${Math.random().toString(36).slice(2, 8)}`;
  const script = `const u=${JSON.stringify(url)};const end=Date.now()+60000;
const go=()=>require('http').get(u,(r)=>{let b='';r.on('data',(d)=>b+=d);r.on('end',()=>{console.log(b.trim());process.exit(0)})}).on('error',(e)=>{if(Date.now()>end){console.error(e.message);process.exit(1)}setTimeout(go,500)});go();`;
  await kc(["-n", namespace, "run", name, `--image=${imageName}`, "--image-pull-policy=IfNotPresent", "--restart=Never", "--command", "--", "/usr/bin/node", "-e", script]);
  const phase = await eventually(
    `pod ${namespace}/${name} to finish`,
    async () => {
      const pod = await tryJson<Pod>(["-n", namespace, "get", "pod", name]);
      return pod?.status?.phase === "Succeeded" || pod?.status?.phase === "Failed" ? pod.status.phase : undefined;
    },
    POD_TIMEOUT_MS,
    500,
  );
  const logs = await kc(["-n", namespace, "logs", name]);
  await kubectl(["-n", namespace, "delete", "pod", name, "--wait=false"], { kubeconfig });
  assert.equal(phase, "Succeeded", `the client pod in ${namespace} could not GET ${url}: ${logs}`);
  return logs.trim();
}

function httpGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let body = "";
        res.on("data", (d: Buffer) => (body += d.toString()));
        res.on("end", () => resolve(body.trim()));
      })
      .on("error", reject);
  });
}

describe("sites on Kubernetes", { skip }, () => {
  before(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), "kube-sites-"));
    let bundle = await fs.readFile(BUNDLE, "utf8");
    if (imageName !== defaultImage()) bundle = bundle.split(defaultImage()).join(imageName);
    await kc(["apply", "-f", "-"], bundle);
    await kc(["-n", "skupper", "rollout", "status", "deployment/skupper-controller", "--timeout=180s"]);
  });

  after(async () => {
    // The controller goes too: it would run the sites of later test files, which run their own.
    await kubectl(["delete", "namespace", "skupper", "--wait=true", "--timeout=60s"], { kubeconfig, timeoutMs: 90_000 });
    for (const namespace of namespaces) await kubectl(["delete", "namespace", namespace, "--wait=false"], { kubeconfig });
    if (work) await fs.rm(work, { recursive: true, force: true });
  });

  test("seed 001 with kubectl: grant in west, token applied in east, the link Ready, a service in west reached from a pod in east", async (t) => {
    await createNamespace("west");
    await createNamespace("east");
    const west = await siteShell("west");
    const east = await siteShell("east");

    // Prerequisites: two sites, the listening one with link access.
    const createdAt = Date.now();
    await kc(["apply", "-f", "-"], "apiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata:\n  name: west\n  namespace: west\nspec:\n  linkAccess: default\n");
    await kc(["apply", "-f", "-"], "apiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata:\n  name: east\n  namespace: east\n");
    await waitForStatus("west", "site", "west", "Ready", POD_TIMEOUT_MS);
    t.diagnostic(`site create to Ready (west, link access on): ${((Date.now() - createdAt) / 1000).toFixed(1)} s`);
    await waitForStatus("east", "site", "east", "Ready", POD_TIMEOUT_MS);

    // 1. The AccessGrant, applied and listed with the original's columns.
    await fs.writeFile(path.join(work, "west", "accessgrant.yaml"), "apiVersion: skupper.io/v2alpha1\nkind: AccessGrant\nmetadata:\n  name: grant-west\nspec:\n  redemptionsAllowed: 2 # default 1\n  expirationWindow: 25m # default 15m\n");
    assert.equal((await west("kubectl apply -f accessgrant.yaml")).code, 0);
    await waitForStatus("west", "accessgrant", "grant-west");
    const grants = await west("kubectl get accessgrants");
    assert.match(grants.stdout.split("\n")[0] ?? "", /^NAME\s+REDEMPTIONS ALLOWED\s+REDEMPTIONS MADE\s+EXPIRATION\s+STATUS\s+MESSAGE$/);
    const grantRow = parseTable(grants.stdout)[0];
    assert.equal(grantRow?.NAME, "grant-west");
    assert.equal(grantRow?.["REDEMPTIONS ALLOWED"], "2");
    assert.equal(grantRow?.["REDEMPTIONS MADE"], "0");
    assert.equal(grantRow?.STATUS, "Ready");

    // 2–3. The token built from the grant's status, exactly as the seed writes it.
    const made = await west(seed001TokenScript("kubectl"));
    assert.equal(made.code, 0, made.stderr);
    await fs.copyFile(path.join(work, "west", "token.yaml"), path.join(work, "east", "token.yaml"));

    // 4. Applied on the connecting site: redeemed, and the link it made comes up.
    const redeemedAt = Date.now();
    assert.equal((await east("kubectl apply -f token.yaml")).code, 0);
    await waitForStatus("east", "accesstoken", "token-to-west");
    const tokens = parseTable((await east("kubectl get accesstokens")).stdout)[0];
    assert.equal(tokens?.REDEEMED, "true");
    assert.equal(tokens?.STATUS, "Ready");
    assert.match(tokens?.URL ?? "", /^https:\/\/[\d.]+:9090\/[0-9a-f-]+$/);
    await waitForStatus("east", "link", "token-to-west");
    t.diagnostic(`token applied to link Ready: ${((Date.now() - redeemedAt) / 1000).toFixed(1)} s`);
    const links = parseTable((await east("kubectl get link")).stdout)[0];
    assert.deepEqual([links?.NAME, links?.STATUS, links?.["REMOTE SITE"], links?.MESSAGE], ["token-to-west", "Ready", "west", "OK"]);
    assert.equal(parseTable((await west("kubectl get accessgrants")).stdout)[0]?.["REDEMPTIONS MADE"], "1");

    // A service in west, offered by pods a selector chooses, reached from a pod in east.
    await deployBackend("west", "backend");
    await kc(["-n", "west", "apply", "-f", "-"], "apiVersion: skupper.io/v2alpha1\nkind: Connector\nmetadata:\n  name: backend\nspec:\n  routingKey: backend\n  selector: app=backend\n  port: 8080\n");
    await kc(["-n", "east", "apply", "-f", "-"], "apiVersion: skupper.io/v2alpha1\nkind: Listener\nmetadata:\n  name: backend\nspec:\n  routingKey: backend\n  host: backend\n  port: 8080\n");
    await waitForStatus("east", "listener", "backend");
    await waitForStatus("west", "connector", "backend");
    assert.match(await httpFromPod("east", "http://backend:8080/"), /^hello from backend-/);
  });

  test("a restarted site pod keeps the site's identity, keys, grant counts and links (its state is in the API server)", async () => {
    const siteId = async (ns: string) => (await kc(["-n", ns, "get", "configmap", "skupper-site-state", "-o", "jsonpath={.data.site-id}"])).trim();
    const caOf = async (ns: string) => (await kc(["-n", ns, "get", "secret", "skupper-site-ca", "-o", "jsonpath={.data.tls\\.crt}"])).trim();
    const before = { west: await siteId("west"), east: await siteId("east"), ca: await caOf("west") };
    assert.ok(before.west && before.east && before.ca);

    for (const namespace of ["west", "east"]) {
      const old = await readySitePod(namespace);
      await kc(["-n", namespace, "delete", "pod", old, "--wait=false"]);
      await readySitePod(namespace, old);
    }
    assert.equal(await siteId("west"), before.west);
    assert.equal(await siteId("east"), before.east);
    assert.equal(await caOf("west"), before.ca);
    const grant = await kjson<CustomResource>(["-n", "west", "get", "accessgrant", "grant-west"]);
    assert.equal(grant.status?.redemptions, 1);
    await waitForStatus("east", "link", "token-to-west");
    assert.match(await httpFromPod("east", "http://backend:8080/"), /^hello from backend-/);
  });

  test("seed 000 with skupper --platform kubernetes: token issued in one namespace, redeemed in another, link status Ready", async (t) => {
    await createNamespace("s0-west");
    await createNamespace("s0-east");
    const home = path.join(work, "s0-home");
    const run = { home, env: { KUBECONFIG: kubeconfig, SKUPPER_PLATFORM: "kubernetes" }, timeoutMs: 180_000 };
    const createdAt = Date.now();
    await ok(["-n", "s0-west", "site", "create", "west", "--wait", "ready", "--timeout", "120s"], run);
    t.diagnostic(`skupper site create --wait ready: ${((Date.now() - createdAt) / 1000).toFixed(1)} s`);
    await ok(["-n", "s0-east", "site", "create", "east", "--wait", "ready", "--timeout", "120s"], run);
    // 1. Link access on the issuing site.
    await ok(["-n", "s0-west", "site", "update", "--enable-link-access", "--wait", "ready", "--timeout", "120s"], run);
    // 2. The token, 3. redeemed on the other site.
    const token = path.join(work, "s0-west.yaml");
    await ok(["-n", "s0-west", "token", "issue", token], run);
    const redeemedAt = Date.now();
    await ok(["-n", "s0-east", "token", "redeem", token], run);
    // 4. link status, until Ready.
    const row = await eventually(
      "skupper link status to show the link Ready",
      async () => {
        const rows = parseTable(await ok(["-n", "s0-east", "link", "status"], run));
        return rows.find((r) => r.STATUS === "Ready");
      },
      LINK_TIMEOUT_MS,
      1000,
    );
    t.diagnostic(`skupper token redeem to link Ready: ${((Date.now() - redeemedAt) / 1000).toFixed(1)} s`);
    assert.equal(row.COST, "1");
    assert.equal(row.MESSAGE, "OK");
  });

  test("debug dump of a site in a pod: resources, network status and the pod's log, with no Secret value, key or code of the namespace in it", async () => {
    const home = path.join(work, "s0-home");
    const into = path.join(work, "dump");
    await fs.mkdir(into, { recursive: true });
    const run = { home, env: { KUBECONFIG: kubeconfig, SKUPPER_PLATFORM: "kubernetes" }, timeoutMs: 120_000, cwd: into };
    const printed = await ok(["-n", "s0-west", "debug", "dump", "west-dump"], run);
    const file = /^Skupper dump details written to compressed archive: (.+)$/m.exec(printed)?.[1];
    assert.ok(file, printed);
    const archive = path.resolve(into, file);
    assert.equal((await fs.stat(archive)).mode & 0o777, 0o600);
    await new Promise<void>((resolve, reject) => execFile("tar", ["-xzf", archive, "-C", into], (err) => (err ? reject(err) : resolve())));
    const top = path.join(into, path.basename(archive).replace(/\.tar\.gz$/, ""));
    const files: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) await walk(full);
        else files.push(path.relative(top, full));
      }
    };
    await walk(top);
    for (const expected of ["versions.yaml", "network-status.json", "system-status.txt", "resources/Site-west.yaml"]) assert.ok(files.includes(expected), `${expected} in ${files.join(", ")}`);
    const logs = files.filter((f) => f.startsWith("logs/") && f.endsWith(".log"));
    assert.ok(logs.length >= 1, `the site pod's log: ${files.join(", ")}`);
    assert.match(await fs.readFile(path.join(top, logs[0] as string), "utf8"), /\S/, "the log is not empty");
    assert.match(await fs.readFile(path.join(top, "versions.yaml"), "utf8"), /kubernetes/i);

    // Every secret of the namespace, as the API server holds it: Secret data (decoded and as
    // stored) and the grants' codes.
    const needles = new Set<string>();
    const secrets = await kjson<{ items: Array<{ data?: Record<string, string> }> }>(["-n", "s0-west", "get", "secrets"]);
    for (const secret of secrets.items) {
      for (const value of Object.values(secret.data ?? {})) {
        const decoded = Buffer.from(value, "base64").toString("utf8");
        if (decoded.length >= 16 && !decoded.includes("BEGIN CERTIFICATE")) needles.add(decoded.trim());
        for (const line of decoded.split("\n")) if (line.length >= 40 && !decoded.includes("BEGIN CERTIFICATE")) needles.add(line);
        if (value.length >= 16 && !decoded.includes("BEGIN CERTIFICATE")) needles.add(value);
      }
    }
    const grants = await kjson<{ items: Array<{ status?: { code?: string } }> }>(["-n", "s0-west", "get", "accessgrants"]);
    for (const grant of grants.items) if (grant.status?.code) needles.add(grant.status.code);
    assert.ok(needles.size >= 3, "the namespace holds keys and a grant code to look for");
    for (const name of files) {
      const text = await fs.readFile(path.join(top, name), "utf8");
      assert.doesNotMatch(text, /-----BEGIN [A-Z ]*PRIVATE KEY-----/, `${name} holds no private key`);
      for (const needle of needles) assert.ok(!text.includes(needle), `${name} holds a secret of the namespace (${needle.slice(0, 12)}…)`);
    }
  });

  test("the observer port of a site in a pod: network console says how to reach it, and metrics answer through kubectl port-forward with the site's credential", async () => {
    const home = path.join(work, "s0-home");
    const run = { home, env: { KUBECONFIG: kubeconfig, SKUPPER_PLATFORM: "kubernetes" }, timeoutMs: 180_000 };
    await ok(["-n", "s0-west", "site", "update", "--observer-port", "8640", "--observer-host", "0.0.0.0", "--wait", "ready", "--timeout", "120s"], run);
    const printed = await eventually(
      "network console to print the site's credential",
      async () => {
        const result = await skupper(["-n", "s0-west", "network", "console"], run);
        return result.code === 0 && /^Credential: \S+$/m.test(result.stdout) ? result.stdout : undefined;
      },
      60_000,
      1000,
    );
    assert.match(printed, /^First run: kubectl -n s0-west port-forward deployment\/skupper-router 8640$/m);
    const credential = /^Credential: (\S+)$/m.exec(printed)?.[1] as string;
    const secret = await kc(["-n", "s0-west", "get", "secret", "skupper-observer-credential", "-o", "jsonpath={.data.credential}"]);
    assert.equal(Buffer.from(secret, "base64").toString("utf8").trim(), credential, "the credential is the Secret the site made");

    const local = await freePort();
    const forward = execFile("kubectl", ["--kubeconfig", kubeconfig, "-n", "s0-west", "port-forward", "deployment/skupper-router", `${local}:8640`]);
    try {
      const get = async (headers: Record<string, string>): Promise<number> => {
        try {
          const res = await fetch(`http://127.0.0.1:${local}/metrics`, { headers });
          await res.text();
          return res.status;
        } catch {
          return 0;
        }
      };
      await eventually("the port-forward to reach the observer port", async () => (await get({})) === 401, 30_000, 250);
      const res = await fetch(`http://127.0.0.1:${local}/metrics`, { headers: { authorization: `Bearer ${credential}` } });
      assert.equal(res.status, 200);
      assert.match(await res.text(), /^skupper_link_up\{/m, "the site's link is measured");
    } finally {
      forward.kill();
    }
  });

  test("deleting a Site removes everything it made in its namespace", async () => {
    const namespace = "s0-west";
    const home = path.join(work, "s0-home");
    const run = { home, env: { KUBECONFIG: kubeconfig, SKUPPER_PLATFORM: "kubernetes" }, timeoutMs: 180_000 };
    await ok(["-n", namespace, "listener", "create", "web", "8080"], run);
    await eventually("the listener's Service", () => tryJson(["-n", namespace, "get", "service", "web"]), 60_000, 500);
    const made = async () => {
      const out = await kc(["-n", namespace, "get", "deployments,services,serviceaccounts,rolebindings,secrets,configmaps", "-l", "app.kubernetes.io/managed-by=skupper", "-o", "name"]);
      return out.split("\n").filter(Boolean).sort();
    };
    const before = await made();
    for (const expected of ["deployment.apps/skupper-router", "service/skupper-router", "service/web", "serviceaccount/skupper-router", "rolebinding.rbac.authorization.k8s.io/skupper-router", "secret/skupper-site-ca", "configmap/skupper-site-state"]) {
      assert.ok(before.includes(expected), `${expected} exists before the delete (have: ${before.join(", ")})`);
    }
    await ok(["-n", namespace, "site", "delete", "west", "--wait"], run);
    const left = await eventually(
      "everything the site made to be gone",
      async () => {
        const now = await made();
        return now.length === 0 ? now : undefined;
      },
      LINK_TIMEOUT_MS,
      1000,
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}; left: ${(await made()).join(", ")}`);
    });
    assert.deepEqual(left, []);
  });

  test("a site on Kubernetes and a local site link in both directions; HTTP flows both ways", async (t) => {
    interface Node {
      status: { addresses: Array<{ type: string; address: string }> };
    }
    const nodes = await kjson<{ items: Node[] }>(["get", "nodes"]);
    const nodeAddress = nodes.items[0]?.status.addresses.find((a) => a.type === "InternalIP")?.address;
    const local = Object.values(os.networkInterfaces()).flat().some((a) => a?.address === nodeAddress);
    if (!nodeAddress || !local) {
      t.skip(`the node's address (${nodeAddress ?? "none"}) is not an address of this host, so pods cannot reach a local site here`);
      return;
    }
    const namespace = "mixed";
    await createNamespace(namespace);
    const kubeRun = { home: path.join(work, "mixed-home"), env: { KUBECONFIG: kubeconfig, SKUPPER_PLATFORM: "kubernetes" }, timeoutMs: 180_000 };
    const localRun = { home: path.join(work, "local-home"), timeoutMs: 120_000 };
    try {
      // The Kubernetes site, reachable from this host through a NodePort.
      await ok(["-n", namespace, "site", "create", "kube", "--enable-link-access", "--link-access-type", "nodeport", "--wait", "ready", "--timeout", "120s"], kubeRun);
      // The local site, reachable from the pods on the node's address (this host).
      const [linkPort, grantPort, listenerPort] = [await freePort(), await freePort(), await freePort()];
      await ok(["site", "create", "local", "--enable-link-access", "--host", nodeAddress, "--link-port", String(linkPort), "--grant-server-port", String(grantPort)], localRun);

      const readyLinks = async (args: string[], options: typeof kubeRun | typeof localRun) => parseTable(await ok([...args, "link", "status", "-o", "wide"], options)).filter((r) => r.STATUS === "Ready");
      const linked = async () => {
        await eventually("the Kubernetes site's side of the link Ready", async () => (await readyLinks(["-n", namespace], kubeRun)).length === 1, LINK_TIMEOUT_MS, 1000);
        await eventually("the local site's side of the link Ready", async () => (await readyLinks([], localRun)).length === 1, LINK_TIMEOUT_MS, 1000);
      };

      // A local HTTP service reached from a pod, and a service in the cluster reached from this host.
      const server = http.createServer((_req, res) => res.end("hello from the host\n"));
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      const port = (server.address() as { port: number }).port;
      const bothWays = async () => {
        assert.equal(await httpFromPod(namespace, "http://host-web:8080/"), "hello from the host");
        const body = await eventually("HTTP from this host to the pod", () => httpGet(`http://127.0.0.1:${listenerPort}/`).catch(() => undefined), LINK_TIMEOUT_MS, 500);
        assert.match(body, /^hello from pod-web-/);
      };
      try {
        await ok(["connector", "create", "host-web", String(port), "--host", "127.0.0.1"], localRun);
        await ok(["-n", namespace, "listener", "create", "host-web", "8080"], kubeRun);
        await deployBackend(namespace, "pod-web");
        await ok(["-n", namespace, "connector", "create", "pod-web", "8080", "--selector", "app=pod-web"], kubeRun);
        await ok(["listener", "create", "pod-web", String(listenerPort), "--host", "127.0.0.1"], localRun);

        // The Kubernetes site dials the local one.
        const toLocal = path.join(work, "to-local.yaml");
        await ok(["token", "issue", toLocal], localRun);
        await ok(["-n", namespace, "token", "redeem", toLocal], kubeRun);
        await linked();
        await bothWays();

        // The other way round: the local site dials the Kubernetes one.
        const outgoing = (await readyLinks(["-n", namespace], kubeRun))[0]?.NAME ?? "";
        await ok(["-n", namespace, "link", "delete", outgoing], kubeRun);
        await eventually("no link left on the local site", async () => parseTable(await ok(["link", "status", "-o", "wide"], localRun)).length === 0, LINK_TIMEOUT_MS, 1000);
        const toKube = path.join(work, "to-kube.yaml");
        await ok(["-n", namespace, "token", "issue", toKube], kubeRun);
        await ok(["token", "redeem", toKube], localRun);
        await linked();
        await bothWays();
      } finally {
        server.close();
      }
    } finally {
      await skupper(["system", "stop"], localRun);
    }
  });
});
