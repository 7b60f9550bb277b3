/**
 * Property-based tests of the resource parser (src/api/documents.ts) with fast-check: whatever
 * text a file holds (random, mutated from valid resources of every kind, random structures, alias
 * bombs, deep nesting), `parseDocuments` returns resources and problems, every problem names the
 * file, it never throws and never takes long. Run counts and time are bounded.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import YAML from "yaml";
import { API_VERSION, isValidResourceName, KINDS, MAX_FILE_BYTES, MAX_RESOURCE_BYTES, parseDocuments } from "../../src/api/index.js";

const SOURCE = "input/resources/fuzz.yaml";
/** Far more than any case needs on a loaded machine; a hang or a quadratic blow-up exceeds it. */
const CASE_BUDGET_MS = 3000;
const RUN_LIMIT = { interruptAfterTimeLimit: 20_000, markInterruptAsFailure: false } as const;

/** Valid YAML for each kind, the seeds the mutations start from. */
const VALID: string[] = [
  `apiVersion: ${API_VERSION}\nkind: Site\nmetadata:\n  name: west\nspec:\n  linkAccess: default\n  settings: {link-port: "55671"}\n`,
  `apiVersion: ${API_VERSION}\nkind: Link\nmetadata: {name: l1}\nspec:\n  cost: 2\n  tlsCredentials: l1\n  endpoints:\n  - {name: inter-router, host: 10.0.0.1, port: "55671"}\n`,
  `apiVersion: ${API_VERSION}\nkind: AccessGrant\nmetadata: {name: g1}\nspec: {redemptionsAllowed: 2, expirationWindow: 25m}\n`,
  `apiVersion: ${API_VERSION}\nkind: AccessToken\nmetadata: {name: t1}\nspec: {url: "https://h:9090/x", code: abc, ca: "-----BEGIN CERTIFICATE-----", linkCost: 1}\n`,
  `apiVersion: ${API_VERSION}\nkind: RouterAccess\nmetadata: {name: ra}\nspec:\n  tlsCredentials: skupper-site-server\n  roles: [{name: inter-router, port: 55671}]\n`,
  `apiVersion: ${API_VERSION}\nkind: Listener\nmetadata:\n  name: web\nspec:\n  routingKey: web\n  host: 127.0.0.1\n  port: 8080\n`,
  `apiVersion: ${API_VERSION}\nkind: Connector\nmetadata:\n  name: web\nspec:\n  routingKey: web\n  host: localhost\n  port: 8080\n`,
  `apiVersion: v1\nkind: Secret\nmetadata: {name: s1}\ntype: kubernetes.io/tls\ndata: {tls.crt: QUJD, ca.crt: "", tls.key: QUJD}\n`,
];

function checkResult(text: string): void {
  const started = performance.now();
  const result = parseDocuments(text, SOURCE);
  const elapsed = performance.now() - started;
  assert.ok(elapsed < CASE_BUDGET_MS, `parsing ${text.length} characters took ${Math.round(elapsed)} ms`);
  assert.ok(Array.isArray(result.resources) && Array.isArray(result.problems));
  for (const problem of result.problems) {
    assert.equal(typeof problem, "string");
    assert.ok(problem.startsWith(SOURCE), `a problem names the file: ${problem.slice(0, 200)}`);
  }
  for (const resource of result.resources) {
    assert.ok((KINDS as string[]).includes(resource.kind), `kind ${resource.kind}`);
    assert.ok(isValidResourceName(resource.metadata.name), `name ${JSON.stringify(resource.metadata.name)}`);
  }
}

type Mutation =
  | { op: "insert"; at: number; text: string }
  | { op: "delete"; at: number; length: number }
  | { op: "replace"; at: number; text: string }
  | { op: "repeat"; at: number; times: number };

/** A mutation of a text: insert, delete or replace a slice, or repeat a line. */
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant("insert" as const), at: fc.nat(), text: fc.oneof(fc.string(), fc.constantFrom("&a ", "*a", "<<: *a", "---\n", "...\n", "- ", ": ", "{", "[", "!!binary ", "!!set ", "? ", "|\n", '"', "'", "\t", "\u0000", "%YAML 1.1\n", "name: ../../x\n", "  ")) }),
  fc.record({ op: fc.constant("delete" as const), at: fc.nat(), length: fc.integer({ min: 1, max: 20 }) }),
  fc.record({ op: fc.constant("replace" as const), at: fc.nat(), text: fc.string({ maxLength: 8 }) }),
  fc.record({ op: fc.constant("repeat" as const), at: fc.nat(), times: fc.integer({ min: 2, max: 50 }) }),
);

function mutate(text: string, m: Mutation): string {
  const at = text.length === 0 ? 0 : m.at % text.length;
  switch (m.op) {
    case "insert":
      return text.slice(0, at) + m.text + text.slice(at);
    case "delete":
      return text.slice(0, at) + text.slice(at + m.length);
    case "replace":
      return text.slice(0, at) + m.text + text.slice(at + m.text.length);
    case "repeat": {
      const lines = text.split("\n");
      const index = at % Math.max(1, lines.length);
      lines.splice(index, 0, ...Array.from({ length: m.times - 1 }, () => lines[index] ?? ""));
      return lines.join("\n");
    }
  }
}

describe("parseDocuments never throws, never hangs, and names the file in every problem", () => {
  test("random text", () => {
    fc.assert(fc.property(fc.oneof(fc.string({ maxLength: 400 }), fc.string({ unit: "binary", maxLength: 400 })), checkResult), { numRuns: 400, ...RUN_LIMIT });
  });

  test("valid resources of every kind, mutated", () => {
    fc.assert(
      fc.property(fc.constantFrom(...VALID), fc.array(mutation, { minLength: 1, maxLength: 6 }), fc.boolean(), (seed, mutations, multi) => {
        const text = mutations.reduce(mutate, multi ? `${seed}---\n${seed}` : seed);
        checkResult(text);
      }),
      { numRuns: 600, ...RUN_LIMIT },
    );
  });

  test("random structures under every kind", () => {
    const value = fc.anything({ maxDepth: 4, maxKeys: 6, withNullPrototype: false, withBigInt: false, withDate: true, withMap: false, withSet: false, withTypedArray: true });
    fc.assert(
      fc.property(
        fc.constantFrom(...KINDS),
        fc.oneof(fc.string({ maxLength: 300 }), fc.constant("web"), fc.constant("a".repeat(300))),
        value,
        value,
        (kind, name, spec, extra) => {
          const doc = { apiVersion: kind === "Secret" ? "v1" : API_VERSION, kind, metadata: { name }, spec, extra };
          let text: string;
          try {
            text = YAML.stringify(doc);
          } catch {
            text = JSON.stringify(doc) ?? "";
          }
          checkResult(text);
          checkResult(JSON.stringify(doc) ?? "");
        },
      ),
      { numRuns: 300, ...RUN_LIMIT },
    );
  });

  test("hostile shapes: alias bombs, deep nesting, many keys, duplicate keys, oversize documents", () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 9 }), fc.integer({ min: 1, max: 8 }), (width, depth) => {
        const lines = [`a0: &a0 [${Array.from({ length: width }, () => '"x"').join(",")}]`];
        for (let i = 1; i <= depth; i++) lines.push(`a${i}: &a${i} [${Array.from({ length: width }, () => `*a${i - 1}`).join(",")}]`);
        checkResult(lines.join("\n"));
      }),
      { numRuns: 50, ...RUN_LIMIT },
    );
    checkResult("[".repeat(5000) + "]".repeat(5000));
    checkResult("a:\n" + Array.from({ length: 2000 }, (_, i) => `${"  ".repeat(i + 1)}k${i}:`).join("\n"));
    checkResult(`apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData:\n${Array.from({ length: 30_000 }, (_, i) => `  k${i}: v`).join("\n")}\n`);
    const duplicate = parseDocuments(`apiVersion: ${API_VERSION}\nkind: Site\nkind: Site\nmetadata: {name: w}\n`, SOURCE);
    assert.match(duplicate.problems[0] ?? "", /key "kind" appears twice in one mapping \(line 3\)/);
    const oversize = `apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData:\n  big: ${"x".repeat(MAX_RESOURCE_BYTES)}\n`;
    assert.match(parseDocuments(oversize, SOURCE).problems[0] ?? "", /a resource may be at most 1 MiB/);
    assert.match(parseDocuments(`${VALID[5]}---\n${oversize}`, SOURCE).problems[0] ?? "", /near document 2.*at most 1 MiB/);
    assert.match(parseDocuments(" ".repeat(MAX_FILE_BYTES + 1), SOURCE).problems[0] ?? "", /a file may hold at most 3 MiB/);
  });
});
