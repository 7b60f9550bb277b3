/**
 * Certificate resources on a real site: a self-signed CA, a server certificate it signs (used
 * by a TLS listener that a real client verifies against that CA), renewal when the spec
 * changes, a Secret skupper did not make left alone with a status that says so, and the
 * Secret removed with its Certificate.
 */
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import tls from "node:tls";
import { after, before, describe, test } from "node:test";
import { describeCertificate, isIssuedBy } from "../../src/certs/index.js";
import { eventually, freePort, ok, Sandbox, skupper } from "../helpers/cli.js";
import { serve, type Backend } from "../helpers/network.js";

interface Got {
  status?: { status?: string; message?: string };
  data?: Record<string, string>;
  metadata?: { annotations?: Record<string, string> };
}

describe("Certificate resources", () => {
  let sandbox: Sandbox;
  let home: string;
  let echo: Backend;

  before(async () => {
    sandbox = await Sandbox.create("certificates");
    home = sandbox.home();
    await ok(["-n", "west", "site", "create", "west"], { home });
    echo = await serve((socket) => socket.pipe(socket));
  });

  after(async () => {
    await echo.close();
    await sandbox.cleanup();
  });

  async function apply(name: string, yaml: string): Promise<string> {
    const file = sandbox.file(`${name}.yaml`);
    await fs.writeFile(file, yaml, { mode: 0o600 });
    return ok(["-n", "west", "apply", "-f", file], { home });
  }

  async function get(kind: string, name: string): Promise<Got | undefined> {
    const result = await skupper(["-n", "west", "get", kind, name, "-o", "json"], { home });
    return result.code === 0 ? (JSON.parse(result.stdout) as Got) : undefined;
  }

  const pem = (secret: Got | undefined, key: string) => Buffer.from(secret?.data?.[key] ?? "", "base64").toString();

  const certificate = (name: string, spec: string) => `apiVersion: skupper.io/v2alpha1\nkind: Certificate\nmetadata:\n  name: ${name}\nspec:\n${spec}`;

  test("a self-signed CA and a server certificate it signs, which a TLS listener serves to a client that trusts the CA", async () => {
    await apply("ca", certificate("corp-ca", "  ca: \"\"\n  subject: Corp CA\n  signing: true\n"));
    await apply("web", certificate("web-tls", "  ca: corp-ca\n  subject: web\n  hosts: [127.0.0.1, localhost]\n  server: true\n"));
    await eventually("both Certificates to be Ready", async () => (await get("certificate", "corp-ca"))?.status?.status === "Ready" && (await get("certificate", "web-tls"))?.status?.status === "Ready");
    const [caSecret, webSecret] = [await get("secret", "corp-ca"), await get("secret", "web-tls")];
    const caCert = pem(caSecret, "tls.crt");
    assert.equal(describeCertificate(caCert).isCA, true);
    assert.ok(isIssuedBy(pem(webSecret, "tls.crt"), caCert), "the server certificate is the CA's");
    assert.deepEqual(describeCertificate(pem(webSecret, "tls.crt")).hosts.sort(), ["127.0.0.1", "localhost"]);
    assert.equal(webSecret?.metadata?.annotations?.["skupper.io/certificate"], "web-tls");

    const port = await freePort();
    await ok(["-n", "west", "connector", "create", "web", String(echo.port), "--host", "127.0.0.1"], { home });
    await ok(["-n", "west", "listener", "create", "web", String(port), "--tls-credentials", "web-tls"], { home });
    const socket = tls.connect({ host: "127.0.0.1", port, ca: caCert, servername: "localhost" });
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("no TLS handshake with the listener within 10 s")), 10_000);
        socket.once("secureConnect", () => {
          clearTimeout(timer);
          resolve();
        });
        socket.once("error", (err) => {
          clearTimeout(timer);
          reject(err);
        });
      });
      assert.equal(socket.authorized, true, "verified against the CA of the Certificate");
      socket.write("hello");
      const echoed = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("no echo within 5 s")), 5_000);
        socket.once("data", (d: Buffer) => {
          clearTimeout(timer);
          resolve(d.toString());
        });
      });
      assert.equal(echoed, "hello");
    } finally {
      socket.destroy();
    }
  });

  test("a changed spec makes the certificate again; deleting the Certificate deletes its Secret", async () => {
    const before = pem(await get("secret", "web-tls"), "tls.crt");
    await apply("web", certificate("web-tls", "  ca: corp-ca\n  subject: web\n  hosts: [127.0.0.1, localhost, web.example]\n  server: true\n"));
    const after = await eventually("a certificate with the new host", async () => {
      const cert = pem(await get("secret", "web-tls"), "tls.crt");
      return cert && cert !== before && describeCertificate(cert).hosts.includes("web.example") ? cert : undefined;
    });
    assert.ok(after);
    await ok(["-n", "west", "listener", "delete", "web"], { home });
    await ok(["-n", "west", "delete", "certificate", "web-tls"], { home });
    await eventually("the Secret to be gone", async () => (await get("secret", "web-tls")) === undefined);
  });

  test("a Secret skupper did not make is left alone; the status says what does not match", async () => {
    const caSecret = await get("secret", "corp-ca");
    await apply("mine", `apiVersion: v1\nkind: Secret\nmetadata:\n  name: mine\ntype: kubernetes.io/tls\ndata:\n  tls.crt: ${caSecret?.data?.["tls.crt"]}\n  tls.key: ${caSecret?.data?.["tls.key"]}\n`);
    await apply("mine-cert", certificate("mine", "  ca: corp-ca\n  subject: mine\n  server: true\n"));
    const status = await eventually("the Certificate to say the Secret is not skupper's", async () => {
      const got = await get("certificate", "mine");
      return /the Secret "mine" exists and was not made by skupper, and its certificate's subject is "Corp CA", not "mine"/.test(got?.status?.message ?? "") ? got : undefined;
    });
    assert.equal(status.status?.status, "Error");
    assert.equal(pem(await get("secret", "mine"), "tls.crt"), pem(caSecret, "tls.crt"), "the user's Secret is untouched");
  });
});
