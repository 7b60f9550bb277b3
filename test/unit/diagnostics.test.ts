/**
 * `skupper debug dump`'s building blocks: the ustar writer (read back by the system tar), the
 * redaction rules for resources and text, the needles a site's secrets become, and the last check
 * that refuses to archive anything still holding a secret.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { after, describe, test } from "node:test";
import { createCA, issueCertificate } from "../../src/certs/index.js";
import {
  archive,
  DumpLeakError,
  findLeaks,
  LAST_APPLIED,
  needlesOf,
  redact,
  redactText,
  REDACTED,
  REDACTED_PRIVATE_KEY,
  REDACTED_SECRET,
  secretNeedles,
  secretsIn,
  secretsUnder,
  tar,
} from "../../src/diagnostics/index.js";

const scratch = await fs.mkdtemp(path.join(os.tmpdir(), "skupper-diagnostics-"));
after(() => fs.rm(scratch, { recursive: true, force: true }));

const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
const KEY_PEM = privateKey.export({ format: "pem", type: "pkcs8" }).toString();
const RSA_PEM = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "pem", type: "pkcs1" }).toString();
const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");

async function extract(archiveBytes: Buffer, name: string): Promise<string> {
  const file = path.join(scratch, `${name}.tar.gz`);
  await fs.writeFile(file, archiveBytes);
  const dir = path.join(scratch, name);
  await fs.mkdir(dir);
  execFileSync("tar", ["-xzf", file, "-C", dir]);
  return dir;
}

describe("tar (ustar)", () => {
  test("the system tar lists and extracts what was written: files, directories, long and non-ASCII paths", async () => {
    const longDir = `d/${"a".repeat(120)}`; // fits the prefix field
    const longName = `d/${"b".repeat(150)}.yaml`; // a component longer than 100 bytes: PAX header
    const files: Array<[string, string]> = [
      ["top/versions.yaml", "cli: 0.1.0\n"],
      ["top/empty.txt", ""],
      [`top/${longDir}/file.txt`, "in a deep directory\n"],
      [`top/${longName}`, "long name\n"],
      ["top/ünïcödé/名前.txt", "utf-8\n"],
      ["top/exactly-512.bin", "x".repeat(512)],
    ];
    const bytes = gzipSync(
      tar([{ path: "top" }, ...files.map(([p, text]) => ({ path: p, data: Buffer.from(text), mtime: 1_700_000_000 }))]),
    );
    const file = path.join(scratch, "round-trip.tar.gz");
    await fs.writeFile(file, bytes);
    const listed = execFileSync("tar", ["-tzf", file], { encoding: "utf8" }).split("\n").filter(Boolean);
    for (const [p] of files) assert.ok(listed.includes(p), `${p} is listed: ${listed.join(", ")}`);
    assert.ok(listed.includes("top/"), "the directory is listed");
    const dir = await extract(bytes, "round-trip");
    for (const [p, text] of files) {
      assert.equal(await fs.readFile(path.join(dir, p), "utf8"), text, p);
      const stat = await fs.stat(path.join(dir, p));
      assert.equal(stat.mode & 0o777, 0o600, `${p} has mode 0600`);
      assert.equal(Math.floor(stat.mtimeMs / 1000), 1_700_000_000, `${p} keeps its mtime`);
    }
  });

  test("paths that would escape the archive are refused", () => {
    for (const bad of ["/etc/passwd", "../x", "a/../../x", "", "a/./b"]) {
      assert.throws(() => tar([{ path: bad, data: Buffer.from("x") }]), /not a relative archive path/, bad);
    }
  });
});

describe("redact (resources and structured data)", () => {
  test("Secret: every data and stringData value becomes its size; keys and type stay; certificates keep subject, issuer, expiry", async () => {
    const ca = await createCA("test site CA");
    const leaf = await issueCertificate(ca, { commonName: "east", usage: "client" });
    const secret = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "link-west", annotations: { "skupper.io/access-token": "west-abc" } },
      type: "kubernetes.io/tls",
      data: { "tls.crt": b64(leaf.cert), "tls.key": b64(leaf.key), "ca.crt": b64(ca.cert), password: b64("hunter22") },
      stringData: { extra: "plain secret text" },
    };
    const out = redact(secret) as typeof secret;
    assert.deepEqual(Object.keys(out.data), ["tls.crt", "tls.key", "ca.crt", "password"]);
    assert.equal(out.type, "kubernetes.io/tls");
    assert.equal(out.data["tls.key"], `<redacted: ${Buffer.byteLength(leaf.key)} bytes>`);
    assert.equal(out.data.password, "<redacted: 8 bytes>");
    assert.equal(out.stringData.extra, "<redacted: 17 bytes>");
    assert.match(out.data["tls.crt"], /^<redacted: \d+ bytes; certificate subject "CN=east", issuer "CN=test site CA", expires \d{4}-\d\d-\d\dT/);
    assert.match(out.data["ca.crt"], /subject "CN=test site CA"/);
    assert.equal(out.metadata.annotations["skupper.io/access-token"], "west-abc", "annotation keys name things: kept");
    assert.equal(secret.data.password, b64("hunter22"), "the input is not changed");
    const text = JSON.stringify(out);
    for (const value of [leaf.key, b64(leaf.key), leaf.cert, b64(leaf.cert), "plain secret text"]) assert.ok(!text.includes(value.trim()));
  });

  test("codes: AccessGrant spec.code and status.code, AccessToken spec.code; the rest of the resource is kept", () => {
    const grant = redact({
      apiVersion: "skupper.io/v2alpha1",
      kind: "AccessGrant",
      metadata: { name: "g" },
      spec: { code: "chosen-code-1", redemptionsAllowed: 1 },
      status: { code: "9foY5NTJ9jNZ3E04xvtLAvou", url: "https://h:1/x", status: "Ready" },
    }) as { spec: Record<string, unknown>; status: Record<string, unknown> };
    assert.equal(grant.spec.code, REDACTED);
    assert.equal(grant.spec.redemptionsAllowed, 1);
    assert.equal(grant.status.code, REDACTED);
    assert.equal(grant.status.url, "https://h:1/x");
    assert.equal(grant.status.status, "Ready");
    const token = redact({ kind: "AccessToken", metadata: { name: "t" }, spec: { url: "https://h:1/x", code: "abcdefgh12345678", ca: "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n" } }) as {
      spec: Record<string, unknown>;
    };
    assert.equal(token.spec.code, REDACTED);
    assert.match(String(token.spec.ca), /BEGIN CERTIFICATE/, "a public certificate is kept");
  });

  test("token-like keys anywhere, PEM private keys in any string, the last-applied annotation", () => {
    const out = redact({
      kind: "Listener",
      metadata: { name: "l", labels: { token: "a-label-value" }, annotations: { [LAST_APPLIED]: '{"spec":{"code":"x"}}', password: "ann" } },
      spec: { routingKey: "backend", host: "h", settings: { Password: "p4ssw0rd!", "api-key": "k", note: `here: ${KEY_PEM}` } },
      status: { nested: [{ token: "t0ken-value" }, { credentials: { user: "u", pass: "p" } }] },
    }) as Record<string, any>;
    assert.equal(out.spec.routingKey, "backend", "routingKey is not a key");
    assert.equal(out.spec.settings.Password, REDACTED, "case does not matter");
    assert.equal(out.spec.settings["api-key"], REDACTED);
    assert.equal(out.spec.settings.note, `here: ${REDACTED_PRIVATE_KEY}\n`);
    assert.equal(out.status.nested[0].token, REDACTED);
    assert.deepEqual(out.status.nested[1].credentials, { user: REDACTED, pass: REDACTED });
    assert.equal(out.metadata.labels.token, "a-label-value");
    assert.equal(out.metadata.annotations.password, "ann");
    assert.equal(out.metadata.annotations[LAST_APPLIED], REDACTED);
  });

  test("secretsIn finds what redact removes", () => {
    const found = secretsIn({
      kind: "Secret",
      metadata: { name: "s" },
      data: { "tls.key": b64(KEY_PEM) },
      stringData: { other: "string-data-secret" },
    }).map((s) => s.value);
    assert.ok(found.includes(b64(KEY_PEM)));
    assert.ok(found.includes("string-data-secret"));
    assert.ok(secretsIn({ kind: "AccessGrant", status: { code: "grant-code-123" } }).some((s) => s.value === "grant-code-123"));
    assert.ok(secretsIn({ kind: "AccessToken", spec: { code: "token-code-123" } }).some((s) => s.value === "token-code-123"));
    assert.ok(secretsIn(`text around ${RSA_PEM} and more`).some((s) => s.value.includes("BEGIN RSA PRIVATE KEY")));
  });
});

describe("redactText and the last check", () => {
  test("private keys of every PEM type, terminated or not; bearer credentials; tokens in URLs", () => {
    const { text } = redactText(
      [
        "start",
        KEY_PEM,
        RSA_PEM,
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIabc\n-----END ENCRYPTED PRIVATE KEY-----",
        "Authorization: Bearer abcdefghijklmnop",
        "GET /?token=s3cr3t-value&x=1",
        "end",
        "-----BEGIN EC PRIVATE KEY-----\ncut off by the log's end",
      ].join("\n"),
    );
    assert.doesNotMatch(text, /PRIVATE KEY-----/);
    assert.equal(text.split(REDACTED_PRIVATE_KEY).length - 1, 4);
    assert.match(text, /^start\n/);
    assert.match(text, /Bearer <redacted>/);
    assert.match(text, /\?token=<redacted>&x=1/);
    assert.match(text, /\nend\n/);
  });

  test("a known secret is found as itself, as base64, decoded from base64, and by a line of a key's body", () => {
    const code = "9foY5NTJ9jNZ3E04xvtLAvou";
    const needles = needlesOf([
      { value: code, base64Value: false },
      { value: b64(KEY_PEM), base64Value: true },
    ]);
    const keyLine = KEY_PEM.split("\n")[1] as string;
    for (const leaked of [code, b64(code), b64(KEY_PEM), KEY_PEM.replace(/-----[A-Z ]+-----/g, "").trim(), `partial: ${keyLine}`]) {
      const { text, found } = redactText(`before ${leaked} after`, needles);
      assert.ok(found > 0, `found in: ${leaked.slice(0, 40)}`);
      assert.ok(!text.includes(code) && !text.includes(keyLine), "replaced");
      assert.match(text, new RegExp(`${REDACTED_SECRET.replace(/[<>:]/g, ".")}|${REDACTED_PRIVATE_KEY.replace(/[<>:]/g, ".")}`));
    }
    assert.deepEqual(secretNeedles("short"), [], "values under 8 characters would match ordinary text");
  });

  test("archive refuses, and makes nothing, when a file still holds a key or a known secret", () => {
    const files = [
      { path: "ok.txt", text: "nothing here" },
      { path: "logs/site.log", text: `oops ${KEY_PEM}` },
      { path: "x.yaml", text: "code: 9foY5NTJ9jNZ3E04xvtLAvou" },
    ];
    const leaks = findLeaks(files, ["9foY5NTJ9jNZ3E04xvtLAvou"]);
    assert.deepEqual(
      leaks.map((l) => l.file),
      ["logs/site.log", "x.yaml"],
    );
    assert.ok(leaks.every((l) => !l.what.includes("9foY")), "a leak report never repeats the secret");
    assert.throws(() => archive("top", files, ["9foY5NTJ9jNZ3E04xvtLAvou"]), DumpLeakError);
    const bytes = archive("top", [files[0] as { path: string; text: string }], ["9foY5NTJ9jNZ3E04xvtLAvou"]);
    assert.ok(bytes.length > 0);
  });

  test("secretsUnder reads a namespace directory's keys, Secret data, codes and the observer credential", async () => {
    const root = path.join(scratch, "ns");
    await fs.mkdir(path.join(root, "runtime", "certs", "x"), { recursive: true });
    await fs.mkdir(path.join(root, "input", "resources"), { recursive: true });
    await fs.mkdir(path.join(root, "runtime", "logs"), { recursive: true });
    await fs.writeFile(path.join(root, "runtime", "certs", "x", "tls.key"), KEY_PEM);
    await fs.writeFile(path.join(root, "runtime", "observer-credential"), "observer-credential-value\n");
    await fs.writeFile(
      path.join(root, "input", "resources", "Secret-s.yaml"),
      `apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  password: ${b64("secret-password")}\n`,
    );
    await fs.writeFile(path.join(root, "input", "resources", "AccessToken-t.yaml"), "apiVersion: skupper.io/v2alpha1\nkind: AccessToken\nmetadata:\n  name: t\nspec:\n  url: https://x\n  code: the-token-code\n");
    await fs.writeFile(path.join(root, "runtime", "logs", "site.log"), "code: logged-not-a-secret-source\n");
    const needles = needlesOf(await secretsUnder(root, [path.join(root, "runtime", "logs")]));
    for (const secret of [KEY_PEM.trim(), "observer-credential-value", b64("secret-password"), "secret-password", "the-token-code"]) {
      assert.ok(needles.includes(secret), `${secret.slice(0, 30)} is known`);
    }
    assert.ok(!needles.includes("logged-not-a-secret-source"), "logs are what is checked, not a source of secrets");
  });
});
