/**
 * Property-based tests (fast-check), bounded in runs and time:
 *
 * - the grant server, over real HTTPS on 127.0.0.1, given random methods, paths, headers,
 *   bodies and codes (and raw junk after the handshake), always answers with a well-formed HTTP
 *   error or closes the connection, never crashes and never counts a redemption;
 * - the token-file parser, given random and mutated AccessToken YAML, returns a valid token or
 *   throws a ValidationError / InvalidInputError with a message, never anything else;
 * - the redeeming client's check of a 200 answer, given mutated answers, returns credentials
 *   named from the token or throws a final RedemptionError, never anything else.
 *
 * A failure prints the seed and the shrunk counterexample; rerun with FC_SEED=<seed> to replay.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import fc from "fast-check";
import { API_VERSION, toYaml } from "../../src/api/index.js";
import { InvalidInputError, ValidationError } from "../../src/common/errors.js";
import { setLogSink } from "../../src/common/log.js";
import { acceptCredentials, parseAccessTokenFile, redeemToken, RedemptionError, type GrantServer } from "../../src/grants/index.js";
import { eventually } from "../helpers/cli.js";
import { connectTls, createAuthorities, IssuingLedger, readUntilClosed, startGrantServer, type Authorities } from "../helpers/grant-fixtures.js";

setLogSink(() => undefined);

const seed = process.env.FC_SEED ? Number(process.env.FC_SEED) : undefined;
const bounded = (numRuns: number, timeMs: number) => ({
  numRuns,
  interruptAfterTimeLimit: timeMs,
  markInterruptAsFailure: false,
  ...(seed !== undefined ? { seed } : {}),
});

const CODE = "correct-code-0123456789ab";
const UID = "6f1c2e9a-grant";

let authorities: Authorities;
let ledger: IssuingLedger;
let server: GrantServer;
let port = 0;

before(async () => {
  authorities = await createAuthorities();
  ledger = new IssuingLedger(authorities.siteCa);
  ledger.add({ uid: UID, code: CODE, allowed: 1000 });
  ledger.add({ uid: "expired", code: CODE, expiresAt: Date.now() - 1000 });
  ({ server, port } = await startGrantServer(ledger, authorities, { handshakeTimeoutMs: 1000, headersTimeoutMs: 1000, requestTimeoutMs: 1500, idleTimeoutMs: 1000 }));
});

after(() => server.close());

const tokenChar = fc.constantFrom(..."!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");
const printable = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 200 });
const method = fc.oneof(
  fc.constantFrom("POST", "GET", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE", "PROPFIND"),
  fc.string({ unit: tokenChar, minLength: 1, maxLength: 12 }),
);
const requestPath = fc.oneof(
  fc.constantFrom(`/${UID}`, `//${UID}/`, `/${UID}?x=1`, "/expired", "/", "*", "/%00", `/${UID}/../x`),
  fc.webPath().map((p) => (p.startsWith("/") ? p : `/${p}`)),
  fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 300 }).map((p) => `/${p}`),
);
const headerName = fc.oneof(
  fc.constantFrom("name", "subject", "skupper-site-id", "skupper-site-name", "skupper-linked-sites", "host", "content-type", "transfer-encoding", "expect", "connection"),
  fc.string({ unit: tokenChar, minLength: 1, maxLength: 40 }),
);
const headers = fc.array(fc.tuple(headerName, printable), { maxLength: 12 });
const body = fc
  .oneof(
    fc.constantFrom("", "wrong-code", CODE.slice(0, -1), CODE + " ", CODE.toUpperCase()),
    printable,
    fc.uint8Array({ maxLength: 6000 }).map((bytes) => Buffer.from(bytes).toString("latin1")),
  )
  .filter((b) => b !== CODE);
const lengthMode = fc.constantFrom("exact", "exact", "exact", "short", "none", "chunked");

function rawRequest(m: string, p: string, h: Array<[string, string]>, b: string, mode: string): Buffer {
  const lines = [`${m} ${p} HTTP/1.1`, `Host: 127.0.0.1:${port}`, ...h.map(([n, v]) => `${n}: ${v}`)];
  const bytes = Buffer.from(b, "latin1");
  let payload = bytes;
  if (mode === "exact") lines.push(`Content-Length: ${bytes.length}`);
  if (mode === "short") lines.push(`Content-Length: ${Math.floor(bytes.length / 2)}`);
  if (mode === "chunked") {
    lines.push("Transfer-Encoding: chunked");
    payload = Buffer.concat([Buffer.from(`${bytes.length.toString(16)}\r\n`), bytes, Buffer.from("\r\n0\r\n\r\n")]);
  }
  return Buffer.concat([Buffer.from(lines.join("\r\n") + "\r\n\r\n", "latin1"), payload]);
}

/** Checks what the server sent: well-formed HTTP with a final 4xx/5xx (or nothing, if `mayClose`). */
function assertWellFormedError(raw: string, options: { method?: string; mayClose?: boolean } = {}): void {
  if (raw === "" && options.mayClose) return;
  let rest = raw;
  for (;;) {
    const head = /^HTTP\/1\.1 (\d{3}) [^\r\n]*\r\n((?:[^\r\n]+\r\n)*)\r\n/.exec(rest);
    assert.ok(head, `a status line and headers, got ${JSON.stringify(raw.slice(0, 200))}`);
    const status = Number(head[1]);
    rest = rest.slice(head[0].length);
    if (status === 100) continue; // "Expect: 100-continue" is honoured before the real answer
    assert.ok(status >= 400 && status <= 599, `an error status, got ${status}: ${JSON.stringify(raw.slice(0, 200))}`);
    const length = /^content-length: (\d+)\r$/im.exec(head[2] ?? "");
    if (length && options.method !== "HEAD") assert.ok(rest.length >= Number(length[1]), `the whole body (${length[1]} bytes), got ${rest.length}`);
    if (/^skupper-error: /im.test(head[2] ?? "")) assert.match(rest, /^[^\r\n]+\n/, "a refusal says why, in one line");
    return;
  }
}

describe("grant server under random requests", () => {
  test("random requests get a well-formed HTTP error, never a redemption", async () => {
    await fc.assert(
      fc.asyncProperty(method, requestPath, headers, body, lengthMode, async (m, p, h, b, mode) => {
        const socket = await connectTls(port, authorities.grantCa.cert);
        const answer = readUntilClosed(socket, 4000);
        socket.write(rawRequest(m, p, h, b, mode));
        assertWellFormedError(await answer, { method: m });
        assert.equal(ledger.recorded, 0, "no redemption was counted");
      }),
      bounded(150, 30_000),
    );
  });

  test("with the right code and random headers, a redemption is counted exactly when its 200 is delivered", async () => {
    await fc.assert(
      fc.asyncProperty(headers, fc.constantFrom("exact", "chunked"), async (h, mode) => {
        const counted = ledger.recorded - ledger.unrecorded;
        const socket = await connectTls(port, authorities.grantCa.cert);
        const answer = readUntilClosed(socket, 4000);
        socket.write(rawRequest("POST", `/${UID}`, h, CODE, mode));
        const raw = await answer;
        const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(raw)?.[1]);
        if (status === 200) assert.match(raw, /\r\n\r\n---\napiVersion: v1\nkind: Secret\n/);
        else assertWellFormedError(raw);
        await eventually("the count to settle", () => ledger.recorded - ledger.unrecorded - counted === (status === 200 ? 1 : 0), 2000, 5);
      }),
      bounded(40, 20_000),
    );
    ledger.recorded = 0;
    ledger.unrecorded = 0;
  });

  test("random bytes after the handshake get a 400 or a closed connection", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 2000 }), async (bytes) => {
        const socket = await connectTls(port, authorities.grantCa.cert);
        const answer = readUntilClosed(socket, 4000);
        socket.write(bytes);
        // Bytes that never finish a request line are closed at the headers limit, unanswered.
        assertWellFormedError(await answer, { mayClose: true });
        assert.equal(ledger.recorded, 0);
      }),
      bounded(60, 20_000),
    );
  });

  test("after all that, the server is up and a real redemption works", async () => {
    const credentials = await redeemToken(
      { url: `https://127.0.0.1:${port}/${UID}`, code: CODE, ca: authorities.grantCa.cert },
      { name: "after-fuzz", subject: "east", siteId: "site-east", siteName: "east" },
      3000,
    );
    assert.equal(credentials.links[0]?.metadata.name, "after-fuzz");
    assert.equal(ledger.recorded, 1);
  });
});

describe("token-file parser under random and mutated input", () => {
  const validToken = toYaml({
    apiVersion: API_VERSION,
    kind: "AccessToken",
    metadata: { name: "west-x8k2q" },
    spec: {
      url: "https://192.0.2.10:9090/6f1c2e9a",
      code: "Xq3abcdefghijklmnopqrstu",
      ca: "-----BEGIN CERTIFICATE-----\nMIIBdTCCARugAwIBAgIUY\n-----END CERTIFICATE-----\n",
      linkCost: 1,
    },
  });

  /** Only these may come out of the parser for bad input; each with a message. */
  function parseOrExplain(text: string): void {
    try {
      const token = parseAccessTokenFile(text, "token.yaml");
      assert.equal(token.kind, "AccessToken");
      assert.equal(typeof token.spec.url, "string");
      assert.equal(typeof token.spec.code, "string");
      assert.equal(typeof token.spec.ca, "string");
    } catch (err) {
      assert.ok(err instanceof ValidationError || err instanceof InvalidInputError, `a clear error, got ${(err as Error)?.constructor?.name}: ${String(err)}`);
      assert.ok(err.message.startsWith("token.yaml"), `the message names the file: ${err.message}`);
      assert.equal(err.exitCode, 2);
    }
  }

  test("the valid token parses", () => {
    assert.equal(parseAccessTokenFile(validToken, "token.yaml").metadata.name, "west-x8k2q");
  });

  const mutation = fc.oneof(
    fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), length: fc.integer({ min: 1, max: 20 }) }),
    fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), text: fc.oneof(fc.string({ maxLength: 10 }), fc.constantFrom(":", "- ", "\n", "  ", "&a ", "*a", "!!binary ", "{", "[", "'", '"', "---\n", "? ", "|", ">", "%YAML 1.1\n", "\t", "#")) }),
    fc.record({ kind: fc.constant("duplicate-line" as const), at: fc.nat() }),
    fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
  );

  interface Mutation {
    kind: "delete" | "insert" | "duplicate-line" | "truncate";
    at: number;
    length?: number;
    text?: string;
  }

  function mutate(text: string, mutations: Mutation[]): string {
    let out = text;
    for (const m of mutations) {
      const at = out.length === 0 ? 0 : m.at % (out.length + 1);
      if (m.kind === "delete") out = out.slice(0, at) + out.slice(at + (m.length ?? 1));
      if (m.kind === "insert") out = out.slice(0, at) + (m.text ?? "") + out.slice(at);
      if (m.kind === "truncate") out = out.slice(0, at);
      if (m.kind === "duplicate-line") {
        const lines = out.split("\n");
        const i = lines.length === 0 ? 0 : at % lines.length;
        lines.splice(i, 0, lines[i] ?? "");
        out = lines.join("\n");
      }
    }
    return out;
  }

  test("mutated token files give a token or a clear error", () => {
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 6 }), (mutations) => parseOrExplain(mutate(validToken, mutations))),
      bounded(1500, 20_000),
    );
  });

  test("random YAML-ish text gives a token or a clear error", () => {
    const yamlish = fc.oneof(
      fc.string({ maxLength: 500 }),
      fc.jsonValue().map((v) => toYaml(v) ?? ""),
      fc.record({ apiVersion: fc.oneof(fc.constant(API_VERSION), fc.string()), kind: fc.constant("AccessToken"), metadata: fc.jsonValue(), spec: fc.jsonValue() }).map((v) => JSON.stringify(v)),
      fc.array(fc.constant(validToken), { minLength: 2, maxLength: 3 }).map((docs) => docs.join("---\n")),
    );
    fc.assert(fc.property(yamlish, parseOrExplain), bounded(1500, 20_000));
  });

  test("pathological YAML (deep nesting, alias bombs, huge files) gives a clear error", () => {
    const deep = (n: number) => "[".repeat(n) + "]".repeat(n);
    const nestedMap = (n: number) => Array.from({ length: n }, (_, i) => `${" ".repeat(i)}a:`).join("\n") + " 1\n";
    const bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]", ...Array.from({ length: 9 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10).fill(`*${String.fromCharCode(97 + i)}`).join(", ")}]`)].join("\n");
    for (const text of [
      deep(100_000),
      `spec: ${deep(50_000)}`,
      nestedMap(1000),
      bomb,
      `apiVersion: ${API_VERSION}\nkind: AccessToken\nmetadata: {name: x}\nspec: ${bomb.replace(/\n/g, " ")}`,
      "x".repeat(2 * 1024 * 1024),
      "\u0000\uffff\ud800",
    ]) {
      parseOrExplain(text);
    }
  });
});

describe("token-file parser: cases the fuzz test found", () => {
  test("an alias to an anchor that is not set is a ValidationError naming the file", () => {
    assert.throws(() => parseAccessTokenFile("*!", "token.yaml"), (err: unknown) => {
      assert.ok(err instanceof ValidationError);
      assert.match(err.message, /^token\.yaml: not valid YAML: Unresolved alias/);
      return true;
    });
  });

  test("an alias bomb is a ValidationError naming the file", () => {
    const bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]", ...Array.from({ length: 9 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10).fill(`*${String.fromCharCode(97 + i)}`).join(", ")}]`)].join("\n");
    assert.throws(() => parseAccessTokenFile(bomb, "token.yaml"), /^ValidationError: token\.yaml: not valid YAML: Excessive alias count/);
  });
});

describe("redemption response check under random and mutated answers", () => {
  let validAnswer = "";

  before(async () => {
    const ledgerForAnswer = new IssuingLedger(authorities.siteCa);
    validAnswer = await ledgerForAnswer.issue(
      { name: "g", uid: "g", code: "c", expiresAt: 0, allowed: 1, made: 0 },
      { name: "west-token", subject: "east", host: "192.0.2.10" },
    );
  });

  function acceptOrExplain(body: string): void {
    try {
      const credentials = acceptCredentials(body, "192.0.2.10:9090", "west-token");
      assert.equal(credentials.secret.metadata.name, "west-token");
      assert.ok(credentials.links.length >= 1);
      for (const link of credentials.links) assert.equal(link.spec.tlsCredentials, "west-token");
    } catch (err) {
      assert.ok(err instanceof RedemptionError, `a RedemptionError, got ${(err as Error)?.constructor?.name}: ${String(err)}`);
      assert.equal(err.retryable, false, "an unusable answer is final");
      assert.match(err.message, /^the grant server at 192\.0\.2\.10:9090 sent credentials that cannot be used: ./);
    }
  }

  test("the valid answer is accepted", () => {
    acceptOrExplain(validAnswer);
    assert.equal(acceptCredentials(validAnswer, "h", "west-token").links.length, 1);
  });

  test("mutated answers are accepted as credentials named from the token, or refused with a RedemptionError", () => {
    const edit = fc.record({
      at: fc.nat(),
      cut: fc.integer({ min: 0, max: 30 }),
      text: fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom("*a", "&a ", "---\n", "\n  ", "kind: Listener\n", "name: victim\n", ": ", "!!binary ", "[", "{")),
    });
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 5 }), (edits) => {
        let body = validAnswer;
        for (const e of edits) {
          const at = e.at % (body.length + 1);
          body = body.slice(0, at) + e.text + body.slice(at + e.cut);
        }
        acceptOrExplain(body);
      }),
      bounded(1500, 20_000),
    );
  });
});
