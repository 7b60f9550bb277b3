/**
 * The Kubernetes CRDs (src/api/crds.ts): the committed file is what the generator writes now;
 * every kind has the original's names, scope, status subresource and printer columns; every
 * schema is one a Kubernetes 1.20 API server accepts (structural); and the resources of the
 * original's documentation and of ours fit the schemas.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { parseAllDocuments } from "yaml";
import { z } from "zod";
import {
  CRDS_FILE,
  crdsYaml,
  CUSTOM_RESOURCE_KINDS,
  customResourceDefinitions,
  failed,
  pending,
  ready,
  requiredConditions,
  setCondition,
  structuralSchema,
  withAggregate,
  type CustomResourceDefinition,
  type CustomResourceKind,
  type JsonSchemaProps,
} from "../../src/api/index.js";

const ROOT = new URL("../../../", import.meta.url);

function crdOf(kind: CustomResourceKind): CustomResourceDefinition {
  const crd = customResourceDefinitions().find((c) => c.spec.names.kind === kind);
  assert.ok(crd, `no CRD for ${kind}`);
  return crd;
}

function schemaOf(kind: CustomResourceKind): JsonSchemaProps {
  return crdOf(kind).spec.versions[0]!.schema.openAPIV3Schema;
}

// ---- a structural-schema checker (the rules of apiextensions.k8s.io/v1 in Kubernetes 1.20) ----

const ALLOWED_KEYWORDS = new Set([
  "type", "description", "properties", "additionalProperties", "items", "required", "enum", "default",
  "format", "pattern", "minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems", "nullable",
  "x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields",
]);
const TYPES = new Set(["object", "array", "string", "integer", "number", "boolean"]);

/** What makes `schema` non-structural or refused by a 1.20 API server; empty when it is fine. */
function structuralProblems(schema: JsonSchemaProps, at = "<root>"): string[] {
  const problems: string[] = [];
  for (const key of Object.keys(schema)) if (!ALLOWED_KEYWORDS.has(key)) problems.push(`${at}: "${key}" is not allowed`);
  if (schema["x-kubernetes-int-or-string"]) {
    if (schema.type !== undefined) problems.push(`${at}: int-or-string must not have a type`);
    return problems;
  }
  if (schema.type === undefined && !schema["x-kubernetes-preserve-unknown-fields"]) problems.push(`${at}: no type`);
  if (schema.type !== undefined && (typeof schema.type !== "string" || !TYPES.has(schema.type))) problems.push(`${at}: type ${JSON.stringify(schema.type)}`);
  if (schema.type === "object") {
    const isMetadata = at === "<root>.metadata";
    if (isMetadata && Object.keys(schema).some((key) => key !== "type")) problems.push(`${at}: metadata may only be {type: object}`);
    if (schema.properties && schema.additionalProperties) problems.push(`${at}: properties and additionalProperties together`);
    if (!schema.properties && !schema.additionalProperties && !schema["x-kubernetes-preserve-unknown-fields"] && !isMetadata) {
      problems.push(`${at}: an object with neither properties nor additionalProperties`);
    }
    if (typeof schema.additionalProperties === "boolean") problems.push(`${at}: additionalProperties must be a schema`);
    for (const name of schema.required ?? []) if (!schema.properties?.[name]) problems.push(`${at}: required "${name}" is not a property`);
    for (const [name, child] of Object.entries(schema.properties ?? {})) problems.push(...structuralProblems(child, `${at}.${name}`));
    if (schema.additionalProperties && typeof schema.additionalProperties === "object") {
      problems.push(...structuralProblems(schema.additionalProperties, `${at}.*`));
    }
  } else if (schema.properties || schema.additionalProperties || schema.required) {
    problems.push(`${at}: properties on a ${schema.type}`);
  }
  if (schema.type === "array") {
    if (!schema.items || typeof schema.items !== "object" || Array.isArray(schema.items)) problems.push(`${at}: an array needs one items schema`);
    else problems.push(...structuralProblems(schema.items, `${at}[]`));
  } else if (schema.items) problems.push(`${at}: items on a ${schema.type}`);
  if (schema.pattern !== undefined && /\(\?[=!<]/.test(schema.pattern)) problems.push(`${at}: lookaround is not RE2`);
  if (schema.default !== undefined) problems.push(...fit(schema, schema.default, `${at} (default)`));
  return problems;
}

/**
 * What is wrong with `value` under `schema`, as the API server would see it: a field the schema
 * does not name is reported (the server would prune it, so it would silently do nothing).
 */
function fit(schema: JsonSchemaProps, value: unknown, at: string): string[] {
  if (value === null) return schema.nullable ? [] : [`${at}: null`];
  if (schema["x-kubernetes-int-or-string"]) return typeof value === "string" || Number.isInteger(value) ? [] : [`${at}: not a string or an integer`];
  const problems: string[] = [];
  if (schema.enum && !schema.enum.includes(value)) problems.push(`${at}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`);
  switch (schema.type) {
    case "object": {
      if (typeof value !== "object" || Array.isArray(value)) return [`${at}: not an object`];
      const known = schema.properties !== undefined || schema.additionalProperties !== undefined;
      for (const [key, child] of Object.entries(value)) {
        const childSchema = schema.properties?.[key] ?? schema.additionalProperties;
        if (childSchema) problems.push(...fit(childSchema, child, `${at}.${key}`));
        else if (known && !schema["x-kubernetes-preserve-unknown-fields"]) problems.push(`${at}.${key}: unknown field`);
      }
      for (const name of schema.required ?? []) if (!(name in value)) problems.push(`${at}.${name}: required`);
      break;
    }
    case "array":
      if (!Array.isArray(value)) return [`${at}: not an array`];
      value.forEach((item, i) => problems.push(...fit(schema.items!, item, `${at}[${i}]`)));
      if (schema.minItems !== undefined && value.length < schema.minItems) problems.push(`${at}: fewer than ${schema.minItems} items`);
      break;
    case "string":
      if (typeof value !== "string") return [`${at}: not a string`];
      if (schema.minLength !== undefined && value.length < schema.minLength) problems.push(`${at}: too short`);
      if (schema.maxLength !== undefined && value.length > schema.maxLength) problems.push(`${at}: too long`);
      if (schema.pattern !== undefined && !new RegExp(schema.pattern).test(value)) problems.push(`${at}: does not match ${schema.pattern}`);
      break;
    case "integer":
      if (!Number.isInteger(value)) return [`${at}: not an integer`];
      if (schema.minimum !== undefined && (value as number) < schema.minimum) problems.push(`${at}: below ${schema.minimum}`);
      if (schema.maximum !== undefined && (value as number) > schema.maximum) problems.push(`${at}: above ${schema.maximum}`);
      break;
    case "boolean":
      if (typeof value !== "boolean") return [`${at}: not a boolean`];
      break;
  }
  return problems;
}

function fitResource(document: { kind: CustomResourceKind }): string[] {
  return fit(schemaOf(document.kind), document, document.kind);
}

// ---- the tests -------------------------------------------------------------------------------

describe("the generated CRD file", () => {
  test("deploy/kubernetes/crds.yaml is what the generator writes now", () => {
    const committed = readFileSync(new URL(CRDS_FILE, ROOT), "utf8");
    assert.ok(
      committed === crdsYaml(),
      `${CRDS_FILE} is stale: the schemas or src/api/crds.ts changed. Run \`npm run generate\` and commit the file.`,
    );
  });

  test("it says it is generated and how to regenerate it, and holds one document per kind", () => {
    const text = crdsYaml();
    assert.match(text, /^# .*\n# Generated .*do not edit\.\n# Regenerate with `npm run generate`/);
    const documents = parseAllDocuments(text).map((d) => d.toJS() as CustomResourceDefinition);
    assert.deepEqual(documents, customResourceDefinitions());
  });
});

describe("names, scope, versions and subresources", () => {
  const expected: Record<CustomResourceKind, { plural: string; shortNames?: string[] }> = {
    Site: { plural: "sites", shortNames: ["st"] },
    Link: { plural: "links", shortNames: ["ln"] },
    AccessGrant: { plural: "accessgrants", shortNames: ["grant", "gr"] },
    AccessToken: { plural: "accesstokens", shortNames: ["token", "to"] },
    Listener: { plural: "listeners", shortNames: ["lnr"] },
    Connector: { plural: "connectors", shortNames: ["cnr"] },
    RouterAccess: { plural: "routeraccesses" },
    MultiKeyListener: { plural: "multikeylisteners" },
    SecuredAccess: { plural: "securedaccesses" },
    Certificate: { plural: "certificates" },
    AttachedConnector: { plural: "attachedconnectors", shortNames: ["acnr"] },
    AttachedConnectorBinding: { plural: "attachedconnectorbindings", shortNames: ["acnrb"] },
  };

  test("there is one CRD per supported kind, and none for Secret", () => {
    assert.deepEqual(customResourceDefinitions().map((c) => c.spec.names.kind).sort(), Object.keys(expected).sort());
    assert.deepEqual([...CUSTOM_RESOURCE_KINDS].sort(), Object.keys(expected).sort());
  });

  for (const kind of CUSTOM_RESOURCE_KINDS) {
    test(`${kind}: skupper.io/v2alpha1, namespaced, with the original's names and the status subresource`, () => {
      const crd = crdOf(kind);
      const { plural, shortNames } = expected[kind];
      assert.equal(crd.apiVersion, "apiextensions.k8s.io/v1");
      assert.equal(crd.metadata.name, `${plural}.skupper.io`);
      assert.equal(crd.spec.group, "skupper.io");
      assert.equal(crd.spec.scope, "Namespaced");
      assert.deepEqual(crd.spec.names, {
        kind,
        listKind: `${kind}List`,
        plural,
        singular: kind.toLowerCase(),
        ...(shortNames ? { shortNames } : {}),
      });
      assert.equal(crd.spec.versions.length, 1);
      const version = crd.spec.versions[0]!;
      assert.deepEqual([version.name, version.served, version.storage], ["v2alpha1", true, true]);
      assert.deepEqual(version.subresources, { status: {} });
      assert.ok(version.schema.openAPIV3Schema.properties?.status, "the status subresource needs a status schema");
    });
  }
});

describe("printer columns", () => {
  /** The original CRDs' columns: name and JSONPath, in order. */
  const expected: Record<CustomResourceKind, Array<[string, string]>> = {
    Site: [["Status", ".status.status"], ["Sites In Network", ".status.sitesInNetwork"], ["Message", ".status.message"]],
    Link: [["Status", ".status.status"], ["Remote Site", ".status.remoteSiteName"], ["Message", ".status.message"]],
    AccessGrant: [
      ["Redemptions Allowed", ".spec.redemptionsAllowed"],
      ["Redemptions Made", ".status.redemptions"],
      ["Expiration", ".status.expirationTime"],
      ["Status", ".status.status"],
      ["Message", ".status.message"],
    ],
    AccessToken: [["URL", ".spec.url"], ["Redeemed", ".status.redeemed"], ["Status", ".status.status"], ["Message", ".status.message"]],
    Listener: [
      ["Routing Key", ".spec.routingKey"],
      ["Port", ".spec.port"],
      ["Host", ".spec.host"],
      ["Status", ".status.status"],
      ["Has Matching Connector", ".status.hasMatchingConnector"],
      ["Message", ".status.message"],
    ],
    Connector: [
      ["Routing Key", ".spec.routingKey"],
      ["Port", ".spec.port"],
      ["Host", ".spec.host"],
      ["Selector", ".spec.selector"],
      ["Status", ".status.status"],
      ["Has Matching Listener", ".status.hasMatchingListener"],
      ["Message", ".status.message"],
    ],
    RouterAccess: [["Status", ".status.status"], ["Message", ".status.message"]],
    MultiKeyListener: [["Port", ".spec.port"], ["Host", ".spec.host"], ["Status", ".status.status"], ["Has Destination", ".status.hasDestination"], ["Message", ".status.message"]],
    SecuredAccess: [["Status", ".status.status"], ["Message", ".status.message"]],
    Certificate: [
      ["CA", ".spec.ca"],
      ["Server", ".spec.server"],
      ["Client", ".spec.client"],
      ["Signing", ".spec.signing"],
      ["Status", ".status.status"],
      ["Expiration", ".status.expiration"],
      ["Message", ".status.message"],
    ],
    AttachedConnector: [["Site Namespace", ".spec.siteNamespace"], ["Selector", ".spec.selector"], ["Port", ".spec.port"], ["Status", ".status.status"], ["Message", ".status.message"]],
    AttachedConnectorBinding: [
      ["Routing Key", ".spec.routingKey"],
      ["Connector Namespace", ".spec.connectorNamespace"],
      ["Status", ".status.status"],
      ["Has Matching Listener", ".status.hasMatchingListener"],
      ["Message", ".status.message"],
    ],
  };

  for (const kind of CUSTOM_RESOURCE_KINDS) {
    test(`${kind}: the original's columns, each naming a field of the schema with its type`, () => {
      const columns = crdOf(kind).spec.versions[0]!.additionalPrinterColumns;
      assert.deepEqual(columns.map((c) => [c.name, c.jsonPath]), expected[kind]);
      for (const c of columns) {
        const [, part, field] = c.jsonPath.split(".") as [string, "spec" | "status", string];
        const property = schemaOf(kind).properties?.[part]?.properties?.[field];
        assert.ok(property, `${c.jsonPath} is not in the schema`);
        assert.equal(c.type === "date" ? "string" : c.type, property.type, `${c.jsonPath}: column type ${c.type}`);
        assert.ok(c.description.length > 0);
      }
    });
  }

  test("kubectl shows the headers the original's documentation shows", () => {
    // `kubectl get` output quoted in the original's linking guide (../shared/seeds).
    const headers: Partial<Record<CustomResourceKind, string>> = {
      AccessGrant: "NAME REDEMPTIONS ALLOWED REDEMPTIONS MADE EXPIRATION STATUS MESSAGE",
      AccessToken: "NAME URL REDEEMED STATUS MESSAGE",
      Link: "NAME STATUS REMOTE SITE MESSAGE",
    };
    for (const [kind, header] of Object.entries(headers) as Array<[CustomResourceKind, string]>) {
      const columns = crdOf(kind).spec.versions[0]!.additionalPrinterColumns;
      assert.equal(["NAME", ...columns.map((c) => c.name.toUpperCase())].join(" "), header);
    }
  });
});

describe("schemas a Kubernetes 1.20 API server accepts", () => {
  for (const kind of CUSTOM_RESOURCE_KINDS) {
    test(`${kind}: the schema is structural`, () => {
      const schema = schemaOf(kind);
      assert.equal(schema.type, "object");
      assert.deepEqual(structuralProblems(schema), []);
    });
  }

  test("the checker finds what 1.20 refuses", () => {
    const bad = {
      type: "object",
      properties: {
        ref: { $ref: "#/definitions/x" },
        union: { type: ["string", "null"] },
        untyped: { description: "no type" },
        strict: { type: "object", properties: { a: { type: "string" } }, additionalProperties: false },
        bare: { type: "object" },
        intOrString: { type: "string", "x-kubernetes-int-or-string": true },
        cel: { type: "string", "x-kubernetes-validations": [{ rule: "self != ''" }] },
      },
    } as unknown as JsonSchemaProps;
    const problems = structuralProblems(bad).join("\n");
    for (const field of ["ref", "union", "untyped", "strict", "bare", "intOrString", "cel"]) {
      assert.match(problems, new RegExp(`<root>\\.${field}:`), `no problem reported for ${field}`);
    }
  });

  test("the strict objects of zod lose additionalProperties:false (pruning rejects unknown fields)", () => {
    const link = schemaOf("Link").properties!.spec!;
    assert.equal(link.additionalProperties, undefined);
    assert.equal(link.properties!.endpoints!.items!.additionalProperties, undefined);
    assert.deepEqual(link.required, ["endpoints"]);
  });

  test("a port given as a string or a number is int-or-string; a Listener port is an integer 1-65535", () => {
    assert.deepEqual(schemaOf("Link").properties!.spec!.properties!.endpoints!.items!.properties!.port, { "x-kubernetes-int-or-string": true });
    assert.deepEqual(schemaOf("Listener").properties!.spec!.properties!.port, { type: "integer", minimum: 1, maximum: 65535 });
  });

  test("settings are maps of strings", () => {
    for (const kind of CUSTOM_RESOURCE_KINDS) {
      assert.deepEqual(schemaOf(kind).properties!.spec!.properties!.settings, { type: "object", additionalProperties: { type: "string" } }, kind);
    }
  });

  test("the converter turns unions into int-or-string or nullable, and refuses the rest", () => {
    const convert = (schema: z.ZodType) => structuralSchema(z.toJSONSchema(schema, { io: "input" }) as Record<string, unknown>);
    assert.deepEqual(convert(z.union([z.string(), z.number().int()])), { "x-kubernetes-int-or-string": true });
    assert.deepEqual(convert(z.string().nullable()), { type: "string", nullable: true });
    assert.deepEqual(convert(z.object({ a: z.string() }).nullable()), { type: "object", properties: { a: { type: "string" } }, required: ["a"], nullable: true });
    assert.deepEqual(convert(z.unknown()), { "x-kubernetes-preserve-unknown-fields": true });
    assert.deepEqual(convert(z.literal("x")), { type: "string", enum: ["x"] });
    assert.throws(() => convert(z.union([z.string(), z.boolean()])), /spec: a union of \["string","boolean"\] has no structural form/);
    assert.throws(() => convert(z.union([z.string(), z.number()])), /spec: a union of \["string","number"\] has no structural form/);
    assert.throws(() => convert(z.object({ pair: z.tuple([z.string(), z.string()]) })), /spec\.pair: .* has no structural form/);
  });

  test("a spec is required where zod requires it, and Site and AccessGrant default to {}", () => {
    for (const kind of CUSTOM_RESOURCE_KINDS) {
      const optional = kind === "Site" || kind === "AccessGrant";
      assert.deepEqual(schemaOf(kind).required, optional ? undefined : ["spec"], kind);
      assert.deepEqual(schemaOf(kind).properties!.spec!.default, optional ? {} : undefined, kind);
    }
  });
});

describe("resources fit the schemas", () => {
  /** Resources written in the original's documentation (../shared/seeds): the linking guide and the Link reference page. */
  const ORIGINAL_EXAMPLES = `
apiVersion: skupper.io/v2alpha1
kind: Site
metadata: { name: west, namespace: west }
spec:
  linkAccess: default
---
apiVersion: skupper.io/v2alpha1
kind: AccessGrant
metadata: { name: grant-west }
spec:
  redemptionsAllowed: 2 # default 1
  expirationWindow: 25m # default 15m
---
apiVersion: skupper.io/v2alpha1
kind: AccessToken
metadata: { name: token-to-west }
spec:
  code: "Xq3"
  ca: |-
    -----BEGIN CERTIFICATE-----
  url: "https://10.110.160.132:9090/87426fa9-5623-49af-a612-47d33b7a4200"
---
apiVersion: skupper.io/v2alpha1
kind: Link
metadata: { name: token-to-west }
spec:
  endpoints: [{ name: inter-router, host: 10.110.160.132, port: "55671", group: skupper-router }]
  cost: 1
  tlsCredentials: token-to-west
  settings: {}
status:
  status: Ready
  message: OK
  remoteSiteId: 1a2b
  remoteSiteName: my-site
  conditions: []
`;

  test("the original's examples", () => {
    const documents = parseAllDocuments(ORIGINAL_EXAMPLES).map((d) => d.toJS() as { kind: CustomResourceKind });
    assert.deepEqual(documents.map((d) => d.kind), ["Site", "AccessGrant", "AccessToken", "Link"]);
    for (const document of documents) assert.deepEqual(fitResource(document), [], document.kind);
  });

  test("the examples in README.md and docs/", () => {
    const files = ["README.md", ...readdirSync(new URL("docs/", ROOT)).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];
    let checked = 0;
    for (const file of files) {
      const text = readFileSync(new URL(file, ROOT), "utf8");
      for (const [, block] of text.matchAll(/```yaml\n([\s\S]*?)```/g)) {
        for (const document of parseAllDocuments(block!)) {
          const value = document.toJS() as { apiVersion?: string; kind?: string } | null;
          if (value?.apiVersion !== "skupper.io/v2alpha1") continue;
          assert.ok(CUSTOM_RESOURCE_KINDS.includes(value.kind as CustomResourceKind), `${file}: kind ${value.kind}`);
          assert.deepEqual(fitResource(value as { kind: CustomResourceKind }), [], `${file}: ${value.kind}`);
          checked++;
        }
      }
    }
    assert.ok(checked >= 4, `only ${checked} examples found`);
  });

  test("a field the schema does not name is reported (the API server would prune it)", () => {
    const listener = { apiVersion: "skupper.io/v2alpha1", kind: "Listener" as const, metadata: { name: "db" }, spec: { routingKey: "db", host: "db", port: 5432, prot: 1 } };
    assert.deepEqual(fitResource(listener), ["Listener.spec.prot: unknown field"]);
  });

  test("the statuses the controller writes fit the status schemas", () => {
    const now = "2026-01-02T03:04:05.000Z";
    const conditions = (...states: Array<[string, ReturnType<typeof ready>]>) =>
      states.reduce<ReturnType<typeof setCondition>>((list, [type, state]) => setCondition(list, type, state, now), []);
    const statuses: Record<CustomResourceKind, object> = {
      Site: { conditions: conditions(["Configured", ready()]), sitesInNetwork: 2, endpoints: [{ name: "inter-router", host: "h", port: "55671", group: "skupper-router" }], network: [{ id: "a", name: "west", links: [{ name: "l", remoteSiteId: "b", remoteSiteName: "east", operational: true }], services: [{ routingKey: "db", listeners: ["db"] }] }], defaultIssuer: "skupper-site-ca", controller: { name: "c", namespace: "n", version: "v" } },
      Link: { conditions: conditions(["Configured", ready()], ["Operational", ready()]), remoteSiteId: "b", remoteSiteName: "east" },
      AccessGrant: { conditions: conditions(["Processed", ready()], ["Resolved", pending("Pending")]), url: "https://h:9090/x", code: "c", ca: "pem", redemptions: 0, expirationTime: now },
      AccessToken: { conditions: conditions(["Redeemed", failed('grant "x" has expired')]), redeemed: false },
      Listener: { conditions: conditions(["Configured", failed('TLS credentials secret "x" not found')]), hasMatchingConnector: false },
      Connector: { conditions: conditions(["Configured", ready()], ["Matched", pending("No matching listeners")]), hasMatchingListener: false },
      RouterAccess: { conditions: conditions(["Configured", ready()]), endpoints: [{ name: "edge", host: "h", port: "45671", group: "skupper-router" }] },
      MultiKeyListener: { conditions: conditions(["Configured", failed("MultiKeyListener is not implemented yet")]), hasDestination: false, strategy: { weighted: { routingKeysReachable: { a: 2 } } } },
      SecuredAccess: { conditions: conditions(["Configured", failed("no effect")]), endpoints: [{ name: "https", host: "h", port: "443", group: "g" }], ca: "pem" },
      Certificate: { conditions: conditions(["Configured", failed("no effect")]), expiration: now },
      AttachedConnector: { conditions: conditions(["Configured", failed("no effect")]), selectedPods: [{ name: "p", ip: "10.0.0.1" }] },
      AttachedConnectorBinding: { conditions: conditions(["Configured", failed("no effect")]), hasMatchingListener: false },
    };
    for (const kind of CUSTOM_RESOURCE_KINDS) {
      const status = withAggregate({ ...statuses[kind], observedGeneration: 1 }, requiredConditions(kind), now);
      assert.deepEqual(fit(schemaOf(kind).properties!.status!, status, `${kind}.status`), [], kind);
    }
  });
});
