/**
 * The grant server and the redeeming client (src/grants), over real HTTPS on 127.0.0.1 with an
 * in-memory ledger: counting rules, refusals and the reason the client reports for each.
 */
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import https from "node:https";
import { after, before, beforeEach, describe, test } from "node:test";
import { API_VERSION, toYamlDocuments, type Link, type Secret } from "../../src/api/index.js";
import { createCA, describeCertificate, issueCertificate, type Credentials } from "../../src/certs/index.js";
import { setLogSink } from "../../src/common/log.js";
import {
  GrantServer,
  Header,
  redeemToken,
  Refusal,
  RedemptionError,
  type GrantLedger,
  type GrantRecord,
  type RedeemerIdentity,
  type RedemptionFailure,
  type RedemptionRequest,
} from "../../src/grants/index.js";

const logLines: string[] = [];
setLogSink((line) => logLines.push(line));

/** An in-memory ledger with hooks to make issuing or recording fail. */
class TestLedger implements GrantLedger {
  readonly grants = new Map<string, GrantRecord>();
  readonly issued: RedemptionRequest[] = [];
  issueFailure: Error | undefined;
  recordFailure: Error | undefined;
  recordDelayMs = 0;
  recorded = 0;
  unrecorded = 0;

  add(grant: Partial<GrantRecord> & { uid: string }): GrantRecord {
    const record: GrantRecord = { name: `grant-${grant.uid}`, code: "correct-code", expiresAt: Date.now() + 60_000, allowed: 1, made: 0, ...grant };
    this.grants.set(record.uid, record);
    return record;
  }

  find(uid: string): GrantRecord | undefined {
    return this.grants.get(uid);
  }

  async issue(grant: GrantRecord, request: RedemptionRequest): Promise<string> {
    if (this.issueFailure) throw this.issueFailure;
    this.issued.push(request);
    // The client accepts only usable credentials: a real certificate for the subject.
    const client = await issueCertificate(ca, { commonName: request.subject, usage: "client" });
    const secret: Secret = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: request.name },
      type: "kubernetes.io/tls",
      data: { "tls.crt": b64(client.cert), "tls.key": b64(client.key), "ca.crt": b64(ca.cert) },
    };
    const link: Link = {
      apiVersion: API_VERSION,
      kind: "Link",
      metadata: { name: request.name, annotations: { grant: grant.name } },
      spec: { endpoints: [{ name: "inter-router", host: request.host ?? "unknown", port: "55671" }], tlsCredentials: request.name },
    };
    return toYamlDocuments([secret, link]);
  }

  async record(grant: GrantRecord): Promise<void> {
    if (this.recordFailure) throw this.recordFailure;
    // Counting is not atomic on purpose: the server must never overlap redemptions of one grant.
    const made = grant.made;
    if (this.recordDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.recordDelayMs));
    grant.made = made + 1;
    this.recorded++;
  }

  async unrecord(grant: GrantRecord): Promise<void> {
    grant.made = Math.max(0, grant.made - 1);
    this.unrecorded++;
  }
}

function b64(text: string): string {
  return Buffer.from(text).toString("base64");
}

const identity: RedeemerIdentity = { name: "my-token", subject: "east", siteId: "site-east", siteName: "east" };

let ca: Credentials;
let serverCert: Credentials;
let ledger: TestLedger;
let server: GrantServer;
let port = 0;

before(async () => {
  ca = await createCA("grant server CA");
  serverCert = await issueCertificate(ca, { commonName: "skupper-grant-server", hosts: ["127.0.0.1", "localhost"], usage: "server" });
  ledger = new TestLedger();
  server = new GrantServer(ledger);
  await server.configure({ host: "127.0.0.1", port: 0, cert: serverCert.cert, key: serverCert.key });
  port = ((server as unknown as { server: https.Server }).server.address() as AddressInfo).port;
});

after(() => server.close());

beforeEach(() => {
  ledger.grants.clear();
  ledger.issued.length = 0;
  ledger.issueFailure = undefined;
  ledger.recordFailure = undefined;
  ledger.recordDelayMs = 0;
  ledger.recorded = 0;
  ledger.unrecorded = 0;
  logLines.length = 0;
});

function token(uid: string, code = "correct-code", host = "127.0.0.1") {
  return { url: `https://${host}:${port}/${uid}`, code, ca: ca.cert };
}

/** Redeems and expects a RedemptionError; returns it. */
async function refused(promise: Promise<unknown>, reason: RedemptionFailure): Promise<RedemptionError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof RedemptionError, `a RedemptionError, got ${String(err)}`);
    assert.equal(err.reason, reason, err.message);
    assert.equal(err.code, `ERR_REDEMPTION_${reason.toUpperCase()}`);
    return err;
  }
  assert.fail(`expected the redemption to be refused (${reason})`);
}

describe("redemption", () => {
  test("success returns the Secret and Link, counts the redemption and passes the redeemer's identity", async () => {
    const grant = ledger.add({ uid: "g-ok", allowed: 2 });
    const result = await redeemToken(token("g-ok", "correct-code", "localhost"), identity);
    assert.equal(result.secret.kind, "Secret");
    assert.equal(result.secret.metadata.name, "my-token");
    assert.equal(describeCertificate(Buffer.from(result.secret.data?.["tls.crt"] ?? "", "base64").toString()).commonName, "east");
    assert.equal(result.links.length, 1);
    assert.equal(result.links[0]?.spec.endpoints[0]?.host, "localhost", "the ledger saw the host the client used");
    assert.equal(result.links[0]?.spec.endpoints[0]?.port, "55671");
    assert.equal(grant.made, 1);
    assert.equal(ledger.unrecorded, 0);
    assert.deepEqual(ledger.issued, [
      { name: "my-token", subject: "east", siteId: "site-east", siteName: "east", host: "localhost" },
    ]);
    await redeemToken(token("g-ok"), identity);
    assert.equal(grant.made, 2);
    assert.ok(logLines.some((l) => /grant grant-g-ok redeemed by east \(2\/2\)/.test(l)), logLines.join("\n"));
  });

  test("a wrong code is refused without using up the grant", async () => {
    const grant = ledger.add({ uid: "g-code" });
    const err = await refused(redeemToken(token("g-code", "wrong-code"), identity), "refused");
    assert.equal(err.retryable, false);
    assert.match(err.message, /^the issuing site refused the token's code \(Redemption of access token refused\); the token file may have been altered$/);
    assert.equal(grant.made, 0);
    assert.equal(ledger.issued.length, 0, "nothing was issued");
    await redeemToken(token("g-code"), identity);
    assert.equal(grant.made, 1, "the right code still works");
  });

  test("an expired grant is refused as expired, without counting", async () => {
    const expiresAt = Date.now() - 1000;
    const grant = ledger.add({ uid: "g-old", expiresAt });
    const err = await refused(redeemToken(token("g-old"), identity), "expired");
    assert.equal(err.retryable, false);
    assert.equal(err.message, `the token has expired (Access token expired at ${new Date(expiresAt).toISOString()}); ask the issuing site for a new token`);
    assert.equal(grant.made, 0);
  });

  test("a used-up grant is refused as exhausted", async () => {
    const grant = ledger.add({ uid: "g-used", allowed: 1 });
    await redeemToken(token("g-used"), identity);
    const err = await refused(redeemToken(token("g-used"), identity), "exhausted");
    assert.equal(err.retryable, false);
    assert.match(err.message, /^the token has already been used as many times as it allows \(No such access granted: all 1 redemption\(s\) of this token have been used\); ask the issuing site for a new token$/);
    assert.equal(grant.made, 1);
  });

  test("the code is checked before expiry and use count: a wrong code never learns the grant's state", async () => {
    ledger.add({ uid: "g-both", expiresAt: Date.now() - 1000, made: 1, allowed: 1 });
    await refused(redeemToken(token("g-both", "guess"), identity), "refused");
  });

  test("an unknown grant is refused as unknown", async () => {
    const err = await refused(redeemToken(token("no-such-grant"), identity), "unknown");
    assert.equal(err.retryable, false);
    assert.match(err.message, /^the issuing site does not know this token \(No such claim\): its grant was deleted/);
  });

  test("when issuing the credentials fails, nothing is counted and the client gets a retryable error", async () => {
    const grant = ledger.add({ uid: "g-fail", allowed: 1 });
    ledger.issueFailure = new Error("disk on fire");
    const err = await refused(redeemToken(token("g-fail"), identity), "response");
    assert.equal(err.retryable, true);
    assert.equal(err.message, `the grant server at 127.0.0.1:${port} answered 500: Internal error`);
    assert.doesNotMatch(err.message, /disk on fire/, "internal details stay on the server");
    assert.equal(grant.made, 0);
    assert.equal(ledger.recorded, 0);
    assert.ok(logLines.some((l) => /ERROR grant-server: redemption failed: disk on fire/.test(l)), logLines.join("\n"));
    ledger.issueFailure = undefined;
    await redeemToken(token("g-fail"), identity);
    assert.equal(grant.made, 1, "the single redemption is still available afterwards");
  });

  test("when recording the redemption fails, no credentials are sent and nothing is counted", async () => {
    const grant = ledger.add({ uid: "g-norecord" });
    ledger.recordFailure = new Error("read-only file system");
    const err = await refused(redeemToken(token("g-norecord"), identity), "response");
    assert.equal(err.retryable, true);
    assert.equal(err.message, `the grant server at 127.0.0.1:${port} answered 503: Internal error`);
    assert.equal(grant.made, 0);
  });

  test("a refusal thrown by the ledger reaches the client with its reason, message and issuer details", async () => {
    ledger.add({ uid: "g-self" });
    ledger.issueFailure = new Refusal("self", `This token was issued by site "west" itself; a site cannot link to itself`, {
      [Header.issuerSiteId]: "site-west",
      [Header.issuerSiteName]: "west",
    });
    const err = await refused(redeemToken(token("g-self"), identity), "self");
    assert.equal(err.message, `This token was issued by site "west" itself; a site cannot link to itself`);
    assert.deepEqual(err.details, { issuerSiteId: "site-west", issuerSiteName: "west" });
    assert.equal(ledger.grants.get("g-self")?.made, 0);
  });

  test("concurrent redemptions of a 3-use grant: exactly 3 succeed, the rest are exhausted", async () => {
    const grant = ledger.add({ uid: "g-three", allowed: 3 });
    ledger.recordDelayMs = 5; // a racy ledger would over-count if redemptions overlapped
    const attempts = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => redeemToken(token("g-three"), { ...identity, name: `t${i}` })));
    const succeeded = attempts.filter((a) => a.status === "fulfilled");
    const failures = attempts.flatMap((a) => (a.status === "rejected" ? [a.reason as unknown] : []));
    assert.equal(succeeded.length, 3);
    assert.equal(failures.length, 7);
    for (const failure of failures) {
      assert.ok(failure instanceof RedemptionError);
      assert.equal(failure.reason, "exhausted", failure.message);
    }
    assert.equal(grant.made, 3);
    assert.equal(ledger.issued.length, 3, "credentials were issued only for the counted redemptions");
  });
});

describe("client-side failures", () => {
  test("a server whose certificate is not signed by the token's CA is not trusted", async () => {
    const grant = ledger.add({ uid: "g-tls" });
    const other = await createCA("someone else");
    const err = await refused(redeemToken({ ...token("g-tls"), ca: other.cert }, identity), "tls");
    assert.equal(err.retryable, false);
    assert.equal(err.message, `the server at 127.0.0.1:${port} is not the one that issued this token: its certificate is not signed by the token's CA`);
    assert.equal(grant.made, 0);
    assert.equal(ledger.issued.length, 0, "the code never reached the ledger");
  });

  test("a server certificate that does not cover the token's host is refused", async () => {
    const elsewhere = await issueCertificate(ca, { commonName: "skupper-grant-server", hosts: ["other.example"], usage: "server" });
    const other = new GrantServer(ledger);
    await other.configure({ host: "127.0.0.1", port: 0, cert: elsewhere.cert, key: elsewhere.key });
    try {
      const otherPort = ((other as unknown as { server: https.Server }).server.address() as AddressInfo).port;
      const grant = ledger.add({ uid: "g-host" });
      const err = await refused(redeemToken({ ...token("g-host"), url: `https://127.0.0.1:${otherPort}/g-host` }, identity), "tls");
      assert.equal(err.message, `the grant server's certificate does not cover 127.0.0.1:${otherPort}`);
      assert.equal(grant.made, 0);
    } finally {
      await other.close();
    }
  });

  test("nothing listening: a retryable transport error", async () => {
    const probe = new GrantServer(ledger);
    await probe.configure({ host: "127.0.0.1", port: 0, cert: serverCert.cert, key: serverCert.key });
    const freePort = ((probe as unknown as { server: https.Server }).server.address() as AddressInfo).port;
    await probe.close();
    assert.equal(probe.listening, false);
    const err = await refused(redeemToken({ url: `https://127.0.0.1:${freePort}/x`, code: "c", ca: ca.cert }, identity), "transport");
    assert.equal(err.retryable, true);
    assert.match(err.message, /^cannot reach the grant server at 127\.0\.0\.1:\d+: connection refused/);
  });

  test("malformed tokens are rejected before any connection", async () => {
    assert.match((await refused(redeemToken({ url: "not a url", code: "c", ca: ca.cert }, identity), "invalid")).message, /is not a valid URL/);
    assert.match((await refused(redeemToken({ url: `http://127.0.0.1:${port}/x`, code: "c", ca: ca.cert }, identity), "invalid")).message, /must use https \(got http\)/);
    assert.match((await refused(redeemToken({ url: `https://127.0.0.1:${port}/x`, code: "c", ca: "junk" }, identity), "invalid")).message, /CA is not a PEM certificate/);
  });

  test("an oversized request body is refused as invalid", async () => {
    const grant = ledger.add({ uid: "g-big" });
    const err = await refused(redeemToken(token("g-big", "x".repeat(5000)), identity), "invalid");
    assert.equal(err.message, "Request body not valid");
    assert.equal(grant.made, 0);
  });

  test("a response without usable credentials is reported, not half-applied", async () => {
    ledger.add({ uid: "g-empty" });
    const original = ledger.issue.bind(ledger);
    ledger.issue = async () => "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {tls.crt: YQ==}\n";
    try {
      const err = await refused(redeemToken(token("g-empty"), identity), "response");
      assert.match(err.message, /sent credentials that cannot be used: no Link in the response$/);
    } finally {
      ledger.issue = original;
    }
  });

  test("only POST is served", async () => {
    const status = await new Promise<{ code: number; allow: string | undefined }>((resolve, reject) => {
      const request = https.request({ host: "127.0.0.1", port, path: "/x", method: "GET", ca: ca.cert, agent: false }, (response) => {
        response.resume();
        response.on("end", () => resolve({ code: response.statusCode ?? 0, allow: response.headers.allow }));
      });
      request.on("error", reject);
      request.end();
    });
    assert.deepEqual(status, { code: 405, allow: "POST" });
  });
});
