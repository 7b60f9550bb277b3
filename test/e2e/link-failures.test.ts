/**
 * A link that cannot connect says why: DNS, connection refused, a server whose certificate is
 * not from the expected CA, and an expired client certificate. Links come from
 * `skupper link generate`, edited the way a mistaken or stale file would be. A link refused for
 * what it is (to the site itself) is an Error, as an expired certificate is.
 */
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import { after, before, describe, test } from "node:test";
import { parseAllDocuments, stringify } from "yaml";
import { createCA, issueCertificate } from "../../src/certs/index.js";
import { eventually, freePort, Sandbox } from "../helpers/cli.js";
import { LoopbackNetwork } from "../helpers/network.js";

interface GeneratedLink {
  link: { metadata: { name: string }; spec: { endpoints: Array<{ host: string; port: string }>; tlsCredentials: string } };
  secret: { metadata: { name: string }; data: Record<string, string> };
}

describe("a link that cannot connect says why", () => {
  let sandbox: Sandbox;
  let network: LoopbackNetwork;
  let westPort: string;

  before(async () => {
    sandbox = await Sandbox.create("link-failures");
    network = new LoopbackNetwork(sandbox, sandbox.home());
    await network.createSite("west", { linkAccess: true });
    await network.createSite("other", { linkAccess: true });
    await network.createSite("east");
    westPort = (await generate("west")).link.spec.endpoints[0]?.port as string;
  });

  after(() => sandbox.cleanup());

  async function generate(site: string): Promise<GeneratedLink> {
    const docs = parseAllDocuments(await network.run(site, ["link", "generate"])).map((d) => d.toJSON());
    return { link: docs.find((d) => d.kind === "Link"), secret: docs.find((d) => d.kind === "Secret") };
  }

  /** Applies `generated` on `site` (east) under `name` and waits for its link to report a failure. */
  async function applyAndWait(name: string, generated: GeneratedLink, pattern: RegExp, site = "east"): Promise<Record<string, string>> {
    generated.link.metadata.name = name;
    generated.link.spec.tlsCredentials = name;
    generated.secret.metadata.name = name;
    const file = sandbox.file(`${name}.yaml`);
    await fs.writeFile(file, `${stringify(generated.link)}---\n${stringify(generated.secret)}`);
    await network.run(site, ["apply", "-f", file]);
    const row = await eventually(`link ${name} to report ${pattern}`, async () =>
      (await network.linkRows(site)).find((r) => r.NAME === name && pattern.test(r.MESSAGE ?? "")),
    );
    assert.notEqual(row.STATUS, "Ready");
    return row;
  }

  test("DNS: a host that does not resolve", async () => {
    const generated = await generate("west");
    for (const e of generated.link.spec.endpoints) e.host = "no-such-host.invalid";
    await applyAndWait("dns", generated, /cannot resolve host "no-such-host\.invalid"/);
  });

  test("refused: nothing listens on the endpoint", async () => {
    const generated = await generate("west");
    const port = String(await freePort());
    for (const e of generated.link.spec.endpoints) Object.assign(e, { host: "127.0.0.1", port });
    await applyAndWait("refused", generated, new RegExp(`connection refused by 127\\.0\\.0\\.1:${port}`));
  });

  test("TLS: the endpoint is a different site than the one whose CA the link trusts (unknown CA)", async () => {
    const generated = await generate("other");
    for (const e of generated.link.spec.endpoints) Object.assign(e, { host: "127.0.0.1", port: westPort });
    await applyAndWait("wrong-site", generated, /unknown CA/);
  });

  test("an expired client certificate is reported as such, as an Error", async () => {
    const generated = await generate("west");
    for (const e of generated.link.spec.endpoints) e.host = "127.0.0.1";
    const ca = await createCA("expired test CA");
    const old = await issueCertificate(ca, {
      commonName: "east",
      usage: "client",
      notBefore: new Date(Date.now() - 10 * 86_400_000),
      notAfter: new Date(Date.now() - 86_400_000),
    });
    generated.secret.data["tls.crt"] = Buffer.from(old.cert).toString("base64");
    generated.secret.data["tls.key"] = Buffer.from(old.key).toString("base64");
    const row = await applyAndWait("expired", generated, /certificate expired/);
    assert.equal(row.STATUS, "Error", "an expired certificate will not fix itself");
    assert.match(row.MESSAGE ?? "", /redeem a new token/);
  });

  test("a link from a site to itself is an Error that says so, not a Pending retried forever", async () => {
    const generated = await generate("west");
    for (const e of generated.link.spec.endpoints) e.host = "127.0.0.1";
    const row = await applyAndWait("self", generated, /cannot link to itself/, "west");
    assert.equal(row.STATUS, "Error", "retrying cannot make a link to the site itself work");
  });
});
