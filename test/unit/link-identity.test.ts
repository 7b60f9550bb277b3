/**
 * A link's identity (issue 7, item 4; docs/link-protocol.md §4): certificates carry the site id
 * as a SAN URI, and the site id a peer announces in HELLO must match it, on both ends. Real TLS
 * on 127.0.0.1 against a Router's link server.
 */
import "reflect-metadata";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import tls from "node:tls";
import {
  certificateSiteIds,
  createCA,
  describeCertificate,
  ensureLeaf,
  issueCertificate,
  saveCredentials,
  SITE_ID_URI_PREFIX,
  type Credentials,
} from "../../src/certs/index.js";
import { setLogLevel } from "../../src/common/log.js";
import { issueLinkBundle, planLinks } from "../../src/controller/links.js";
import { Annotation } from "../../src/controller/tokens.js";
import { encodeFrame, FrameParser, FrameType, PROTOCOL_VERSION } from "../../src/router/frames.js";
import { LINK_ALPN } from "../../src/router/links.js";
import { Router } from "../../src/router/router.js";
import type { Secret } from "../../src/api/index.js";

setLogLevel("error");

const SITE_L = "aaaaaaaa-0000-4000-8000-00000000000a"; // the listening site
const SITE_D = "dddddddd-0000-4000-8000-00000000000d"; // a dialing site
const SITE_E = "eeeeeeee-0000-4000-8000-00000000000e";
const SITE_F = "ffffffff-0000-4000-8000-00000000000f";

let siteCa: Credentials;
let serverCert: Credentials;

before(async () => {
  siteCa = await createCA("site L CA");
  serverCert = await issueCertificate(siteCa, { commonName: "skupper-router", hosts: ["127.0.0.1"], usage: "server", siteId: SITE_L });
});

function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function until<T>(what: string, ms: number, probe: () => T | undefined): Promise<T> {
  return within(
    ms,
    what,
    (async () => {
      for (;;) {
        const value = probe();
        if (value !== undefined) return value;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })(),
  );
}

type Outcome = { kind: "up"; serverSiteId: string } | { kind: "refused"; reason: string };

/** Connects with `client`, announces `claimedSiteId`, and reports whether the link came up or why not. */
function announce(port: number, client: Credentials, claimedSiteId: string): Promise<Outcome> {
  return within(
    5_000,
    `the link server's answer to site ${claimedSiteId}`,
    new Promise<Outcome>((resolve, reject) => {
      const socket = tls.connect({ port, host: "127.0.0.1", ca: siteCa.cert, cert: client.cert, key: client.key, ALPNProtocols: [LINK_ALPN] });
      let serverSiteId = "";
      const finish = (outcome: Outcome) => {
        socket.destroy();
        resolve(outcome);
      };
      const parser = new FrameParser({
        onFrame: (type, _stream, payload) => {
          if (type === FrameType.Hello) serverSiteId = (JSON.parse(payload.toString()) as { siteId: string }).siteId;
          if (type === FrameType.LinkState) finish({ kind: "up", serverSiteId });
          if (type === FrameType.GoAway) finish({ kind: "refused", reason: (JSON.parse(payload.toString()) as { reason: string }).reason });
        },
        onData: () => undefined,
        onProtocolError: (message) => reject(new Error(message)),
      });
      socket.on("data", (chunk: Buffer) => parser.push(chunk));
      socket.once("error", reject);
      socket.once("close", () => reject(new Error("the link server closed the connection without a GOAWAY")));
      socket.once("secureConnect", () => {
        const hello = { v: PROTOCOL_VERSION, siteId: claimedSiteId, siteName: "dialer", instance: Date.now(), version: "test", window: 1 << 20 };
        socket.write(Buffer.concat(encodeFrame(FrameType.Hello, 0, Buffer.from(JSON.stringify(hello)))));
      });
    }),
  );
}

const clientCert = (siteId?: string) => issueCertificate(siteCa, { commonName: "a link", usage: "client", ...(siteId ? { siteId } : {}) });

describe("certificates name their site", () => {
  test("a certificate issued for a site carries it as a SAN URI, next to its hosts", async () => {
    const cert = await issueCertificate(siteCa, { commonName: "x", hosts: ["127.0.0.1", "example.com"], usage: "server", siteId: SITE_D });
    assert.match(new X509Certificate(cert.cert).subjectAltName ?? "", new RegExp(`URI:${SITE_ID_URI_PREFIX}${SITE_D}`));
    assert.deepEqual(certificateSiteIds(cert.cert), [SITE_D]);
    const info = describeCertificate(cert.cert);
    assert.equal(info.siteId, SITE_D);
    assert.deepEqual(info.hosts.sort(), ["127.0.0.1", "example.com"]);
  });

  test("a site id that is not a plain identifier is refused rather than written into a certificate", async () => {
    await assert.rejects(issueCertificate(siteCa, { commonName: "x", usage: "client", siteId: "a, URI:urn:skupper:site:b" }), /is not a valid site id for a certificate/);
  });

  test("ensureLeaf reissues a server certificate that does not name the site", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "link-identity-"));
    try {
      const old = await issueCertificate(siteCa, { commonName: "skupper-router", hosts: ["127.0.0.1"], usage: "server" });
      await saveCredentials(dir, old);
      const request = { commonName: "skupper-router", hosts: ["127.0.0.1"], usage: "server" as const, siteId: SITE_L };
      const first = await ensureLeaf(dir, siteCa, request);
      assert.equal(first.issued, true);
      assert.equal(describeCertificate(first.credentials.cert).siteId, SITE_L);
      const second = await ensureLeaf(dir, siteCa, request);
      assert.equal(second.issued, false, "a certificate that names the site is kept");
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  test("issueLinkBundle names the redeeming site in the client certificate when it is known", async () => {
    const base = { name: "to-l", subject: "to-l", host: "127.0.0.1", port: 1, siteId: SITE_L, siteName: "l" };
    const certOf = (secret: Secret) => Buffer.from(secret.data?.["tls.crt"] ?? "", "base64").toString();
    const redeemed = await issueLinkBundle(siteCa, { ...base, clientSiteId: SITE_D });
    assert.deepEqual(certificateSiteIds(certOf(redeemed.secret)), [SITE_D]);
    const generated = await issueLinkBundle(siteCa, base);
    assert.deepEqual(certificateSiteIds(certOf(generated.secret)), [], "`link generate` cannot know the site");
    const plan = planLinks([redeemed.link], new Map([[redeemed.secret.metadata.name, redeemed.secret]]));
    assert.equal(plan.configs[0]?.remoteSiteId, SITE_L, "the Link's remote-site-id annotation reaches the dialer");
    assert.equal(redeemed.link.metadata.annotations?.[Annotation.remoteSiteId], SITE_L);
  });
});

describe("the listening site binds HELLO to the client certificate", () => {
  let router: Router;
  let port: number;

  before(async () => {
    router = new Router({ siteId: SITE_L, siteName: "l", version: "test" });
    await router.setLinkServer({ host: "127.0.0.1", port: 0, credentials: { ca: siteCa.cert, cert: serverCert.cert, key: serverCert.key } });
    port = router.linkServerPort as number;
  });
  after(() => router.close());

  test("a certificate naming site D announcing site D comes up (control case)", async () => {
    const outcome = await announce(port, await clientCert(SITE_D), SITE_D);
    assert.deepEqual(outcome, { kind: "up", serverSiteId: SITE_L });
  });

  test("a certificate naming site D cannot announce site E; the refusal names both", async () => {
    const outcome = await announce(port, await clientCert(SITE_D), SITE_E);
    assert.deepEqual(outcome, {
      kind: "refused",
      reason: `the link's certificate names site ${SITE_D}, but the connecting site announced itself as site ${SITE_E}`,
    });
  });

  test("a certificate naming no site serves any number of sites, as a cert token does", async () => {
    const unnamed = await clientCert();
    assert.equal((await announce(port, unnamed, SITE_F)).kind, "up");
    assert.equal((await announce(port, unnamed, SITE_F)).kind, "up", "the same site may use it again");
    assert.equal((await announce(port, unnamed, SITE_E)).kind, "up", "and another site too");
  });

  test("a certificate naming no site cannot take a site id that a certificate naming it has proved", async () => {
    assert.equal((await announce(port, await clientCert(SITE_D), SITE_D)).kind, "up");
    assert.deepEqual(await announce(port, await clientCert(), SITE_D), {
      kind: "refused",
      reason: `the connecting site announced itself as site ${SITE_D}, but its certificate names no site and site ${SITE_D} has a certificate that names it`,
    });
  });
});

describe("the dialing site checks the listening site's HELLO", () => {
  async function dialStatus(listenerCert: Credentials, remoteSiteId?: string): Promise<string> {
    const listener = new Router({ siteId: SITE_L, siteName: "l", version: "test" });
    const dialer = new Router({ siteId: SITE_D, siteName: "d", version: "test" });
    try {
      await listener.setLinkServer({ host: "127.0.0.1", port: 0, credentials: { ca: siteCa.cert, cert: listenerCert.cert, key: listenerCert.key } });
      const client = await clientCert(SITE_D);
      dialer.setOutgoingLinks([
        {
          name: "to-l",
          endpoints: [{ host: "127.0.0.1", port: listener.linkServerPort as number }],
          cost: 1,
          credentials: { ca: siteCa.cert, cert: client.cert, key: client.key },
          ...(remoteSiteId ? { remoteSiteId } : {}),
        },
      ]);
      return await until("the dialer to settle", 5_000, () => {
        const link = dialer.status().outgoing[0];
        if (link?.state === "up") return "up";
        return link && link.message !== "Connecting" ? link.message : undefined;
      });
    } finally {
      await dialer.close();
      await listener.close();
    }
  }

  test("a listening site whose certificate and HELLO agree comes up (control case)", async () => {
    assert.equal(await dialStatus(serverCert, SITE_L), "up");
  });

  test("a listening site announcing another id than its certificate names is refused", async () => {
    const wrongServer = await issueCertificate(siteCa, { commonName: "skupper-router", hosts: ["127.0.0.1"], usage: "server", siteId: SITE_E });
    assert.equal(await dialStatus(wrongServer), `the remote site announced itself as site ${SITE_L}, but its certificate names site ${SITE_E}`);
  });

  test("a listening site other than the one the Link was issued by is refused", async () => {
    assert.equal(
      await dialStatus(serverCert, SITE_E),
      `the remote site announced itself as site ${SITE_L}, but this link was issued by site ${SITE_E} (annotation skupper.io/remote-site-id)`,
    );
  });
});
