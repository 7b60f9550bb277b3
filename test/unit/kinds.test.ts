/**
 * The v2alpha1 kinds added so that every file written for the original applies: their schemas
 * (the original's fields, unknown ones rejected), the status the controller gives them, partial
 * parsing of files (each rejected document named), and which Site runs when a namespace has
 * several (the same choice after a restart).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { activeSiteOf, CUSTOM_RESOURCE_KINDS, KINDS, parseDocuments, type Site } from "../../src/api/index.js";
import { INERT_KINDS, inertReason } from "../../src/controller/reconcilers/inert.js";
import { ALIAS_BOMB } from "../helpers/hostile-yaml.js";
import { condition, harness, site, withSite } from "../helpers/controller-harness.js";

const V = "apiVersion: skupper.io/v2alpha1";

/** Valid documents of each new kind, with every field the original defines. */
const FULL: Record<(typeof INERT_KINDS)[number] | "MultiKeyListener" | "Certificate", string> = {
  MultiKeyListener: `${V}\nkind: MultiKeyListener\nmetadata: {name: mkl}\nspec:\n  host: 0.0.0.0\n  port: 9000\n  tlsCredentials: s\n  requireClientCert: true\n  observer: auto\n  settings: {a: b}\n  strategy:\n    priority:\n      routingKeys: [backend-a, backend-b]\n`,
  SecuredAccess: `${V}\nkind: SecuredAccess\nmetadata: {name: sa}\nspec:\n  accessType: loadbalancer\n  selector: {skupper.io/component: router}\n  ports:\n  - {name: inter-router, port: 55671, targetPort: 55671, protocol: TCP}\n  certificate: skupper-site-server\n  issuer: skupper-site-ca\n  settings: {x: y}\n`,
  Certificate: `${V}\nkind: Certificate\nmetadata: {name: my-cert}\nspec:\n  ca: skupper-site-ca\n  subject: my-server\n  hosts: [a.example, 10.0.0.1]\n  client: false\n  server: true\n  signing: false\n  settings: {}\n`,
  AttachedConnector: `${V}\nkind: AttachedConnector\nmetadata: {name: db}\nspec:\n  siteNamespace: west\n  selector: app=db\n  port: 5432\n  tlsCredentials: db-tls\n  useClientCert: false\n  type: tcp\n  includeNotReadyPods: false\n  settings: {}\n`,
  AttachedConnectorBinding: `${V}\nkind: AttachedConnectorBinding\nmetadata: {name: db}\nspec:\n  connectorNamespace: workloads\n  routingKey: db\n  exposePodsByName: false\n  settings: {}\n`,
};

function problems(text: string): string[] {
  const result = parseDocuments(text, "in.yaml");
  assert.equal(result.resources.length, 0, "an invalid document yields no resource");
  return result.problems;
}

describe("the v2alpha1 kinds of the original are all known", () => {
  test("every kind of the original has a schema and a CRD", () => {
    for (const kind of ["Site", "Link", "AccessGrant", "AccessToken", "Listener", "Connector", "RouterAccess", "MultiKeyListener", "SecuredAccess", "Certificate", "AttachedConnector", "AttachedConnectorBinding"]) {
      assert.ok((KINDS as string[]).includes(kind), kind);
      assert.ok((CUSTOM_RESOURCE_KINDS as string[]).includes(kind), kind);
    }
  });

  for (const kind of [...INERT_KINDS, "MultiKeyListener", "Certificate"] as const) {
    test(`${kind}: every field of the original is accepted; an unknown one is refused, naming it`, () => {
      const { resources, problems: found } = parseDocuments(FULL[kind], "in.yaml");
      assert.deepEqual(found, []);
      assert.equal(resources[0]?.kind, kind);
      const withTypo = FULL[kind].replace("spec:\n", "spec:\n  colour: blue\n");
      assert.deepEqual(problems(withTypo), [`in.yaml: ${kind} "${resources[0]!.metadata.name}": spec: unknown field "colour"`]);
    });
  }
});

describe("the rules of the new kinds", () => {
  test("MultiKeyListener: exactly one strategy, keys listed once and not empty, weights positive", () => {
    const base = `${V}\nkind: MultiKeyListener\nmetadata: {name: m}\nspec:\n  host: h\n  port: 9000\n`;
    const weighted = parseDocuments(`${base}  strategy: {weighted: {routingKeys: {a: 1, b: 3}}}\n`, "in.yaml");
    assert.deepEqual(weighted.problems, []);
    assert.match(problems(`${base}  strategy: {}\n`)[0]!, /spec\.strategy: give exactly one of priority and weighted/);
    assert.match(problems(`${base}  strategy: {priority: {routingKeys: [a]}, weighted: {routingKeys: {a: 1}}}\n`)[0]!, /give exactly one of priority and weighted/);
    assert.match(problems(`${base}  strategy: {priority: {routingKeys: [a, a]}}\n`)[0]!, /spec\.strategy\.priority\.routingKeys: must not name a routing key twice/);
    assert.match(problems(`${base}  strategy: {priority: {routingKeys: []}}\n`)[0]!, /at least one routing key is required/);
    assert.match(problems(`${base}  strategy: {weighted: {routingKeys: {a: 0}}}\n`)[0]!, /spec\.strategy\.weighted\.routingKeys\.a: weights must be positive/);
    assert.match(problems(`${base}  strategy: {weighted: {routingKeys: {}}}\n`)[0]!, /at least one routing key is required/);
    assert.match(problems(`${V}\nkind: MultiKeyListener\nmetadata: {name: m}\nspec:\n  port: 9000\n  strategy: {priority: {routingKeys: [a]}}\n`)[0]!, /spec\.host: is required/);
  });

  test("SecuredAccess needs a selector and ports with a name and a port", () => {
    const base = `${V}\nkind: SecuredAccess\nmetadata: {name: s}\nspec:\n`;
    assert.match(problems(`${base}  ports: [{name: a, port: 1}]\n`).join("\n"), /spec\.selector: is required/);
    assert.match(problems(`${base}  selector: {a: b}\n  ports: []\n`).join("\n"), /at least one port is required/);
    assert.match(problems(`${base}  selector: {a: b}\n  ports: [{name: a, port: 70000}]\n`).join("\n"), /spec\.ports\.0\.port: must be between 1 and 65535/);
  });

  test("Certificate needs a subject; its ca may be empty or absent (a self-signed CA)", () => {
    const ok = parseDocuments(`${V}\nkind: Certificate\nmetadata: {name: c}\nspec: {ca: "", subject: my-ca, signing: true}\n`, "in.yaml");
    assert.deepEqual(ok.problems, []);
    assert.deepEqual(parseDocuments(`${V}\nkind: Certificate\nmetadata: {name: c}\nspec: {subject: my-ca, signing: true}\n`, "in.yaml").problems, [], "stored, an empty ca is dropped");
    assert.match(problems(`${V}\nkind: Certificate\nmetadata: {name: c}\nspec: {ca: x}\n`).join("\n"), /spec\.subject: is required/);
  });

  test("AttachedConnector and its binding name valid namespaces", () => {
    assert.match(problems(FULL.AttachedConnector.replace("siteNamespace: west", "siteNamespace: West_1")).join("\n"), /spec\.siteNamespace: must be a lowercase RFC 1123 label/);
    assert.match(problems(FULL.AttachedConnectorBinding.replace("  routingKey: db\n", "")).join("\n"), /spec\.routingKey: is required/);
  });
});

describe("partial parsing: each document on its own", () => {
  const listener = `${V}\nkind: Listener\nmetadata: {name: web}\nspec: {routingKey: web, host: 127.0.0.1, port: 8080}\n`;
  const invalid = `${V}\nkind: Connector\nmetadata: {name: db}\nspec: {routingKey: db, port: 0}\n`;
  const unknown = `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: backend}\nspec: {replicas: 1}\n`;
  const nameless = `${V}\nkind: Listener\nspec: {routingKey: x, host: h, port: 1}\n`;

  test("valid documents are returned; each rejected one is named by kind, name and place", () => {
    const result = parseDocuments([listener, invalid, unknown, nameless].join("---\n"), "f.yaml");
    assert.deepEqual(result.resources.map((r) => `${r.kind}/${r.metadata.name}`), ["Listener/web"]);
    assert.deepEqual(result.fileProblems, []);
    assert.deepEqual(
      result.rejected.map((r) => [r.index, r.kind, r.name]),
      [
        [2, "Connector", "db"],
        [3, "Deployment", "backend"],
        [4, "Listener", undefined],
      ],
    );
    assert.deepEqual(result.rejected[0]!.problems, ['f.yaml (document 2): Connector "db": spec.port: must be between 1 and 65535']);
    assert.match(result.rejected[1]!.problems[0]!, /^f\.yaml \(document 3\): Deployment "backend": kind "Deployment" \(apps\/v1\) is not supported/);
    assert.match(result.rejected[2]!.problems[0]!, /^f\.yaml \(document 4\): Listener: metadata: is required/);
    assert.deepEqual(result.problems, result.rejected.flatMap((r) => r.problems));
  });

  test("text that is not YAML, too large or hostile is a problem of the whole file", () => {
    const broken = parseDocuments(`${listener}---\nkey: [unclosed\n`, "f.yaml");
    assert.equal(broken.fileProblems.length, 1);
    assert.match(broken.fileProblems[0]!, /^f\.yaml \(document 2\): not valid YAML/);
    const bomb = parseDocuments(`${listener}---\n${ALIAS_BOMB}`, "f.yaml");
    assert.match(bomb.fileProblems.join("\n"), /document 2\): not valid YAML/);
    const duplicate = parseDocuments(`${V}\nkind: Site\nkind: Site\nmetadata: {name: w}\n`, "f.yaml");
    assert.match(duplicate.fileProblems[0]!, /appears twice/);
    assert.deepEqual(duplicate.rejected, []);
    const large = parseDocuments(" ".repeat(3 * 1024 * 1024 + 1), "f.yaml");
    assert.match(large.fileProblems[0]!, /a file may hold at most 3 MiB/);
  });
});

describe("which Site runs when a namespace has several", () => {
  const ran = (s: Site): Site => ({ ...s, status: { conditions: [{ type: "Running", status: "True", reason: "Ready", message: "OK", lastTransitionTime: "2026-01-01T00:00:00Z" }] } });

  test("the one named as running, else the one whose status says it ran, else the first by name", () => {
    const [alpha, west] = [site("alpha"), site("west")];
    assert.equal(activeSiteOf([west, alpha])?.metadata.name, "alpha");
    assert.equal(activeSiteOf([alpha, ran(west)])?.metadata.name, "west");
    assert.equal(activeSiteOf([ran(alpha), west], "west")?.metadata.name, "west");
    assert.equal(activeSiteOf([alpha], "gone")?.metadata.name, "alpha");
    assert.equal(activeSiteOf([]), undefined);
  });

  test("a Site added later gets an Error that says why; after a restart the first one still runs", async (t) => {
    const h = await withSite(t, site("west"));
    await h.resources.create(site("alpha"));
    const refused = await h.untilStatus("Site", "alpha", "Error");
    assert.match(refused.message ?? "", /^An active site already exists in the namespace \(west\); only one site per namespace runs/);
    assert.equal(condition(refused, "Running")?.status, "False");
    assert.equal(h.router.identity.siteName, "west");

    await h.restart();
    await h.untilStatus("Site", "west", "Ready");
    await h.untilStatus("Site", "alpha", "Error");
    assert.equal(h.router.identity.siteName, "west", "the Site that ran before runs again, though alpha comes first by name");
  });
});

describe("the status of the kinds this site does not act on", () => {
  test("each is an Error on Configured that says why, on the local platform and on Kubernetes", async (t) => {
    const h = await withSite(t);
    for (const kind of INERT_KINDS) {
      const resource = parseDocuments(FULL[kind], "in.yaml").resources[0]!;
      await h.resources.create(resource as never);
      const status = await h.untilStatus(kind, resource.metadata.name, "Error");
      assert.equal(status.message, inertReason(kind, false));
      assert.equal(condition(status, "Configured")?.reason, "Error");
      assert.equal(condition(status, "Ready")?.status, "False");
      assert.equal(status.observedGeneration, 1);
    }
    assert.match(inertReason("AttachedConnector", false), /AttachedConnector is for Kubernetes sites whose workloads run in another namespace; it has no effect on a local site/);
    assert.match(inertReason("AttachedConnector", true), /not supported on this platform yet/);
  });

  test("without a Site they get the same status; a changed spec gets a current one", async (t) => {
    const h = harness(t);
    await h.start();
    const resource = parseDocuments(FULL.SecuredAccess, "in.yaml").resources[0]! as { spec: Record<string, unknown> };
    await h.resources.create(resource as never);
    await h.untilStatus("SecuredAccess", "sa", "Error");
    const updated = (await h.resources.update({ ...(resource as object), spec: { ...resource.spec, accessType: "nodeport" } } as never)) as { metadata: { generation?: number } };
    assert.equal(updated.metadata.generation, 2);
    await h.untilStatus("SecuredAccess", "sa", "Error", (s) => s.observedGeneration === 2);
  });
});
