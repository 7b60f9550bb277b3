/**
 * A CA of the user's signs a site's links (Site spec.defaultIssuer naming a Secret with the CA's
 * tls.crt and tls.key), as the original allows: until the Secret is there and usable the site
 * says why; then the link port's certificate, redeemed links and `link generate` bundles are all
 * the user's CA's, and revoke-access refuses, since skupper cannot replace that CA. The CA is an
 * RSA one made by openssl, as a company CA would be.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promises as fs } from "node:fs";
import tls from "node:tls";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import { parseDocuments } from "../../src/api/index.js";
import { isIssuedBy } from "../../src/certs/index.js";
import { eventually, freePort, ok, parseTable, Sandbox, skupper } from "../helpers/cli.js";

const run = promisify(execFile);

describe("a site whose links a CA of the user's signs", () => {
  let sandbox: Sandbox;
  let home: string;
  let linkPort: number;
  let caCert: string;
  let caKey: string;

  before(async () => {
    sandbox = await Sandbox.create("user-ca");
    home = sandbox.home();
    const [keyFile, certFile] = [sandbox.file("corp-ca.key"), sandbox.file("corp-ca.crt")];
    await run("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", keyFile, "-out", certFile, "-days", "30", "-subj", "/CN=Corp Root CA",
      "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
    [caCert, caKey] = [await fs.readFile(certFile, "utf8"), await fs.readFile(keyFile, "utf8")];
    linkPort = await freePort();
    await ok(["-n", "east", "site", "create", "east"], { home });
  });

  after(() => sandbox.cleanup());

  async function apply(namespace: string, name: string, yaml: string): Promise<void> {
    const file = sandbox.file(`${namespace}-${name}.yaml`);
    await fs.writeFile(file, yaml, { mode: 0o600 });
    await ok(["-n", namespace, "apply", "-f", file], { home });
  }

  function secretYaml(name: string, cert: string, key: string): string {
    const indent = (pem: string) => pem.trim().split("\n").map((line) => `    ${line}`).join("\n");
    return `apiVersion: v1\nkind: Secret\nmetadata:\n  name: ${name}\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: |\n${indent(cert)}\n  tls.key: |\n${indent(key)}\n`;
  }

  async function siteMessage(): Promise<{ status: string; message: string }> {
    const json = JSON.parse(await ok(["-n", "west", "site", "status", "-o", "json"], { home })) as { status?: { status?: string; message?: string } };
    return { status: json.status?.status ?? "", message: json.status?.message ?? "" };
  }

  /** The certificate the site's link port presents. */
  function linkPortCertificate(): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ host: "127.0.0.1", port: linkPort, rejectUnauthorized: false, ALPNProtocols: ["skupper-link/1"] }, () => {
        const der = socket.getPeerX509Certificate()?.toString();
        socket.destroy();
        if (der) resolve(der);
        else reject(new Error("no certificate"));
      });
      socket.once("error", reject);
    });
  }

  test("until its Secret exists the site says which it needs; then the link port's certificate is the CA's", async () => {
    await apply("west", "site", `apiVersion: skupper.io/v2alpha1
kind: Site
metadata:
  name: west
spec:
  linkAccess: default
  defaultIssuer: corp-ca
  settings:
    link-port: "${linkPort}"
    grant-server-port: "${await freePort()}"
    advertised-hosts: "127.0.0.1"
`);
    const missing = await eventually("west to say its issuer Secret is missing", async () => {
      const site = await siteMessage();
      return /the issuer Secret "corp-ca" \(spec.defaultIssuer\) is not found/.test(site.message) ? site : undefined;
    });
    assert.notEqual(missing.status, "Ready");

    // A certificate that is no CA is refused with the reason.
    const leaf = await run("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", sandbox.file("leaf.key"), "-out", sandbox.file("leaf.crt"), "-days", "1", "-subj", "/CN=not-a-ca",
      "-addext", "basicConstraints=critical,CA:FALSE"]);
    assert.equal(leaf.stderr.includes("error"), false);
    await apply("west", "bad-secret", secretYaml("corp-ca", await fs.readFile(sandbox.file("leaf.crt"), "utf8"), await fs.readFile(sandbox.file("leaf.key"), "utf8")));
    await eventually("west to say the Secret holds no CA", async () => /tls\.crt is not a CA certificate/.test((await siteMessage()).message));

    await apply("west", "secret", secretYaml("corp-ca", caCert, caKey));
    await eventually("west to be Ready", async () => (await siteMessage()).status === "Ready");
    const json = JSON.parse(await ok(["-n", "west", "site", "status", "-o", "json"], { home })) as { status: { defaultIssuer?: string } };
    assert.equal(json.status.defaultIssuer, "corp-ca");
    const served = await eventually("the link port to present a certificate of the user's CA", async () => {
      const pem = await linkPortCertificate().catch(() => undefined);
      return pem && isIssuedBy(pem, caCert) ? pem : undefined;
    });
    assert.ok(served);
  });

  test("a token redeemed, and a link generated, link east with certificates of the user's CA", async () => {
    const token = sandbox.file("west-token.yaml");
    await ok(["-n", "west", "token", "issue", token], { home });
    await ok(["-n", "east", "token", "redeem", token], { home });
    const redeemed = await eventually("the redeemed link to be Ready", async () => parseTable(await ok(["-n", "east", "link", "status"], { home })).find((r) => r.STATUS === "Ready"));

    const generated = parseDocuments(await ok(["-n", "west", "link", "generate", "--name", "generated"], { home }), "link generate");
    const secret = generated.resources.find((r) => r.kind === "Secret");
    assert.ok(secret?.kind === "Secret");
    assert.ok(isIssuedBy(Buffer.from(secret.data?.["tls.crt"] ?? "", "base64").toString(), caCert), "link generate's client certificate is the user CA's");
    // A third site links with the generated bundle (east has proven itself with a certificate
    // naming it, so it may not also use one that names no site: docs/decisions.md).
    await ok(["-n", "north", "site", "create", "north"], { home });
    await apply("north", "generated", await ok(["-n", "west", "link", "generate", "--name", "generated"], { home }));
    await eventually("north's generated link to be Ready", async () => parseTable(await ok(["-n", "north", "link", "status"], { home })).find((r) => r.NAME === "generated" && r.STATUS === "Ready"));
    assert.ok(redeemed.NAME);
  });

  test("revoke-access refuses: skupper cannot replace a CA it was given", async () => {
    const result = await skupper(["-n", "west", "revoke-access"], { home });
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /signs its links with the CA in Secret "corp-ca" \(spec\.defaultIssuer\), which skupper does not replace/);
    for (const site of ["east", "north"]) {
      const rows = parseTable(await ok(["-n", site, "link", "status"], { home }));
      assert.ok(rows.length === 1 && rows.every((r) => r.STATUS === "Ready"), `${site}'s link stays up`);
    }
  });
});
