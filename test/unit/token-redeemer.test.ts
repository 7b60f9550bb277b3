/**
 * Redemption on the connecting side is durable and in the right order (TokenRedeemer against a
 * real grant server over HTTPS on 127.0.0.1, with an in-memory site): a failed write of the
 * credentials is retried with the same credentials and never redeems again; a token whose Links
 * are in input is not redeemed again after a restart; the redeemed status is written right after
 * the Links; and a resource of the token's name that the token did not create is never replaced.
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import { API_VERSION, type AccessToken, type Link, type Resource, type Secret } from "../../src/api/index.js";
import { setLogSink } from "../../src/common/log.js";
import { Annotation, conflictWith, CredentialConflictError, TokenRedeemer, type TokenDeps } from "../../src/controller/tokens.js";
import type { GrantServer, RedeemedCredentials } from "../../src/grants/index.js";
import { eventually } from "../helpers/cli.js";
import { createAuthorities, IssuingLedger, startGrantServer, type Authorities } from "../helpers/grant-fixtures.js";

setLogSink(() => undefined);

/** The site as the redeemer sees it: input in memory, writes that can be made to fail. */
class FakeSite implements TokenDeps {
  readonly input = new Map<string, Resource>();
  /** Credentials journaled by save, until dropped. */
  readonly journal = new Map<string, RedeemedCredentials>();
  saveFailuresLeft = 0;
  saves = 0;
  readonly persisted: string[] = [];
  readonly messages: string[] = [];
  redeemer: TokenRedeemer | undefined;

  context: () => { siteId: string; siteName: string } | undefined = () => ({ siteId: "site-east", siteName: "east" });
  nameConflict(name: string, token: string): string | undefined {
    for (const kind of ["Link", "Secret"] as const) {
      const conflict = conflictWith(kind, name, this.input.get(`${kind}/${name}`), token);
      if (conflict) return conflict;
    }
    return undefined;
  }
  linksCreatedBy(token: string): string[] {
    return [...this.input.values()].filter((r) => r.kind === "Link" && r.metadata.annotations?.[Annotation.accessToken] === token).map((r) => r.metadata.name);
  }
  async save(token: AccessToken, credentials: RedeemedCredentials): Promise<void> {
    this.saves++;
    this.journal.set(token.metadata.name, credentials);
    if (this.saveFailuresLeft > 0) {
      this.saveFailuresLeft--;
      throw new Error("EROFS: read-only file system, open 'input/resources/Secret-west-token.yaml'");
    }
    for (const resource of [credentials.secret, ...credentials.links]) {
      const conflict = conflictWith(resource.kind, resource.metadata.name, this.input.get(`${resource.kind}/${resource.metadata.name}`), token.metadata.name);
      if (conflict) throw new CredentialConflictError(conflict);
    }
    for (const resource of [credentials.secret, ...credentials.links]) this.input.set(`${resource.kind}/${resource.metadata.name}`, resource);
  }
  pendingCredentials(token: string): RedeemedCredentials | undefined {
    return this.journal.get(token);
  }
  async dropPendingCredentials(token: string): Promise<void> {
    this.journal.delete(token);
  }
  async persistStatus(name: string): Promise<void> {
    this.persisted.push(name);
  }
  changed(): void {
    const message = this.redeemer?.status("west-token")?.message;
    if (message) this.messages.push(message);
  }
}

let authorities: Authorities;
let ledger: IssuingLedger;
let server: GrantServer;
let port = 0;
const redeemers: TokenRedeemer[] = [];

before(async () => {
  authorities = await createAuthorities();
  ledger = new IssuingLedger(authorities.siteCa);
  ({ server, port } = await startGrantServer(ledger, authorities));
});

after(async () => {
  for (const redeemer of redeemers) redeemer.stop();
  await server.close();
});

beforeEach(() => {
  ledger.grants.clear();
  ledger.issued.length = 0;
  ledger.recorded = 0;
  ledger.unrecorded = 0;
  ledger.beforeIssue = undefined;
});

function accessToken(uid: string): AccessToken {
  return {
    apiVersion: API_VERSION,
    kind: "AccessToken",
    metadata: { name: "west-token" },
    spec: { url: `https://127.0.0.1:${port}/${uid}`, code: "correct-code", ca: authorities.grantCa.cert, linkCost: 3 },
  };
}

function redeemerFor(site: FakeSite): TokenRedeemer {
  const redeemer = new TokenRedeemer(site, { retry: { initialMs: 20, maxMs: 100 } });
  site.redeemer = redeemer;
  redeemers.push(redeemer);
  return redeemer;
}

describe("durable redemption", () => {
  test("a failed write of the credentials is retried with the same credentials, never with a second redemption", async () => {
    const grant = ledger.add({ uid: "g-save", allowed: 5 });
    const site = new FakeSite();
    site.saveFailuresLeft = 2;
    const redeemer = redeemerFor(site);
    redeemer.upsert(accessToken("g-save"));

    await eventually("the token to be redeemed", () => redeemer.status("west-token")?.redeemed === true, 10_000, 10);
    assert.equal(site.saves, 3, "two failed writes, then one that worked");
    assert.equal(ledger.issued.length, 1, "the grant server was asked once");
    assert.equal(grant.made, 1, "one redemption used");
    assert.ok(
      site.messages.some((m) => /^the link credentials were received but could not be saved \(EROFS: read-only file system.*\); retrying in \d+ s$/.test(m)),
      site.messages.join("\n"),
    );
    assert.equal(redeemer.status("west-token")?.status, "Ready");
    assert.deepEqual(site.persisted, ["west-token"], "the redeemed status was written right after the credentials");
    await eventually("the journaled copy to be dropped once the status is written", () => site.journal.size === 0, 3000, 10);

    const link = site.input.get("Link/west-token") as Link;
    const secret = site.input.get("Secret/west-token") as Secret;
    assert.equal(link.spec.tlsCredentials, "west-token");
    assert.equal(link.spec.cost, 3, "the token's link cost applies");
    assert.equal(link.metadata.annotations?.[Annotation.accessToken], "west-token");
    assert.equal(secret.metadata.annotations?.[Annotation.accessToken], "west-token");
  });

  test("after a restart, a token whose Links are in input is not redeemed again, even without a status", async () => {
    const grant = ledger.add({ uid: "g-restart", allowed: 1 });
    const site = new FakeSite();
    const first = redeemerFor(site);
    first.upsert(accessToken("g-restart"));
    await eventually("the token to be redeemed", () => first.status("west-token")?.redeemed === true, 10_000, 10);
    first.stop();

    // The site stopped after writing the Links and before writing the token's status.
    const restarted = redeemerFor(site);
    restarted.upsert(accessToken("g-restart"));
    assert.equal(restarted.status("west-token")?.redeemed, true);
    assert.equal(restarted.status("west-token")?.status, "Ready");
    assert.equal(ledger.issued.length, 1, "no second request to the grant server");
    assert.equal(grant.made, 1);
    await eventually("the status to be written", () => site.persisted.length === 2, 3000, 10);
  });

  test("after a restart, credentials journaled but not all written are written, without a redemption", async () => {
    const grant = ledger.add({ uid: "g-journal", allowed: 1 });
    const site = new FakeSite();
    const first = redeemerFor(site);
    first.upsert(accessToken("g-journal"));
    await eventually("the token to be redeemed", () => first.status("west-token")?.redeemed === true, 10_000, 10);
    first.stop();

    // As if the site had stopped after journaling and writing the Secret, before the Link.
    const secret = site.input.get("Secret/west-token") as Secret;
    const links = [site.input.get("Link/west-token") as Link];
    site.input.delete("Link/west-token");
    site.journal.set("west-token", { secret, links });
    const savesBefore = site.saves;

    const restarted = redeemerFor(site);
    restarted.upsert(accessToken("g-journal"));
    await eventually("the journaled credentials to be written", () => restarted.status("west-token")?.redeemed === true, 10_000, 10);
    assert.deepEqual(site.input.get("Link/west-token"), links[0], "the Link is back, as it was received");
    assert.equal(site.saves, savesBefore + 1);
    assert.equal(ledger.issued.length, 1, "no second request to the grant server");
    assert.equal(grant.made, 1);
    await eventually("the journal to be emptied", () => site.journal.size === 0, 3000, 10);
  });
});

describe("waiting for a site", () => {
  test("a token applied before the site is redeemed once the site is active", async () => {
    const grant = ledger.add({ uid: "g-later" });
    const site = new FakeSite();
    let active = false;
    site.context = () => (active ? { siteId: "site-east", siteName: "east" } : undefined);
    const redeemer = redeemerFor(site);
    redeemer.upsert(accessToken("g-later"));
    assert.equal(redeemer.status("west-token")?.message, "No active site in this namespace");
    active = true;
    redeemer.upsert(accessToken("g-later"));
    await eventually("the token to be redeemed", () => redeemer.status("west-token")?.redeemed === true, 10_000, 10);
    assert.equal(grant.made, 1);
  });
});

describe("resources the token did not create", () => {
  function existingLink(name: string): Link {
    return {
      apiVersion: API_VERSION,
      kind: "Link",
      metadata: { name },
      spec: { endpoints: [{ name: "inter-router", host: "198.51.100.7", port: "55671" }], tlsCredentials: name },
    };
  }

  test("a Link of the token's name made by the user stops the redemption before it is spent", async () => {
    const grant = ledger.add({ uid: "g-taken" });
    const site = new FakeSite();
    const mine = existingLink("west-token");
    site.input.set("Link/west-token", mine);
    const redeemer = redeemerFor(site);
    redeemer.upsert(accessToken("g-taken"));
    assert.equal(redeemer.status("west-token")?.status, "Error");
    assert.equal(redeemer.status("west-token")?.message, `A Link named "west-token" already exists in this namespace; rename the token (metadata.name) or delete that Link`);
    assert.equal(grant.made, 0);
    assert.equal(site.input.get("Link/west-token"), mine);
  });

  test("a Link of the token's name that appears during the redemption is not replaced", async () => {
    ledger.add({ uid: "g-race" });
    const site = new FakeSite();
    const mine = existingLink("west-token");
    ledger.beforeIssue = async () => {
      site.input.set("Link/west-token", mine);
    };
    const redeemer = redeemerFor(site);
    redeemer.upsert(accessToken("g-race"));
    await eventually("the token to fail", () => redeemer.status("west-token")?.status === "Error", 10_000, 10);
    assert.match(redeemer.status("west-token")?.message ?? "", /^A Link named "west-token" already exists in this namespace/);
    assert.equal(site.input.get("Link/west-token"), mine, "the user's Link is untouched");
    assert.equal(site.input.get("Secret/west-token"), undefined, "nothing was written");
    assert.equal(redeemer.status("west-token")?.redeemed, false);
  });
});
