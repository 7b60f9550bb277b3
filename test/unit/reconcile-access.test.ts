/**
 * The AccessGrant and AccessToken reconcilers of the SiteController, and the requests that need
 * the site's keys (generateLink, revokeAccess): grants get a URL, CA, code and count that
 * survive restarts; tokens are redeemed once (against a real grant server on 127.0.0.1) and
 * never again, also across restarts; failures are shown and healed by the retry.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { parseDocuments, type AccessToken, type Link, type Secret } from "../../src/api/index.js";
import { isIssuedBy } from "../../src/certs/index.js";
import { SkupperError } from "../../src/common/errors.js";
import { Annotation, GRANT_CA, issueLinkBundle, SITE_CA } from "../../src/controller/index.js";
import { GrantServer, type GrantRecord } from "../../src/grants/index.js";
import { freePort } from "../helpers/cli.js";
import {
  assertFailureShown,
  condition,
  grant,
  GRANT_PORT,
  harness,
  HOST,
  LINK_PORT,
  linkAccessSite,
  site,
  statusWriteCounts,
  token,
  withSite,
  type Harness,
} from "../helpers/controller-harness.js";
import { createAuthorities, IssuingLedger, startGrantServer, type Authorities } from "../helpers/grant-fixtures.js";

const EAST_ID = "22222222-2222-4222-8222-222222222222";

function secretPem(secret: Secret, key: string): string {
  return Buffer.from(secret.data?.[key] ?? "", "base64").toString("utf8");
}

describe("AccessGrant", () => {
  test("create with link access: url, ca, code, count and expiry; Ready; the grant server knows it", async (t) => {
    const h = await withSite(t, linkAccessSite("west"));
    await h.resources.create(grant("g1"));
    const status = await h.untilStatus("AccessGrant", "g1", "Ready");
    const stored = await h.get("AccessGrant", "g1");
    const uid = stored?.metadata.uid ?? "";
    assert.equal(status.url, `https://${HOST}:${GRANT_PORT}/${uid}`);
    assert.equal(status.ca, h.host.credentials.saved.get(GRANT_CA)?.cert);
    assert.match(status.code ?? "", /^[A-Za-z0-9]{24}$/);
    assert.equal(status.redemptions, 0);
    const expiry = Math.ceil((Date.parse(stored?.metadata.creationTimestamp ?? "") + 15 * 60_000) / 1000) * 1000;
    assert.equal(status.expirationTime, new Date(expiry).toISOString(), "the window from creation, rounded up to a whole second");
    assert.equal(status.observedGeneration, 1);
    assert.deepEqual(status.conditions?.map((c) => `${c.type}=${c.status}`), ["Processed=True", "Resolved=True", "Ready=True"]);
    const record = h.ledger?.find(uid);
    assert.equal(record?.code, status.code);
    assert.equal(record?.allowed, 1);
  });

  test("without link access it is Pending with its code and no URL; link access turned on gives it one", async (t) => {
    const h = await withSite(t);
    await h.resources.create(grant("g1", { code: "my-own-code" }));
    const pending = await h.untilStatus("AccessGrant", "g1", "Pending");
    assert.equal(pending.message, "Link access is not enabled for this site");
    assert.equal(pending.code, "my-own-code");
    assert.equal(pending.url, undefined);
    assert.equal(pending.ca, undefined);
    await h.resources.update(linkAccessSite("west"));
    const ready = await h.untilStatus("AccessGrant", "g1", "Ready");
    assert.match(ready.url ?? "", new RegExp(`^https://127\\.0\\.0\\.1:${GRANT_PORT}/`));
    assert.equal(ready.code, "my-own-code");
    assert.equal(ready.observedGeneration, 1, "the Site changed, not the grant");
  });

  test("update: generation and observedGeneration advance; code and URL stay; labels alone write nothing", async (t) => {
    const h = await withSite(t, linkAccessSite("west"));
    await h.resources.create(grant("g1"));
    const first = await h.untilStatus("AccessGrant", "g1", "Ready");
    assert.equal((await h.resources.update(grant("g1", { redemptionsAllowed: 3 }))).metadata.generation, 2);
    const updated = await h.untilStatus("AccessGrant", "g1", "Ready", (s) => s.observedGeneration === 2);
    assert.equal(updated.code, first.code);
    assert.equal(updated.url, first.url);
    assert.equal(h.ledger?.find((await h.get("AccessGrant", "g1"))?.metadata.uid ?? "")?.allowed, 3);

    const mark = h.resources.log.length;
    const labelled = grant("g1", { redemptionsAllowed: 3 });
    labelled.metadata.labels = { owner: "ops" };
    assert.equal((await h.resources.update(labelled)).metadata.generation, 2);
    await h.settled();
    assert.deepEqual(statusWriteCounts(h, mark), {});
  });

  test("delete: finalized, and the grant server no longer knows it", async (t) => {
    const h = await withSite(t, linkAccessSite("west"));
    await h.resources.create(grant("g1"));
    await h.untilStatus("AccessGrant", "g1", "Ready");
    const uid = (await h.get("AccessGrant", "g1"))?.metadata.uid ?? "";
    assert.ok(h.ledger?.find(uid));
    await h.resources.delete("AccessGrant", "g1");
    await h.until("AccessGrant g1 to be finalized", async () => (await h.get("AccessGrant", "g1")) === undefined);
    assert.equal(h.ledger?.find(uid), undefined);
  });

  test("a grant status write that fails is shown with the retry time, then the grant is Ready", async (t) => {
    const h = await withSite(t, linkAccessSite("west"));
    h.resources.failNext("updateStatus", { kind: "AccessGrant", name: "g1" });
    await h.resources.create(grant("g1"));
    const status = await h.untilStatus("AccessGrant", "g1", "Ready");
    assertFailureShown(h, "AccessGrant", "g1", /^reconciling AccessGrant\/g1 failed: injected failure: updateStatus AccessGrant\/g1; retrying in 1 s$/);
    assert.ok(status.url);
  });

  test("a redemption counts, issues credentials from the site CA, and uses the grant up", async (t) => {
    const h = await withSite(t, linkAccessSite("west"));
    await h.resources.create(grant("g1"));
    await h.untilStatus("AccessGrant", "g1", "Ready");
    const record = h.ledger?.find((await h.get("AccessGrant", "g1"))?.metadata.uid ?? "") as GrantRecord;
    const body = await h.ledger!.issue(record, { name: "to-west", subject: "east", siteId: EAST_ID, siteName: "east" });
    const { resources } = parseDocuments(body, "response");
    const secret = resources.find((r): r is Secret => r.kind === "Secret");
    assert.ok(secret);
    assert.ok(isIssuedBy(secretPem(secret, "tls.crt"), h.host.credentials.saved.get(SITE_CA)?.cert ?? ""));
    const issuedLink = resources.find((r): r is Link => r.kind === "Link");
    assert.deepEqual(issuedLink?.spec.endpoints.map((e) => `${e.host}:${e.port}`), [`${HOST}:${LINK_PORT}`]);

    await h.ledger!.record(record);
    const used = await h.untilStatus("AccessGrant", "g1", "Error");
    assert.equal(used.redemptions, 1);
    assert.equal(used.message, "All 1 redemption(s) have been used");
    assert.equal(condition(used, "Processed")?.reason, "Error");
  });

  test("an expired grant turns Error when it expires, with no event", async (t) => {
    const h = await withSite(t, linkAccessSite("west"));
    await h.resources.create(grant("short", { expirationWindow: "1s" }));
    await h.untilStatus("AccessGrant", "short", "Ready");
    const expired = await h.untilStatus("AccessGrant", "short", "Error", () => true, 4000);
    assert.match(expired.message ?? "", /^Expired at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/, "a whole second, as the CLI shows it");
    assert.equal(expired.expirationTime, /^Expired at (.*)$/.exec(expired.message ?? "")?.[1]);
  });

  test("the grant server refuses a token from the whole second its status shows as the expiry, not later", async (t) => {
    const h = await withSite(t, linkAccessSite("west"));
    await h.resources.create(grant("edge", { expirationWindow: "1s" }));
    const status = await h.untilStatus("AccessGrant", "edge", "Ready");
    const shown = Date.parse(status.expirationTime ?? "");
    assert.equal(shown % 1000, 0, "the expiry is a whole second");
    const record = h.ledger?.find((await h.get("AccessGrant", "edge"))?.metadata.uid ?? "");
    assert.equal(record?.expiresAt, shown, "the grant server enforces the instant the status shows");
  });

  test("a restart keeps each grant's uid, code and count, and rewrites no status", async (t) => {
    const h = await withSite(t, linkAccessSite("west"));
    await h.resources.create(grant("g1", { redemptionsAllowed: 2 }));
    await h.resources.create(grant("g2"));
    await h.untilStatus("AccessGrant", "g2", "Ready");
    const uid = (await h.get("AccessGrant", "g1"))?.metadata.uid ?? "";
    await h.ledger!.record(h.ledger!.find(uid) as GrantRecord);
    const counted = await h.untilStatus("AccessGrant", "g1", "Ready", (s) => s.redemptions === 1);
    const stored = await h.resources.list("AccessGrant");

    const oldLedger = h.ledger;
    await h.stop();
    const mark = h.resources.log.length;
    await h.start();
    await h.settled();
    assert.notEqual(h.ledger, oldLedger);
    const record = h.ledger?.find(uid);
    assert.equal(record?.code, counted.code);
    assert.equal(record?.made, 1);
    assert.equal(record?.allowed, 2);
    assert.deepEqual(statusWriteCounts(h, mark), {});
    assert.deepEqual(await h.resources.list("AccessGrant"), stored);
  });
});

describe("AccessToken", () => {
  let authorities: Authorities;
  let ledger: IssuingLedger;
  let server: GrantServer;
  let port = 0;
  let grants = 0;

  before(async () => {
    authorities = await createAuthorities();
    ledger = new IssuingLedger(authorities.siteCa);
    ({ server, port } = await startGrantServer(ledger, authorities));
  });
  after(() => server.close());

  /** A token for a fresh grant of the fixture grant server. */
  function newToken(name: string, options: { code?: string } = {}): { token: AccessToken; uid: string } {
    const uid = `grant-${++grants}`;
    ledger.add({ uid });
    return { token: token(name, { url: `https://127.0.0.1:${port}/${uid}`, code: options.code ?? "correct-code", ca: authorities.grantCa.cert }), uid };
  }

  const issuedFor = (name: string) => ledger.issued.filter((r) => r.name === name).length;

  test("create: redeemed once; its Secret and Link are written, annotated, and configured on the router", async (t) => {
    const h = await withSite(t);
    const { token: t1, uid } = newToken("to-west");
    await h.resources.create(t1);
    const status = await h.untilStatus("AccessToken", "to-west", "Ready");
    assert.equal(status.redeemed, true);
    assert.equal(condition(status, "Redeemed")?.status, "True");
    assert.equal(condition(status, "Ready"), undefined, "AccessToken has no Ready condition");
    assert.equal(status.observedGeneration, 1);
    assert.equal(issuedFor("to-west"), 1);
    assert.equal(ledger.grants.get(uid)?.made, 1);
    const secret = await h.get("Secret", "to-west");
    const created = await h.get("Link", "to-west");
    assert.equal(secret?.metadata.annotations?.[Annotation.accessToken], "to-west");
    assert.equal(created?.metadata.annotations?.[Annotation.accessToken], "to-west");
    assert.equal(created?.metadata.annotations?.[Annotation.remoteSiteId], "site-west");
    assert.equal(h.host.state.redemptions.size, 0, "nothing is left pending");
    await h.untilStatus("Link", "to-west", "Pending");
    assert.deepEqual(h.router.outgoingLinkConfigs.map((c) => c.name), ["to-west"]);
  });

  test("update: generation and observedGeneration advance, and a redeemed token is not redeemed again", async (t) => {
    const h = await withSite(t);
    const { token: t1 } = newToken("upd");
    await h.resources.create(t1);
    await h.untilStatus("AccessToken", "upd", "Ready");
    const changed = structuredClone(t1);
    changed.spec.linkCost = 7;
    assert.equal((await h.resources.update(changed)).metadata.generation, 2);
    const status = await h.untilStatus("AccessToken", "upd", "Ready", (s) => s.observedGeneration === 2);
    assert.equal(status.redeemed, true);
    assert.equal(issuedFor("upd"), 1);
  });

  test("delete: finalized; the Link it created stays", async (t) => {
    const h = await withSite(t);
    const { token: t1 } = newToken("del");
    await h.resources.create(t1);
    await h.untilStatus("AccessToken", "del", "Ready");
    await h.resources.delete("AccessToken", "del");
    await h.until("AccessToken del to be finalized", async () => (await h.get("AccessToken", "del")) === undefined);
    assert.ok(await h.get("Link", "del"));
    assert.deepEqual(h.router.outgoingLinkConfigs.map((c) => c.name), ["del"]);
  });

  test("a token status write that fails is shown with the retry time; the token is redeemed once all the same", async (t) => {
    const h = await withSite(t);
    const { token: t1 } = newToken("flaky");
    h.resources.failNext("updateStatus", { kind: "AccessToken", name: "flaky" });
    await h.resources.create(t1);
    await h.untilStatus("AccessToken", "flaky", "Ready");
    assertFailureShown(h, "AccessToken", "flaky", /^reconciling AccessToken\/flaky failed: injected failure: updateStatus AccessToken\/flaky; retrying in 1 s$/);
    assert.equal(issuedFor("flaky"), 1);
  });

  test("a refused token is Error for good and writes nothing", async (t) => {
    const h = await withSite(t);
    const { token: t1 } = newToken("wrong", { code: "not-the-code" });
    await h.resources.create(t1);
    const status = await h.untilStatus("AccessToken", "wrong", "Error");
    assert.match(status.message ?? "", /^the issuing site refused the token's code/);
    assert.equal(status.redeemed, false);
    assert.equal(await h.get("Link", "wrong"), undefined);
    assert.equal(await h.get("Secret", "wrong"), undefined);
  });

  test("without a site it waits; the Site arriving redeems it", async (t) => {
    const h = harness(t);
    await h.start();
    const { token: t1 } = newToken("later");
    await h.resources.create(t1);
    const waiting = await h.untilStatus("AccessToken", "later", "Pending");
    assert.equal(waiting.message, "No active site in this namespace");
    assert.equal(issuedFor("later"), 0);
    await h.settled();
    const looks = h.processed.filter((k) => k === "AccessToken/later").length;
    assert.ok(looks >= 1 && looks <= 3, `a token waiting for a site is not reconciled over and over (${looks} times)`);
    await h.resources.create(site("east"));
    await h.untilStatus("AccessToken", "later", "Ready");
    assert.equal(issuedFor("later"), 1);
  });

  test("a restart redeems nothing again, writes journaled credentials, and rewrites no status", async (t) => {
    const h = await withSite(t, site("east"));
    const { token: done } = newToken("done");
    await h.resources.create(done);
    await h.untilStatus("AccessToken", "done", "Ready");
    // A token whose Links were written but whose status was not (the site stopped in between).
    const { token: written } = newToken("written");
    const { token: journaled } = newToken("journaled");
    await h.stop();

    const bundle = async (name: string) => {
      const { link, secret } = await issueLinkBundle(authorities.siteCa, { name, subject: "east", host: HOST, port: LINK_PORT, siteId: "site-west", siteName: "west" });
      for (const resource of [link, secret]) resource.metadata.annotations = { ...resource.metadata.annotations, [Annotation.accessToken]: name };
      return { link, secret };
    };
    const w = await bundle("written");
    await h.resources.create(written);
    await h.resources.create(w.secret);
    await h.resources.create(w.link);
    const j = await bundle("journaled");
    await h.resources.create(journaled);
    h.host.state.redemptions.set("journaled", { secret: j.secret, links: [j.link] });

    const mark = h.resources.log.length;
    await h.start();
    await h.untilStatus("AccessToken", "written", "Ready");
    await h.untilStatus("AccessToken", "journaled", "Ready");
    await h.until("the journaled redemption to be dropped", () => h.host.state.redemptions.size === 0);
    assert.equal(issuedFor("done"), 1);
    assert.equal(issuedFor("written"), 0);
    assert.equal(issuedFor("journaled"), 0);
    assert.equal(secretPem((await h.get("Secret", "journaled")) as Secret, "tls.crt"), secretPem(j.secret, "tls.crt"));
    assert.ok(await h.get("Link", "journaled"));
    assert.equal((await h.status("AccessToken", "written"))?.redeemed, true);
    // Only what is new gets a status: the two tokens finished now and the two Links they brought
    // (the journaled one may show Pending while its credentials are being written).
    const { "AccessToken/journaled": journaledWrites, ...counts } = statusWriteCounts(h, mark);
    assert.deepEqual(counts, { "AccessToken/written": 1, "Link/journaled": 1, "Link/written": 1 });
    assert.ok(journaledWrites === 1 || journaledWrites === 2, `${journaledWrites} status writes for the journaled token`);
    assert.deepEqual(h.writesOf("AccessToken", "journaled").map((w) => w.status?.status).slice(-1), ["Ready"]);
    assert.deepEqual(h.writesOf("AccessToken", "journaled").map((w) => w.status?.status).slice(0, -1).filter((s) => s !== "Pending"), []);
  });
});

describe("a grant redeemed by another site, end to end", () => {
  test("west's grant server counts the redemption; east's Link comes from west's CA; both keep it across restarts", async (t) => {
    const grantPort = await freePort();
    const west = harness(t, { siteId: "33333333-3333-4333-8333-333333333333", realGrantServer: true });
    await west.resources.create(linkAccessSite("west", { "grant-server-port": String(grantPort) }));
    await west.resources.create(grant("for-east"));
    await west.start();
    const offer = await west.untilStatus("AccessGrant", "for-east", "Ready");

    const east: Harness = harness(t, { siteId: EAST_ID });
    await east.resources.create(site("east"));
    await east.start();
    await east.resources.create(token("to-west", { url: offer.url ?? "", code: offer.code ?? "", ca: offer.ca ?? "" }));
    await east.untilStatus("AccessToken", "to-west", "Ready");
    const secret = (await east.get("Secret", "to-west")) as Secret;
    assert.ok(isIssuedBy(secretPem(secret, "tls.crt"), west.host.credentials.saved.get(SITE_CA)?.cert ?? ""));
    assert.equal((await east.get("Link", "to-west"))?.spec.endpoints[0]?.port, String(LINK_PORT));
    const used = await west.untilStatus("AccessGrant", "for-east", "Error");
    assert.equal(used.redemptions, 1);

    await west.restart();
    await east.restart();
    const uid = (await west.get("AccessGrant", "for-east"))?.metadata.uid ?? "";
    assert.equal(west.ledger?.find(uid)?.made, 1);
    assert.equal(west.ledger?.find(uid)?.code, offer.code);
    assert.equal((await west.status("AccessGrant", "for-east"))?.redemptions, 1);
    assert.equal((await east.status("AccessToken", "to-west"))?.redeemed, true);
    assert.equal((await west.status("AccessGrant", "for-east"))?.status, "Error", "east did not redeem it again (it would have been refused)");
    assert.deepEqual(east.writesOf("AccessToken", "to-west").filter((w) => w.status?.status === "Error"), []);
  });
});

describe("requests: generateLink and revokeAccess", () => {
  test("generateLink: a Link to this site and a Secret whose certificate the site CA issued", async (t) => {
    const h = await withSite(t, linkAccessSite("west"));
    const { link, secret } = await h.controller!.generateLink({});
    assert.equal(link.metadata.name, "link-west");
    assert.equal(link.spec.tlsCredentials, "link-west");
    assert.equal(secret.metadata.name, "link-west");
    assert.deepEqual(link.spec.endpoints, [{ name: "inter-router", host: HOST, port: String(LINK_PORT), group: "skupper-router" }]);
    assert.equal(link.spec.cost, 1);
    assert.equal(link.metadata.annotations?.[Annotation.remoteSiteId], h.host.state.siteId);
    assert.equal(link.metadata.annotations?.[Annotation.remoteSiteName], "west");
    const siteCa = h.host.credentials.saved.get(SITE_CA)?.cert ?? "";
    assert.ok(isIssuedBy(secretPem(secret, "tls.crt"), siteCa));
    assert.equal(secretPem(secret, "ca.crt"), siteCa);

    const named = await h.controller!.generateLink({ name: "to-west", host: "west.example.com", cost: 4, tlsCredentials: "west-creds" });
    assert.equal(named.link.metadata.name, "to-west");
    assert.equal(named.secret.metadata.name, "west-creds");
    assert.equal(named.link.spec.endpoints[0]?.host, "west.example.com");
    assert.equal(named.link.spec.cost, 4);
  });

  test("generateLink refuses clearly without a site, without link access, and with link access not set up", async (t) => {
    const h = harness(t);
    await h.start();
    await assert.rejects(h.controller!.generateLink({}), (err: unknown) => err instanceof SkupperError && err.code === "ERR_NO_SITE" && /There is no site in namespace "default"/.test(err.message));
    await h.resources.create(site("west"));
    await h.untilStatus("Site", "west", "Ready");
    await assert.rejects(h.controller!.generateLink({}), (err: unknown) => err instanceof SkupperError && err.code === "ERR_LINK_ACCESS" && /link access is not enabled/.test(err.message));
    await h.resources.update(linkAccessSite("west", { "grant-server-port": String(LINK_PORT) }));
    await h.untilStatus("Site", "west", "Error");
    await assert.rejects(h.controller!.generateLink({}), (err: unknown) => err instanceof SkupperError && err.code === "ERR_SITE_NOT_READY");
  });

  test("revokeAccess: a new site CA, every grant deleted, the link server closed then opened with the new CA", async (t) => {
    const h = await withSite(t, linkAccessSite("west"));
    await h.resources.create(grant("g1"));
    await h.resources.create(grant("g2"));
    await h.untilStatus("AccessGrant", "g2", "Ready");
    const oldCa = h.host.credentials.saved.get(SITE_CA)?.cert ?? "";
    const grantCa = h.host.credentials.saved.get(GRANT_CA)?.cert;
    const uids = (await h.resources.list("AccessGrant")).map((g) => g.metadata.uid ?? "");
    const router = h.router;
    const linkServerCalls: Array<number | undefined> = [];
    const setLinkServer = router.setLinkServer.bind(router);
    router.setLinkServer = (config) => {
      linkServerCalls.push(config?.port);
      return setLinkServer(config);
    };
    const grantConfigs = h.grantServer.configs.length;

    await h.controller!.revokeAccess();
    await h.settled();
    const newCa = h.host.credentials.saved.get(SITE_CA)?.cert ?? "";
    assert.ok(newCa);
    assert.notEqual(newCa, oldCa);
    assert.deepEqual(await h.resources.list("AccessGrant"), []);
    for (const uid of uids) assert.equal(h.ledger?.find(uid), undefined);
    assert.deepEqual(linkServerCalls, [undefined, LINK_PORT]);
    assert.equal(h.router, router, "the router keeps running: outgoing links are kept");
    assert.equal(router.linkServerConfig?.credentials.ca, newCa);
    assert.ok(isIssuedBy(router.linkServerConfig?.credentials.cert ?? "", newCa));
    assert.equal(h.grantServer.configs.length, grantConfigs + 1);
    assert.equal(h.host.credentials.saved.get(GRANT_CA)?.cert, grantCa, "the grant server CA is kept");
    await h.untilStatus("Site", "west", "Ready");
    const { secret } = await h.controller!.generateLink({});
    assert.ok(isIssuedBy(secretPem(secret, "tls.crt"), newCa));
    assert.equal(isIssuedBy(secretPem(secret, "tls.crt"), oldCa), false);
  });

  test("revokeAccess without a site is refused", async (t) => {
    const h = harness(t);
    await h.start();
    await assert.rejects(h.controller!.revokeAccess(), (err: unknown) => err instanceof SkupperError && err.code === "ERR_NO_SITE");
  });
});
