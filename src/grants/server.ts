/**
 * The grant server: redeems access-token codes for link credentials over HTTPS (TLS 1.3).
 *
 * Counting rules (docs/grant-protocol.md): redemptions of one grant are handled one at a time;
 * a redemption is recorded (persisted) before the credentials are sent and taken back if they
 * could not be sent, so a failed redemption never uses up a grant and no crash can let a grant
 * be redeemed more often than allowed.
 *
 * Every connection is bounded in time and number (connection-guard.ts), since anyone who can
 * reach the port may connect.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import https from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { logger } from "../common/log.js";
import { grantRedemptionChannel, type RedemptionOutcome } from "../observability/events.js";
import { ConnectionGuard, connectionLimits, type ConnectionLimits } from "./connection-guard.js";
import { Header, MAX_BODY_BYTES, MAX_HEADER_BYTES, REFUSAL_STATUS, type RefusalReason } from "./protocol.js";

const log = logger("grant-server");

export interface GrantRecord {
  name: string;
  uid: string;
  code: string;
  /** Epoch ms. */
  expiresAt: number;
  allowed: number;
  made: number;
}

export interface RedemptionRequest {
  /** Name for the Secret and Link (the AccessToken's name). */
  name: string;
  /** Common name for the client certificate. */
  subject: string;
  siteId?: string;
  siteName?: string;
  /** The host name the client used to reach us (from the Host header). */
  host?: string;
}

/** Thrown by a ledger to refuse a redemption with a reason. */
export class Refusal extends Error {
  constructor(
    readonly reason: RefusalReason,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** What the grant server needs from the site: grants, credentials and durable counting. */
export interface GrantLedger {
  find(uid: string): GrantRecord | undefined;
  /** Builds the response body (Secret + Link YAML) or throws a Refusal. Must not count anything. */
  issue(grant: GrantRecord, request: RedemptionRequest): Promise<string>;
  /** Durably records one more redemption of `grant`. */
  record(grant: GrantRecord): Promise<void>;
  /** Durably takes back a redemption whose credentials never reached the client. */
  unrecord(grant: GrantRecord): Promise<void>;
}

export interface GrantServerConfig {
  host?: string;
  port: number;
  cert: string;
  key: string;
}

export class GrantServer {
  private server: https.Server | undefined;
  private config: GrantServerConfig | undefined;
  /** Per-grant queue: redemptions of one grant never overlap. */
  private readonly queues = new Map<string, Promise<void>>();

  private readonly limits: ConnectionLimits;
  private guard: ConnectionGuard | undefined;

  /** `limits` override the defaults of DEFAULT_CONNECTION_LIMITS (tests use short ones). */
  constructor(
    private readonly ledger: GrantLedger,
    limits: Partial<ConnectionLimits> = {},
  ) {
    this.limits = connectionLimits(limits);
  }

  get listening(): boolean {
    return this.server?.listening ?? false;
  }

  /** Connections open now, and how many were closed at once because too many were open. */
  get connections(): { open: number; dropped: number } {
    return { open: this.guard?.openConnections ?? 0, dropped: this.guard?.dropped ?? 0 };
  }

  /** The port the server listens on (useful with port 0), if it listens. */
  get port(): number | undefined {
    const address = this.server?.address();
    return address && typeof address === "object" ? address.port : undefined;
  }

  async configure(config: GrantServerConfig): Promise<void> {
    const previous = this.config;
    if (this.server && previous && previous.port === config.port && previous.host === config.host) {
      if (previous.cert !== config.cert || previous.key !== config.key) {
        this.server.setSecureContext({ cert: config.cert, key: config.key, minVersion: "TLSv1.3" });
        this.config = config;
      }
      return;
    }
    await this.close();
    const limits = this.limits;
    const guard = new ConnectionGuard(limits);
    const server = https.createServer(
      {
        cert: config.cert,
        key: config.key,
        minVersion: "TLSv1.3",
        handshakeTimeout: limits.handshakeTimeoutMs,
        // Node's own checks, kept as a second line behind the guard's per-connection deadlines.
        headersTimeout: limits.headersTimeoutMs,
        requestTimeout: limits.requestTimeoutMs,
        connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
        maxHeaderSize: MAX_HEADER_BYTES,
        keepAlive: false,
      },
      (req, res) => void this.handle(req, res),
    );
    server.keepAliveTimeout = 1000;
    guard.attach(server);
    // Node hands CONNECT to a "connect" listener and, without one, drops the connection unanswered.
    server.on("connect", (_req: IncomingMessage, socket: Duplex) => {
      const text = "Only POST is supported\n";
      socket.end(
        `HTTP/1.1 405 Method Not Allowed\r\nAllow: POST\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ port: config.port, ...(config.host ? { host: config.host } : {}) }, () => {
        server.removeListener("error", reject);
        resolve();
      });
    });
    server.on("error", (err) => log.error(err.message));
    this.server = server;
    this.guard = guard;
    this.config = config;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.guard = undefined;
    this.config = undefined;
    if (!server) return;
    server.closeAllConnections?.();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const guard = this.guard;
    guard?.advance(req.socket, "body");
    try {
      if (req.method !== "POST") {
        res.setHeader("Allow", "POST");
        return this.reply(res, 405, "Only POST is supported");
      }
      const body = await readBody(req);
      guard?.advance(req.socket, "processing");
      if (body === undefined) return this.refuse(res, new Refusal("invalid", "Request body not valid"));
      const uid = (req.url ?? "").split("?")[0]?.replace(/\//g, "") ?? "";
      if (!this.ledger.find(uid)) return this.refuse(res, new Refusal("unknown", "No such claim"));
      await this.serialized(uid, () => this.redeem(uid, body, req, res));
    } catch (err) {
      log.error(`redemption failed: ${(err as Error).message}`);
      redemptionEvent("failed");
      if (!res.headersSent) this.reply(res, 500, "Internal error");
    }
  }

  private serialized(uid: string, task: () => Promise<void>): Promise<void> {
    const previous = this.queues.get(uid) ?? Promise.resolve();
    const next = previous.then(task, task);
    const tail = next.catch(() => undefined);
    this.queues.set(uid, tail);
    void tail.then(() => {
      if (this.queues.get(uid) === tail) this.queues.delete(uid);
    });
    return next;
  }

  private async redeem(uid: string, code: Buffer, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const grant = this.ledger.find(uid);
    if (!grant) return this.refuse(res, new Refusal("unknown", "No such claim"));
    if (!sameCode(code, grant.code)) return this.refuse(res, new Refusal("refused", "Redemption of access token refused"));
    if (Date.now() > grant.expiresAt) {
      return this.refuse(res, new Refusal("expired", `Access token expired at ${new Date(grant.expiresAt).toISOString()}`));
    }
    if (grant.made >= grant.allowed) {
      return this.refuse(res, new Refusal("exhausted", `No such access granted: all ${grant.allowed} redemption(s) of this token have been used`));
    }
    const request = redemptionRequest(req, grant);
    let body: string;
    try {
      body = await this.ledger.issue(grant, request);
    } catch (err) {
      if (err instanceof Refusal) return this.refuse(res, err);
      throw err;
    }
    try {
      await this.ledger.record(grant);
    } catch (err) {
      log.error(`could not record a redemption of grant ${grant.name}: ${(err as Error).message}`);
      redemptionEvent("failed", grant.name);
      return this.reply(res, 503, "Internal error");
    }
    const delivered = await this.send(res, 200, body, "application/yaml");
    if (delivered) {
      log.info(`grant ${grant.name} redeemed by ${request.siteName ?? request.subject} (${grant.made}/${grant.allowed})`);
      redemptionEvent("redeemed", grant.name, request.siteName);
    } else {
      redemptionEvent("undelivered", grant.name, request.siteName);
      log.warn(`grant ${grant.name}: the credentials could not be delivered; the redemption is not counted`);
      await this.ledger.unrecord(grant);
    }
  }

  private refuse(res: ServerResponse, refusal: Refusal): void {
    redemptionEvent(refusal.reason);
    res.setHeader(Header.error, refusal.reason);
    for (const [name, value] of Object.entries(refusal.headers)) res.setHeader(name, value);
    this.reply(res, REFUSAL_STATUS[refusal.reason], refusal.message);
  }

  private reply(res: ServerResponse, status: number, text: string): void {
    void this.send(res, status, text + "\n", "text/plain; charset=utf-8");
  }

  /** Sends a response; resolves true once it has been handed to the connection in full. */
  private send(res: ServerResponse, status: number, body: string, contentType: string): Promise<boolean> {
    // From here on the connection gets the response allowance, not the request deadline.
    this.guard?.advance(res.socket, "responding");
    // A connection that closed before the answer was ready never emits "close" again.
    if (res.destroyed || !res.socket || res.socket.destroyed) return Promise.resolve(false);
    return new Promise((resolve) => {
      let settled = false;
      const settle = (ok: boolean) => {
        if (settled) return;
        settled = true;
        resolve(ok);
      };
      res.once("finish", () => settle(true));
      res.once("close", () => settle(res.writableFinished));
      res.once("error", () => settle(false));
      res.writeHead(status, { "Content-Type": contentType, "Content-Length": Buffer.byteLength(body), Connection: "close" });
      res.end(body);
    });
  }
}

function redemptionRequest(req: IncomingMessage, grant: GrantRecord): RedemptionRequest {
  const header = (name: string) => {
    const value = req.headers[name];
    return typeof value === "string" && value.trim() !== "" ? value.trim() : undefined;
  };
  const name = header(Header.name) ?? grant.name;
  const request: RedemptionRequest = {
    name,
    subject: header(Header.subject) ?? name,
  };
  const siteId = header(Header.siteId);
  const siteName = header(Header.siteName);
  const host = hostOf(req.headers.host);
  if (siteId) request.siteId = siteId;
  if (siteName) request.siteName = siteName;
  if (host) request.host = host;
  return request;
}

/** Host name from a Host header: "h:9090" → "h", "[::1]:9090" → "::1". */
export function hostOf(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(header);
  if (bracketed) return bracketed[1];
  return header.replace(/:\d+$/, "") || undefined;
}

function sameCode(given: Buffer, expected: string): boolean {
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(expected, "utf8").digest();
  return timingSafeEqual(a, b);
}

/**
 * The request body, or undefined if it is over MAX_BODY_BYTES or the client went away. The rest
 * of an oversized body is read and dropped, so the refusal reaches the client instead of a reset;
 * the connection's deadlines bound how long that can go on.
 */
function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (body: Buffer | undefined) => {
      if (settled) return;
      settled = true;
      resolve(body);
    };
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > MAX_BODY_BYTES) {
      req.resume();
      settle(undefined);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      if (settled) return;
      size += chunk.length;
      if (size > MAX_BODY_BYTES) settle(undefined);
      else chunks.push(chunk);
    });
    req.on("end", () => settle(Buffer.concat(chunks)));
    req.on("error", () => settle(undefined));
    req.on("close", () => settle(undefined));
  });
}

/** Publishes a redemption's outcome (skupper:grant:redemption) when someone listens. */
function redemptionEvent(outcome: RedemptionOutcome, grant?: string, siteName?: string): void {
  if (!grantRedemptionChannel.hasSubscribers) return;
  grantRedemptionChannel.publish({ outcome, ...(grant !== undefined ? { grant } : {}), ...(siteName !== undefined ? { siteName } : {}) });
}
