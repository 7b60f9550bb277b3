/**
 * Resource validation (src/api): every kind parses when valid, and every problem is reported as
 * one sentence naming the source, the resource and the field.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  DEFAULT_EXPIRATION_WINDOW_MS,
  DEFAULT_REDEMPTIONS_ALLOWED,
  expirationWindowMs,
  isKindOf,
  linkAccessEnabled,
  linkCost,
  parseDocuments,
  parseDocumentsStrict,
  prune,
  redemptionsAllowed,
  toYamlDocuments,
  validateResource,
  type AccessGrant,
  type Link,
  type Site,
} from "../../src/api/index.js";
import { ValidationError } from "../../src/common/errors.js";

const V = "apiVersion: skupper.io/v2alpha1";

/** Parses one document that must be valid, and returns its resource. */
function parseOne(text: string) {
  const { resources, problems } = parseDocuments(text, "in.yaml");
  assert.deepEqual(problems, []);
  assert.equal(resources.length, 1);
  return resources[0]!;
}

/** Parses one document that must be invalid, and returns its problems. */
function problemsOf(text: string, source = "in.yaml"): string[] {
  const { resources, problems } = parseDocuments(text, source);
  assert.equal(resources.length, 0, "an invalid document yields no resource");
  assert.ok(problems.length > 0, "an invalid document yields at least one problem");
  return problems;
}

describe("valid resources parse", () => {
  test("Site, with and without a spec (spec defaults to {})", () => {
    const bare = parseOne(`${V}\nkind: Site\nmetadata:\n  name: west\n`);
    assert.equal(bare.kind, "Site");
    assert.deepEqual((bare as Site).spec, {});
    const full = parseOne(`${V}\nkind: Site\nmetadata:\n  name: west\n  namespace: ns-1\n  labels: {a: b}\nspec:\n  linkAccess: default\n  edge: false\n  settings: {k: v}\n`) as Site;
    assert.equal(full.metadata.namespace, "ns-1");
    assert.equal(full.spec.linkAccess, "default");
    assert.equal(full.spec.edge, false);
  });

  test("Link: numeric endpoint ports are normalised to strings", () => {
    const link = parseOne(
      `${V}\nkind: Link\nmetadata: {name: l1}\nspec:\n  cost: 3\n  tlsCredentials: l1\n  endpoints:\n  - {name: inter-router, host: 10.0.0.1, port: 55671, group: g}\n  - {host: b.example, port: "8081"}\n`,
    ) as Link;
    assert.equal(link.spec.endpoints[0]?.port, "55671");
    assert.equal(link.spec.endpoints[1]?.port, "8081");
    assert.equal(link.spec.cost, 3);
  });

  test("AccessGrant with no spec, and with every field", () => {
    const bare = parseOne(`${V}\nkind: AccessGrant\nmetadata: {name: g}\n`) as AccessGrant;
    assert.deepEqual(bare.spec, {});
    const full = parseOne(`${V}\nkind: AccessGrant\nmetadata: {name: g}\nspec: {redemptionsAllowed: 3, expirationWindow: 1h30m, code: abc, issuer: ca}\n`) as AccessGrant;
    assert.equal(full.spec.redemptionsAllowed, 3);
    assert.equal(full.spec.expirationWindow, "1h30m");
  });

  test("AccessToken, RouterAccess, Listener, Connector, Secret", () => {
    assert.equal(parseOne(`${V}\nkind: AccessToken\nmetadata: {name: t}\nspec: {url: "https://h:9090/x", code: c, ca: pem, linkCost: 2}\n`).kind, "AccessToken");
    assert.equal(
      parseOne(`${V}\nkind: RouterAccess\nmetadata: {name: ra}\nspec:\n  tlsCredentials: skupper-site-server\n  roles: [{name: inter-router, port: 55671}, {name: edge}]\n`).kind,
      "RouterAccess",
    );
    assert.equal(parseOne(`${V}\nkind: Listener\nmetadata: {name: l}\nspec: {routingKey: backend, host: 127.0.0.1, port: 8080}\n`).kind, "Listener");
    assert.equal(parseOne(`${V}\nkind: Connector\nmetadata: {name: c}\nspec: {routingKey: backend, host: localhost, port: 8080}\n`).kind, "Connector");
    const secret = parseOne(`apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ntype: kubernetes.io/tls\ndata:\n  tls.crt: ${Buffer.from("cert").toString("base64")}\n`);
    assert.ok(isKindOf(secret, "Secret"));
    assert.equal(Buffer.from(secret.data?.["tls.crt"] ?? "", "base64").toString(), "cert");
  });

  test("a status block in input is accepted (round trips of `get -o yaml`)", () => {
    const site = parseOne(`${V}\nkind: Site\nmetadata: {name: s}\nstatus: {status: Ready, message: OK}\n`);
    assert.equal(site.kind, "Site");
  });

  test("JSON input is accepted", () => {
    const site = parseOne(JSON.stringify({ apiVersion: "skupper.io/v2alpha1", kind: "Site", metadata: { name: "j" } }));
    assert.equal(site.metadata.name, "j");
  });
});

describe("unknown fields are rejected, naming the field", () => {
  test("at the top level, in metadata and in spec", () => {
    const problems = problemsOf(`${V}\nkind: Listener\nmetadata: {name: l1, bogus: 1}\nspec: {routingKey: k, host: h, port: 80, colour: red}\nextra: 1\n`);
    assert.ok(problems.includes(`in.yaml: Listener "l1": unknown field "extra"`), problems.join("\n"));
    assert.ok(problems.includes(`in.yaml: Listener "l1": metadata: unknown field "bogus"`), problems.join("\n"));
    assert.ok(problems.includes(`in.yaml: Listener "l1": spec: unknown field "colour"`), problems.join("\n"));
    assert.equal(problems.length, 3);
  });

  test("several unknown fields in one object are listed together", () => {
    const [problem, ...rest] = problemsOf(`${V}\nkind: Site\nmetadata: {name: s}\nspec: {linkacess: default, egde: true}\n`);
    assert.deepEqual(rest, []);
    assert.equal(problem, `in.yaml: Site "s": spec: unknown fields "linkacess", "egde"`);
  });

  test("in a nested list item", () => {
    const problems = problemsOf(`${V}\nkind: Link\nmetadata: {name: l}\nspec:\n  endpoints: [{host: h, port: 1, hostname: x}]\n`);
    assert.deepEqual(problems, [`in.yaml: Link "l": spec.endpoints.0: unknown field "hostname"`]);
  });
});

describe("wrong values are rejected with a sentence naming source, resource and field", () => {
  test("bad names", () => {
    const problems = problemsOf(`${V}\nkind: Connector\nmetadata: {name: Bad_Name}\nspec: {routingKey: k, port: 80}\n`, "bindings.yaml");
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /^bindings\.yaml: Connector "Bad_Name": metadata\.name: must consist of lower case letters, digits, '-' and '\.'/);
    const long = "a".repeat(254);
    assert.deepEqual(problemsOf(`${V}\nkind: Site\nmetadata: {name: ${long}}\n`), [`in.yaml: Site "${long}": metadata.name: must be at most 253 characters`]);
    const empty = problemsOf(`${V}\nkind: Site\nmetadata: {name: ""}\n`);
    assert.ok(empty.includes(`in.yaml: Site "": metadata.name: must not be empty`), empty.join("\n"));
    assert.deepEqual(problemsOf(`${V}\nkind: Site\nmetadata: {name: s, namespace: "Bad NS"}\n`), [
      `in.yaml: Site "s": metadata.namespace: must be a lowercase RFC 1123 label`,
    ]);
  });

  test("missing required fields say 'is required'", () => {
    assert.deepEqual(problemsOf(`${V}\nkind: Site\n`), [`in.yaml: Site: metadata: is required`]);
    assert.deepEqual(problemsOf(`${V}\nkind: Link\nmetadata: {name: l}\n`), [`in.yaml: Link "l": spec: is required`]);
    assert.deepEqual(problemsOf(`${V}\nkind: AccessToken\nmetadata: {name: t}\nspec: {url: "https://h/x"}\n`), [
      `in.yaml: AccessToken "t": spec.code: is required`,
      `in.yaml: AccessToken "t": spec.ca: is required`,
    ]);
    assert.deepEqual(problemsOf(`${V}\nkind: Connector\nmetadata: {name: c}\nspec: {host: h, port: 80}\n`), [`in.yaml: Connector "c": spec.routingKey: is required`]);
  });

  test("a present value of the wrong type is not reported as missing", () => {
    // Regression: required strings used to report "is required" for any wrong type.
    assert.deepEqual(problemsOf(`${V}\nkind: AccessToken\nmetadata: {name: t}\nspec: {url: 5, code: c, ca: pem}\n`), [
      `in.yaml: AccessToken "t": spec.url: must be a string`,
    ]);
    assert.deepEqual(problemsOf(`${V}\nkind: Listener\nmetadata: {name: l}\nspec: {routingKey: 7, host: h, port: 80}\n`), [
      `in.yaml: Listener "l": spec.routingKey: must be a string`,
    ]);
    // One problem per field, even when the wrong value happens to have a length (a list).
    assert.deepEqual(problemsOf(`${V}\nkind: Listener\nmetadata: {name: l}\nspec: {routingKey: k, host: [], port: 80}\n`), [
      `in.yaml: Listener "l": spec.host: must be a string`,
    ]);
    assert.deepEqual(problemsOf(`${V}\nkind: RouterAccess\nmetadata: {name: r}\nspec: {roles: [{name: edge}], tlsCredentials: true}\n`), [
      `in.yaml: RouterAccess "r": spec.tlsCredentials: must be a string`,
    ]);
  });

  test("wrong types name the expected type", () => {
    const problems = problemsOf(`${V}\nkind: Site\nmetadata: {name: s, labels: {a: 1}}\nspec: {edge: "yes"}\n`);
    assert.ok(problems.includes(`in.yaml: Site "s": metadata.labels.a: values must be strings`), problems.join("\n"));
    assert.ok(problems.some((p) => /^in\.yaml: Site "s": spec\.edge: .*expected boolean/.test(p)), problems.join("\n"));
    assert.match(problemsOf(`${V}\nkind: Site\nmetadata: x\n`)[0]!, /^in\.yaml: Site: metadata: .*expected object/);
  });

  test("ports", () => {
    assert.deepEqual(problemsOf(`${V}\nkind: Connector\nmetadata: {name: c}\nspec: {routingKey: k, port: 70000}\n`), [
      `in.yaml: Connector "c": spec.port: must be between 1 and 65535`,
    ]);
    assert.deepEqual(problemsOf(`${V}\nkind: Listener\nmetadata: {name: l}\nspec: {routingKey: k, host: h, port: "8080"}\n`), [
      `in.yaml: Listener "l": spec.port: must be an integer`,
    ]);
    assert.deepEqual(problemsOf(`${V}\nkind: Link\nmetadata: {name: l}\nspec: {endpoints: [{host: h, port: 0}]}\n`), [
      `in.yaml: Link "l": spec.endpoints.0.port: must be a port number between 1 and 65535`,
    ]);
    assert.deepEqual(problemsOf(`${V}\nkind: Link\nmetadata: {name: l}\nspec: {endpoints: []}\n`), [`in.yaml: Link "l": spec.endpoints: at least one endpoint is required`]);
  });

  test("grant fields: negative redemptions, malformed durations", () => {
    const problems = problemsOf(`${V}\nkind: AccessGrant\nmetadata: {name: g}\nspec: {expirationWindow: soon, redemptionsAllowed: -1}\n`);
    assert.deepEqual(problems.sort(), [
      `in.yaml: AccessGrant "g": spec.expirationWindow: must be a duration such as 15m, 1h or 90s`,
      `in.yaml: AccessGrant "g": spec.redemptionsAllowed: must not be negative`,
    ]);
    assert.deepEqual(problemsOf(`${V}\nkind: AccessGrant\nmetadata: {name: g}\nspec: {redemptionsAllowed: 1.5}\n`), [
      `in.yaml: AccessGrant "g": spec.redemptionsAllowed: must be an integer`,
    ]);
  });

  test("apiVersion, kind, roles and Secret data", () => {
    assert.deepEqual(problemsOf(`apiVersion: skupper.io/v1\nkind: Site\nmetadata: {name: s}\n`), [`in.yaml: Site "s": apiVersion: must be skupper.io/v2alpha1`]);
    assert.deepEqual(problemsOf(`${V}\nmetadata: {name: x}\n`), [`in.yaml: "kind" is required`]);
    assert.match(
      problemsOf(`${V}\nkind: Widget\nmetadata: {name: x}\n`)[0]!,
      /^in\.yaml: Widget "x": kind "Widget" \(skupper\.io\/v2alpha1\) is not supported \(supported kinds: Site, Link, AccessGrant, AccessToken, RouterAccess, Listener, Connector, MultiKeyListener, SecuredAccess, Certificate, AttachedConnector, AttachedConnectorBinding, Secret\)$/,
    );
    assert.match(problemsOf(`apiVersion: apps/v1\nkind: Deployment\n`)[0]!, /^in\.yaml: kind "Deployment" \(apps\/v1\) is not supported/, "no name: no label");
    assert.deepEqual(problemsOf(`${V}\nkind: RouterAccess\nmetadata: {name: r}\nspec: {roles: [{name: bogus}], tlsCredentials: x}\n`), [
      `in.yaml: RouterAccess "r": spec.roles.0.name: must be inter-router or edge`,
    ]);
    assert.deepEqual(problemsOf(`apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {tls.crt: "!!!"}\n`), [`in.yaml: Secret "s": data.tls.crt: must be base64`]);
  });

  test("documents that are not mappings, and YAML syntax errors", () => {
    assert.deepEqual(problemsOf("- a\n- b\n"), ["in.yaml: expected a resource (a mapping with apiVersion, kind, metadata), got a list"]);
    assert.deepEqual(problemsOf("just text\n"), ["in.yaml: expected a resource (a mapping with apiVersion, kind, metadata), got a string"]);
    assert.match(problemsOf("kind: [unclosed\n")[0]!, /^in\.yaml: not valid YAML: /);
    assert.deepEqual(validateResource(null, "x"), { ok: false, problems: ["x: expected a resource (a mapping with apiVersion, kind, metadata), got null"] });
  });
});

describe("multi-document YAML", () => {
  test("valid documents are returned, invalid ones reported by number, empty ones skipped", () => {
    const text = [
      "---",
      `${V}\nkind: Site\nmetadata: {name: a}`,
      "---",
      `${V}\nkind: Listener\nmetadata: {name: l}\nspec: {routingKey: k, host: h, port: 99999}`,
      "---",
      "---",
      `${V}\nkind: Connector\nmetadata: {name: c}\nspec: {routingKey: k, host: h, port: 80}`,
      "",
    ].join("\n");
    const { resources, problems } = parseDocuments(text, "all.yaml");
    assert.deepEqual(
      resources.map((r) => `${r.kind}/${r.metadata.name}`),
      ["Site/a", "Connector/c"],
    );
    assert.deepEqual(problems, [`all.yaml (document 2): Listener "l": spec.port: must be between 1 and 65535`]);
  });

  test("empty input is no resources and no problems", () => {
    const empty = { resources: [], problems: [], fileProblems: [], rejected: [] };
    assert.deepEqual(parseDocuments("", "e.yaml"), empty);
    assert.deepEqual(parseDocuments("---\n", "e.yaml"), empty);
  });

  test("parseDocumentsStrict throws a ValidationError carrying every problem", () => {
    const text = `${V}\nkind: Site\nmetadata: {name: A}\n---\n${V}\nkind: Site\nmetadata: {name: b, x: 1}\n`;
    assert.throws(
      () => parseDocumentsStrict(text, "s.yaml"),
      (err: unknown) => {
        assert.ok(err instanceof ValidationError);
        assert.equal(err.exitCode, 2);
        assert.equal(err.problems.length, 2);
        assert.match(err.problems[0]!, /^s\.yaml \(document 1\): Site "A": metadata\.name: /);
        assert.equal(err.problems[1], `s.yaml (document 2): Site "b": metadata: unknown field "x"`);
        assert.equal(err.message, err.problems.join("\n"));
        return true;
      },
    );
    assert.equal(parseDocumentsStrict(`${V}\nkind: Site\nmetadata: {name: ok}\n`, "s.yaml").length, 1);
  });

  test("toYamlDocuments output parses back to the same resources", () => {
    const site = { apiVersion: "skupper.io/v2alpha1", kind: "Site", metadata: { name: "a" }, spec: { linkAccess: "default" } };
    const listener = { apiVersion: "skupper.io/v2alpha1", kind: "Listener", metadata: { name: "l" }, spec: { routingKey: "k", host: "h", port: 80 } };
    const back = parseDocumentsStrict(toYamlDocuments([site, listener]), "rt.yaml");
    assert.deepEqual(back, [site, listener]);
  });

  test("prune drops empty values recursively", () => {
    assert.deepEqual(prune({ a: "", b: null, c: [], d: {}, e: { f: undefined }, g: 0, h: false, i: ["", "x"] }), { g: 0, h: false, i: ["x"] });
  });
});

describe("defaults", () => {
  const grant = (spec: AccessGrant["spec"]): AccessGrant => ({ apiVersion: "skupper.io/v2alpha1", kind: "AccessGrant", metadata: { name: "g" }, spec });

  test("AccessGrant: 1 redemption and a 15 minute window unless set", () => {
    assert.equal(DEFAULT_REDEMPTIONS_ALLOWED, 1);
    assert.equal(DEFAULT_EXPIRATION_WINDOW_MS, 15 * 60_000);
    assert.equal(redemptionsAllowed(grant({})), 1);
    assert.equal(redemptionsAllowed(grant({ redemptionsAllowed: 0 })), 1, "0 means the default, as in the original");
    assert.equal(redemptionsAllowed(grant({ redemptionsAllowed: 5 })), 5);
    assert.equal(expirationWindowMs(grant({})), 15 * 60_000);
    assert.equal(expirationWindowMs(grant({ expirationWindow: "1h30m" })), 90 * 60_000);
    assert.equal(expirationWindowMs(grant({ expirationWindow: "not a duration" })), 15 * 60_000);
  });

  test("defaults apply to a parsed grant with no spec", () => {
    const parsed = parseOne(`${V}\nkind: AccessGrant\nmetadata: {name: g}\n`) as AccessGrant;
    assert.equal(redemptionsAllowed(parsed), 1);
    assert.equal(expirationWindowMs(parsed), 15 * 60_000);
  });

  test("link cost: absent or below 1 counts as 1", () => {
    const link = (cost?: number): Link => ({
      apiVersion: "skupper.io/v2alpha1",
      kind: "Link",
      metadata: { name: "l" },
      spec: { endpoints: [{ host: "h", port: "1" }], ...(cost !== undefined ? { cost } : {}) },
    });
    assert.equal(linkCost(link()), 1);
    assert.equal(linkCost(link(0)), 1);
    assert.equal(linkCost(link(-4)), 1);
    assert.equal(linkCost(link(7)), 7);
  });

  test("link access is on for any value except absent, empty or none", () => {
    const site = (linkAccess?: string): Site => ({
      apiVersion: "skupper.io/v2alpha1",
      kind: "Site",
      metadata: { name: "s" },
      spec: linkAccess === undefined ? {} : { linkAccess },
    });
    assert.equal(linkAccessEnabled(site()), false);
    assert.equal(linkAccessEnabled(site("")), false);
    assert.equal(linkAccessEnabled(site("none")), false);
    assert.equal(linkAccessEnabled(site("default")), true);
  });

  test("routing key and connector host have no schema default: the key is required, the host optional", () => {
    // The CLI fills in routingKey (= name) and host; a resource file must give the routing key itself.
    assert.deepEqual(problemsOf(`${V}\nkind: Listener\nmetadata: {name: l}\nspec: {host: h, port: 80}\n`), [`in.yaml: Listener "l": spec.routingKey: is required`]);
    const connector = parseOne(`${V}\nkind: Connector\nmetadata: {name: c}\nspec: {routingKey: k, port: 80}\n`);
    assert.ok(isKindOf(connector, "Connector"));
    assert.equal(connector.spec.host, undefined);
    assert.equal(connector.spec.port, 80);
  });
});
