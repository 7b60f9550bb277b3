/**
 * Grant-server fixtures for tests: an in-memory ledger that issues real link credentials, a
 * grant server on 127.0.0.1 with chosen limits, and raw TCP/TLS clients that misbehave on
 * purpose, with bounded waits for what the server does to them.
 */
import net from "node:net";
import tls from "node:tls";
import { toYamlDocuments, type Secret } from "../../src/api/index.js";
import { createCA, issueCertificate, type Credentials } from "../../src/certs/index.js";
import { issueLinkBundle } from "../../src/controller/links.js";
import { GrantServer, type ConnectionLimits, type GrantLedger, type GrantRecord, type RedemptionRequest } from "../../src/grants/index.js";

export interface Authorities {
  /** The grant server's CA (what a token's `ca` holds). */
  grantCa: Credentials;
  grantServerCert: Credentials;
  /** The issuing site's CA (what the returned Secret's ca.crt holds). */
  siteCa: Credentials;
}

export async function createAuthorities(): Promise<Authorities> {
  const grantCa = await createCA("test grant server CA");
  const grantServerCert = await issueCertificate(grantCa, { commonName: "skupper-grant-server", hosts: ["127.0.0.1", "localhost"], usage: "server" });
  const siteCa = await createCA("test site CA");
  return { grantCa, grantServerCert, siteCa };
}

/** A ledger that issues real credentials and counts in memory, with hooks to pause or fail. */
export class IssuingLedger implements GrantLedger {
  readonly grants = new Map<string, GrantRecord>();
  readonly issued: RedemptionRequest[] = [];
  recorded = 0;
  unrecorded = 0;
  /** Awaited before issuing; lets a test hold a redemption at that point. */
  beforeIssue: (() => Promise<void>) | undefined;

  constructor(private readonly siteCa: Credentials) {}

  add(grant: Partial<GrantRecord> & { uid: string }): GrantRecord {
    const record: GrantRecord = { name: `grant-${grant.uid}`, code: "correct-code", expiresAt: Date.now() + 600_000, allowed: 1, made: 0, ...grant };
    this.grants.set(record.uid, record);
    return record;
  }

  find(uid: string): GrantRecord | undefined {
    return this.grants.get(uid);
  }

  async issue(_grant: GrantRecord, request: RedemptionRequest): Promise<string> {
    await this.beforeIssue?.();
    this.issued.push(request);
    const { link, secret } = await issueLinkBundle(this.siteCa, {
      name: request.name,
      subject: request.subject,
      host: request.host ?? "127.0.0.1",
      port: 55671,
      siteId: "site-west",
      siteName: "west",
    });
    return toYamlDocuments([secret, link]);
  }

  async record(grant: GrantRecord): Promise<void> {
    grant.made++;
    this.recorded++;
  }

  async unrecord(grant: GrantRecord): Promise<void> {
    grant.made = Math.max(0, grant.made - 1);
    this.unrecorded++;
  }
}

export async function startGrantServer(
  ledger: GrantLedger,
  authorities: Authorities,
  limits: Partial<ConnectionLimits> = {},
): Promise<{ server: GrantServer; port: number }> {
  const server = new GrantServer(ledger, limits);
  await server.configure({ host: "127.0.0.1", port: 0, cert: authorities.grantServerCert.cert, key: authorities.grantServerCert.key });
  const port = server.port;
  if (port === undefined) throw new Error("the test grant server is not listening");
  return { server, port };
}

/** A plain TCP connection; resolves once connected. Errors (resets) are expected and kept. */
export function connectTcp(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    socket.on("error", () => undefined);
    socket.once("connect", () => resolve(socket));
    socket.once("close", () => reject(new Error("the connection closed before it was established")));
  });
}

/** A TLS connection that trusts `ca`; resolves once the handshake is done. */
export function connectTls(port: number, ca: string): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, ca, minVersion: "TLSv1.3" });
    socket.on("error", () => undefined);
    socket.once("secureConnect", () => resolve(socket));
    socket.once("close", () => reject(new Error("the connection closed during the TLS handshake")));
  });
}

/**
 * Resolves with the milliseconds from `since` to the moment `socket` closed, or rejects if it is
 * still open `withinMs` after `since`.
 */
export function closedWithin(socket: net.Socket, since: number, withinMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    if (socket.destroyed && socket.closed) {
      resolve(Date.now() - since);
      return;
    }
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server left the connection open for more than ${withinMs} ms`));
    }, Math.max(0, since + withinMs - Date.now()));
    socket.once("close", () => {
      clearTimeout(timer);
      resolve(Date.now() - since);
    });
  });
}

/** Writes `data` one byte every `everyMs` until the socket closes; returns a stop function. */
export function trickle(socket: net.Socket, data: string, everyMs: number): () => void {
  let index = 0;
  const timer = setInterval(() => {
    if (socket.destroyed || index >= data.length) {
      clearInterval(timer);
      return;
    }
    socket.write(data[index++] as string);
  }, everyMs);
  socket.once("close", () => clearInterval(timer));
  return () => clearInterval(timer);
}

/** Everything the server sends until it closes the connection (bounded). */
export function readUntilClosed(socket: net.Socket, withinMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server did not close the connection within ${withinMs} ms`));
    }, withinMs);
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.once("close", () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString("latin1"));
    });
  });
}

/** A `kubernetes.io/tls` Secret with a fresh client certificate from the site CA, as a grant server answers. */
export async function tlsSecret(authorities: Pick<Authorities, "siteCa">, name: string, extra: Partial<Secret> = {}, commonName = "east"): Promise<Secret> {
  const client = await issueCertificate(authorities.siteCa, { commonName, usage: "client" });
  const b64 = (text: string) => Buffer.from(text).toString("base64");
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name },
    type: "kubernetes.io/tls",
    data: { "tls.crt": b64(client.cert), "tls.key": b64(client.key), "ca.crt": b64(authorities.siteCa.cert) },
    ...extra,
  };
}
