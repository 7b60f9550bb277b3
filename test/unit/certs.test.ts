/**
 * Certificates (src/certs): CAs, leaves with DNS and IP SANs, issuer checks, usages, expiry, and
 * the on-disk bundles (key mode 0600, existing material reused while it is still right).
 */
import "reflect-metadata";
import assert from "node:assert/strict";
import { createPrivateKey, createPublicKey, X509Certificate } from "node:crypto";
import { execFile } from "node:child_process";
import { promises as fs } from "node:fs";
import { promisify } from "node:util";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import * as x509 from "@peculiar/x509";
import {
  canonicalHost,
  createCA,
  describeCertificate,
  ensureCA,
  ensureLeaf,
  isCertificate,
  isCurrent,
  isIssuedBy,
  issueCertificate,
  issuerProblem,
  loadCredentials,
  RENEW_BEFORE_MS,
  saveCredentials,
  uniqueHosts,
  type Credentials,
} from "../../src/certs/index.js";

const execFileAsync = promisify(execFile);

const DAY = 86_400_000;
const SERVER_AUTH = "1.3.6.1.5.5.7.3.1";
const CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";

let ca: Credentials;
let otherCa: Credentials;

before(async () => {
  [ca, otherCa] = await Promise.all([createCA("test site CA"), createCA("test site CA")]);
});

function keyUsage(pem: string): number | undefined {
  return new x509.X509Certificate(pem).getExtension(x509.KeyUsagesExtension)?.usages;
}

describe("certificates", () => {
  test("a CA is self-signed, marked CA, may sign certificates, and carries its common name", () => {
    const info = describeCertificate(ca.cert);
    assert.equal(info.commonName, "test site CA");
    assert.equal(info.isCA, true);
    assert.equal(ca.ca, ca.cert);
    assert.ok(isIssuedBy(ca.cert, ca.cert));
    const usages = keyUsage(ca.cert) ?? 0;
    assert.ok(usages & x509.KeyUsageFlags.keyCertSign, "keyCertSign");
    assert.ok(usages & x509.KeyUsageFlags.cRLSign, "cRLSign");
    assert.match(ca.key, /^-----BEGIN PRIVATE KEY-----/);
    assert.ok(info.notAfter.getTime() - Date.now() > 4 * 365 * DAY, "valid for years");
  });

  test("two CAs with the same name have distinct keys and serial numbers", () => {
    assert.notEqual(describeCertificate(ca.cert).serialNumber, describeCertificate(otherCa.cert).serialNumber);
    assert.notEqual(ca.key, otherCa.key);
    assert.equal(isIssuedBy(ca.cert, otherCa.cert), false);
  });

  test("a server leaf has DNS and IP SANs, serverAuth only, and is not a CA", async () => {
    const leaf = await issueCertificate(ca, { commonName: "skupper-router", hosts: ["west.example", "10.1.2.3", "::1", "West.Example"], usage: "server" });
    const info = describeCertificate(leaf.cert);
    assert.equal(info.commonName, "skupper-router");
    assert.equal(info.isCA, false);
    assert.deepEqual(uniqueHosts(info.hosts).sort(), ["10.1.2.3", "::1", "west.example"], "duplicates (by case) removed");
    const node = new X509Certificate(leaf.cert);
    assert.match(node.subjectAltName ?? "", /DNS:west\.example/);
    assert.match(node.subjectAltName ?? "", /IP Address:10\.1\.2\.3/);
    assert.equal(node.checkHost("west.example"), "west.example");
    assert.equal(node.checkIP("10.1.2.3"), "10.1.2.3");
    assert.equal(node.checkIP("::1"), "::1");
    assert.equal(node.checkHost("10.1.2.3"), undefined, "the IP is not also a DNS name");
    assert.equal(node.checkHost("east.example"), undefined);
    assert.deepEqual(node.keyUsage, [SERVER_AUTH]); // Node's keyUsage lists the extended key usages
    assert.equal(keyUsage(leaf.cert), x509.KeyUsageFlags.digitalSignature);
    assert.equal(leaf.ca, ca.cert);
    assert.ok(isIssuedBy(leaf.cert, ca.cert));
  });

  test("a client leaf has clientAuth only and no SANs when no hosts are given", async () => {
    const leaf = await issueCertificate(ca, { commonName: "east", usage: "client" });
    const node = new X509Certificate(leaf.cert);
    assert.deepEqual(node.keyUsage, [CLIENT_AUTH]);
    assert.equal(node.subjectAltName, undefined);
    assert.deepEqual(describeCertificate(leaf.cert).hosts, []);
    assert.equal(node.ca, false);
  });

  test("the leaf's private key matches its certificate", async () => {
    const leaf = await issueCertificate(ca, { commonName: "k", usage: "client" });
    const fromKey = createPublicKey(createPrivateKey(leaf.key)).export({ type: "spki", format: "der" });
    const fromCert = new X509Certificate(leaf.cert).publicKey.export({ type: "spki", format: "der" });
    assert.ok(fromKey.equals(fromCert));
  });

  test("isIssuedBy: true for the issuing CA, false for another CA with the same name, for a leaf as issuer, and for junk", async () => {
    const leaf = await issueCertificate(ca, { commonName: "x", usage: "server", hosts: ["localhost"] });
    assert.equal(isIssuedBy(leaf.cert, ca.cert), true);
    assert.equal(isIssuedBy(leaf.cert, otherCa.cert), false);
    const other = await issueCertificate(otherCa, { commonName: "x", usage: "server" });
    assert.equal(isIssuedBy(other.cert, ca.cert), false);
    assert.equal(isIssuedBy(leaf.cert, other.cert), false);
    assert.equal(isIssuedBy("not a certificate", ca.cert), false);
    assert.equal(isIssuedBy(leaf.cert, "not a certificate"), false);
  });

  test("validity: explicit periods, expiry and the renewal margin", async () => {
    const expired = await issueCertificate(ca, { commonName: "old", usage: "client", notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() - DAY) });
    assert.equal(isCurrent(expired.cert), false);
    const future = await issueCertificate(ca, { commonName: "future", usage: "client", notBefore: new Date(Date.now() + DAY), notAfter: new Date(Date.now() + 10 * DAY) });
    assert.equal(isCurrent(future.cert), false, "not valid yet");
    const short = await issueCertificate(ca, { commonName: "short", usage: "client", validityDays: 10 });
    const info = describeCertificate(short.cert);
    assert.ok(Math.abs(info.notAfter.getTime() - (Date.now() + 10 * DAY)) < 60_000, "10 days of validity");
    assert.ok(info.notBefore.getTime() < Date.now(), "back-dated for clock skew");
    assert.equal(isCurrent(short.cert), true);
    assert.equal(isCurrent(short.cert, 9 * DAY), true);
    assert.equal(isCurrent(short.cert, 11 * DAY), false);
    assert.equal(isCurrent(short.cert, 0, Date.now() + 11 * DAY), false, "checked at a later time");
  });

  test("isCertificate and canonical hosts", () => {
    assert.equal(isCertificate(ca.cert), true);
    assert.equal(isCertificate("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), false);
    assert.equal(canonicalHost("[FE80:0:0:0:0:0:0:1]"), "fe80::1");
    assert.equal(canonicalHost(" Host.Example "), "host.example");
    assert.deepEqual(uniqueHosts(["a", " A ", "", "[::1]", "0:0:0:0:0:0:0:1", "b"]), ["a", "::1", "b"]);
  });
});

describe("bundles on disk", () => {
  let root: string;
  before(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), "skupper-certs-"));
  });
  after(() => fs.rm(root, { recursive: true, force: true }));

  async function modeOf(file: string): Promise<number> {
    return (await fs.stat(file)).mode & 0o777;
  }

  test("ensureCA creates a CA with files readable only by the owner, then reuses it", async () => {
    const dir = path.join(root, "ca");
    const first = await ensureCA(dir, "site-a CA");
    assert.equal(first.created, true);
    assert.equal(describeCertificate(first.credentials.cert).commonName, "site-a CA");
    for (const name of ["tls.key", "tls.crt", "ca.crt"]) assert.equal(await modeOf(path.join(dir, name)), 0o600, name);
    assert.equal(await modeOf(dir), 0o700);
    assert.deepEqual(await loadCredentials(dir), first.credentials);
    const second = await ensureCA(dir, "another name");
    assert.equal(second.created, false, "an existing CA is never replaced");
    assert.deepEqual(second.credentials, first.credentials);
  });

  test("ensureCA re-creates a CA whose files are incomplete", async () => {
    const dir = path.join(root, "ca-partial");
    const first = await ensureCA(dir, "c");
    await fs.rm(path.join(dir, "tls.key"));
    const second = await ensureCA(dir, "c");
    assert.equal(second.created, true);
    assert.notEqual(second.credentials.cert, first.credentials.cert);
  });

  test("ensureLeaf issues once, writes the key with mode 0600, and reuses a matching leaf", async () => {
    const dir = path.join(root, "leaf");
    const request = { commonName: "skupper-router", hosts: ["west.example", "10.0.0.1", "::1"], usage: "server" as const };
    const first = await ensureLeaf(dir, ca, request);
    assert.equal(first.issued, true);
    assert.ok(isIssuedBy(first.credentials.cert, ca.cert));
    assert.equal(await modeOf(path.join(dir, "tls.key")), 0o600);
    assert.equal(await fs.readFile(path.join(dir, "tls.key"), "utf8"), first.credentials.key);
    // Same hosts in another order, case and IPv6 spelling: still the same leaf.
    const again = await ensureLeaf(dir, ca, { ...request, hosts: ["0:0:0:0:0:0:0:1", "10.0.0.1", "WEST.example"] });
    assert.equal(again.issued, false);
    assert.deepEqual(again.credentials, first.credentials);
  });

  test("ensureLeaf re-issues for other hosts, another name, another CA, or too little validity", async () => {
    const dir = path.join(root, "leaf-changes");
    const request = { commonName: "grant-server", hosts: ["a.example"], usage: "server" as const };
    const base = await ensureLeaf(dir, ca, request);
    assert.equal(base.issued, true);

    const moreHosts = await ensureLeaf(dir, ca, { ...request, hosts: ["a.example", "b.example"] });
    assert.equal(moreHosts.issued, true);
    assert.deepEqual(describeCertificate(moreHosts.credentials.cert).hosts.sort(), ["a.example", "b.example"]);

    const renamed = await ensureLeaf(dir, ca, { ...request, commonName: "other", hosts: ["a.example", "b.example"] });
    assert.equal(renamed.issued, true);
    assert.equal(describeCertificate(renamed.credentials.cert).commonName, "other");

    const newCa = await ensureLeaf(dir, otherCa, { ...request, commonName: "other", hosts: ["a.example", "b.example"] });
    assert.equal(newCa.issued, true);
    assert.ok(isIssuedBy(newCa.credentials.cert, otherCa.cert));
    assert.equal((await loadCredentials(dir))?.ca, otherCa.cert, "the bundle's ca.crt follows the issuer");

    // A leaf with less than RENEW_BEFORE_MS left is renewed.
    const days = Math.floor(RENEW_BEFORE_MS / DAY) - 1;
    const shortDir = path.join(root, "leaf-short");
    await saveCredentials(shortDir, await issueCertificate(ca, { ...request, validityDays: days }));
    const renewed = await ensureLeaf(shortDir, ca, request);
    assert.equal(renewed.issued, true);
    assert.ok(describeCertificate(renewed.credentials.cert).notAfter.getTime() > Date.now() + RENEW_BEFORE_MS);
  });

  test("ensureLeaf replaces unreadable material instead of failing", async () => {
    const dir = path.join(root, "leaf-junk");
    await fs.mkdir(dir, { recursive: true });
    for (const name of ["ca.crt", "tls.crt", "tls.key"]) await fs.writeFile(path.join(dir, name), "junk");
    const result = await ensureLeaf(dir, ca, { commonName: "j", usage: "client" });
    assert.equal(result.issued, true);
    assert.ok(isCertificate(await fs.readFile(path.join(dir, "tls.crt"), "utf8")));
    assert.equal(await modeOf(path.join(dir, "tls.key")), 0o600, "the key rewritten over a 0644 file is 0600");
  });
});

describe("CAs a user gives a site (spec.defaultIssuer)", () => {
  let dir: string;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "skupper-user-ca-"));
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));

  /** A CA made by openssl, as a company's would be: `newkey` is e.g. rsa:2048 or ec with a curve. */
  async function opensslCa(name: string, newkey: string[], ca = true): Promise<{ cert: string; key: string }> {
    const [keyFile, certFile] = [path.join(dir, `${name}.key`), path.join(dir, `${name}.crt`)];
    await execFileAsync("openssl", ["req", "-x509", ...newkey, "-nodes", "-keyout", keyFile, "-out", certFile, "-days", "2", "-subj", `/CN=${name}`,
      "-addext", `basicConstraints=critical,CA:${ca ? "TRUE" : "FALSE"}`]);
    return { cert: await fs.readFile(certFile, "utf8"), key: await fs.readFile(keyFile, "utf8") };
  }

  test("RSA and P-384 CAs sign our leaves; the leaves verify against them", async () => {
    for (const [name, newkey] of [["rsa-ca", ["-newkey", "rsa:2048"]], ["p384-ca", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp384r1"]]] as const) {
      const ca = await opensslCa(name, [...newkey]);
      assert.equal(issuerProblem(ca), undefined, name);
      const leaf = await issueCertificate({ ca: ca.cert, ...ca }, { commonName: "link", usage: "client" });
      assert.ok(isIssuedBy(leaf.cert, ca.cert), `${name} signed the leaf`);
      assert.equal(leaf.ca, ca.cert);
    }
  });

  test("what cannot serve as an issuer is named: no CA, a key of another certificate, garbage", async () => {
    const ours = await createCA("ours");
    assert.equal(issuerProblem(ours), undefined);
    const notCa = await opensslCa("not-a-ca", ["-newkey", "rsa:2048"], false);
    assert.match(issuerProblem(notCa) ?? "", /tls\.crt is not a CA certificate/);
    assert.match(issuerProblem({ cert: ours.cert, key: notCa.key }) ?? "", /tls\.key is not the private key of the certificate in tls\.crt/);
    assert.match(issuerProblem({ cert: "nonsense", key: ours.key }) ?? "", /tls\.crt does not hold a valid PEM certificate/);
    assert.match(issuerProblem({ cert: ours.cert, key: "nonsense" }) ?? "", /tls\.key does not hold a valid PEM private key/);
  });
});
