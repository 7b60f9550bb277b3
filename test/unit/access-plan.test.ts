/** The access plan's reading of a RouterAccess `issuer` (src/controller/access.ts). */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { RouterAccess, Site } from "../../src/api/index.js";
import { planAccess } from "../../src/controller/access.js";

const site = (defaultIssuer?: string): Site =>
  ({ apiVersion: "skupper.io/v2alpha1", kind: "Site", metadata: { name: "west" }, spec: { linkAccess: "default", ...(defaultIssuer ? { defaultIssuer } : {}) } }) as Site;
const access = (issuer?: string): RouterAccess =>
  ({
    apiVersion: "skupper.io/v2alpha1",
    kind: "RouterAccess",
    metadata: { name: "custom" },
    spec: { roles: [{ name: "inter-router", port: 55671 }], tlsCredentials: "skupper-site-server", ...(issuer ? { issuer } : {}) },
  }) as RouterAccess;

test("a RouterAccess issuer is the site's CA, or the CA the Site names; another one is a problem that says what to set", () => {
  assert.deepEqual(planAccess(site(), [access()]).problems, []);
  assert.deepEqual(planAccess(site(), [access("skupper-site-ca")]).problems, [], "the original's own RouterAccess names skupper-site-ca");
  assert.deepEqual(planAccess(site("corp-ca"), [access("corp-ca")]).problems, []);
  assert.deepEqual(planAccess(site("corp-ca"), [access("skupper-site-ca")]).problems, [], "skupper-site-ca stands for the site's CA, whichever it is");
  const [problem] = planAccess(site(), [access("other-ca")]).problems;
  assert.match(problem ?? "", /RouterAccess "custom" names issuer "other-ca", but one CA signs all of this site's link certificates, "skupper-site-ca": set the Site's spec.defaultIssuer to "other-ca" instead/);
});
