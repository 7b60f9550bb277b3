/**
 * The observer server: one HTTP server in the site process for the web console and Prometheus
 * metrics (docs/console.md). Routes:
 *
 * - `/` the console (a static bundle built at build time, see scripts/build-console.ts), its
 *   assets under `/assets/`;
 * - `/api/network` the site's network view (JSON), `/api/events` the same as Server-Sent Events,
 *   pushed when it changes and at least every second;
 * - `/metrics` Prometheus metrics, when the site was given a metrics source;
 * - `/healthz` "ok".
 *
 * Bound to a loopback address, it needs no credential (see the docs for why; the Host header must
 * then name a loopback host, which stops DNS rebinding). Bound to any other address, every route
 * needs the site's credential: `Authorization: Bearer <credential>`, or the HttpOnly,
 * SameSite=Strict cookie a browser gets from the login form or from `?token=` once.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { promises as fs } from "node:fs";
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { NetworkStatus } from "../api/index.js";
import { errorMessage } from "../common/errors.js";
import { logger } from "../common/log.js";
import { isLoopback, observerUrl, type ObserverConfig } from "../api/index.js";

const log = logger("observer");

/** Prometheus metrics in the text exposition format, from whoever collects them. */
export type MetricsSource = () => Promise<{ contentType: string; body: string }>;

export interface ObserverSource {
  /** The site's network view now. */
  view(): NetworkStatus;
  /** The credential non-loopback binds require; undefined when the platform cannot keep one. */
  credential(): Promise<string | undefined>;
  /** Prometheus metrics; without it `/metrics` answers 404 "metrics not enabled". */
  metrics?: MetricsSource;
}

export interface ObserverOptions {
  /** The directory of the console's bundle (default: `web/` beside this module in dist). */
  assets?: string;
  /** Event streams served at once (default 16); more are answered 503. */
  maxEventClients?: number;
  /** Longest time between two pushes of the view (default 1 s). */
  pushIntervalMs?: number;
  /** Wait before binding again a port that could not be bound (default 5 s). */
  retryMs?: number;
}

/** What `skupper network console` prints: where the server is and what it needs. */
export interface ObserverState {
  state: "off" | "listening" | "error";
  /** A sentence: where it listens, why it is off or failed. */
  message: string;
  host?: string;
  port?: number;
  url?: string;
  credentialRequired: boolean;
  /** The credential, when it is required. */
  credential?: string;
}

export const COOKIE_NAME = "skupper-observer";
/** Request bodies (only the login form has one) are at most this long. */
export const MAX_BODY_BYTES = 4096;
const MAX_HEADER_BYTES = 16 * 1024;

const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
};

const ASSETS: Record<string, { file: string; type: string }> = {
  "/": { file: "index.html", type: "text/html; charset=utf-8" },
  "/index.html": { file: "index.html", type: "text/html; charset=utf-8" },
  "/assets/app.js": { file: "app.js", type: "text/javascript; charset=utf-8" },
  "/assets/app.css": { file: "app.css", type: "text/css; charset=utf-8" },
};

export function defaultAssetsDir(): string {
  return path.join(path.dirname(fileURLToPath(import.meta.url)), "web");
}

function digest(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}

/** Compares in constant time (over the digests, so lengths do not leak either). */
function sameCredential(given: string | undefined, expected: string): boolean {
  if (!given) return false;
  return timingSafeEqual(digest(given), digest(expected));
}

function cookie(req: http.IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim());
  }
  return undefined;
}

function bearer(req: http.IncomingMessage): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? "");
  return match?.[1];
}

/** Whether the Host header names this machine's loopback (or is absent, as from HTTP/1.0 clients). */
function loopbackHostHeader(host: string | undefined): boolean {
  if (host === undefined) return true;
  const name = host.startsWith("[") ? host.slice(1, host.indexOf("]")) : host.replace(/:\d+$/, "");
  return name.toLowerCase() === "localhost" || isLoopback(name);
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function loginPage(problem?: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Skupper console: sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/assets/app.css"></head>
<body><main class="login"><h1>Skupper console</h1>
<p>This console is reachable from other machines, so it needs the site's credential. Print it with <code>skupper network console</code> on the site's host.</p>
${problem ? `<p class="problem" role="alert" data-testid="login-problem">${escapeHtml(problem)}</p>` : ""}
<form method="post" action="/login"><label for="token">Credential</label>
<input id="token" name="token" type="password" autocomplete="current-password" required data-testid="login-token">
<button type="submit" data-testid="login-submit">Sign in</button></form></main></body></html>
`;
}

export class ObserverServer {
  private server: http.Server | undefined;
  private bound: { host: string; port: number } | undefined;
  private current: ObserverState = { state: "off", message: "the observer port is off (set one with --observer-port)", credentialRequired: false };
  private credentialValue: string | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly streams = new Set<http.ServerResponse>();
  private ticker: NodeJS.Timeout | undefined;
  private pushScheduled = false;
  private retry: NodeJS.Timeout | undefined;
  private assetCache = new Map<string, Buffer>();
  /** Configurations are applied one at a time, in order. */
  private applying: Promise<unknown> = Promise.resolve();
  private wanted: ObserverConfig = { enabled: false, problems: [] };
  private closed = false;
  private readonly assets: string;
  private readonly maxEventClients: number;
  private readonly pushIntervalMs: number;
  private readonly retryMs: number;

  constructor(
    private readonly source: ObserverSource,
    options: ObserverOptions = {},
  ) {
    this.assets = options.assets ?? defaultAssetsDir();
    this.maxEventClients = options.maxEventClients ?? 16;
    this.pushIntervalMs = options.pushIntervalMs ?? 1000;
    this.retryMs = options.retryMs ?? 5000;
  }

  /** Where the server is and what it needs, with the credential when one is required. */
  state(): ObserverState {
    return { ...this.current };
  }

  /**
   * Starts, stops or rebinds the server to match `config`; a configuration equal to the one
   * applied changes nothing (connections stay). Resolves when it is applied.
   */
  configure(config: ObserverConfig): Promise<ObserverState> {
    this.wanted = config;
    const run = this.applying.then(() => this.apply(config));
    this.applying = run.catch(() => undefined);
    return run;
  }

  /** The view changed: pushes it to every event stream soon (several changes make one push). */
  changed(): void {
    if (this.pushScheduled || this.streams.size === 0) return;
    this.pushScheduled = true;
    setTimeout(() => {
      this.pushScheduled = false;
      this.push();
    }, 20).unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    await this.applying;
    await this.stop();
  }

  private async apply(config: ObserverConfig): Promise<ObserverState> {
    if (this.closed) return this.state();
    if (!config.enabled) {
      clearTimeout(this.retry);
      await this.stop();
      this.current = {
        state: config.problems.length > 0 ? "error" : "off",
        message: config.problems.length > 0 ? `the observer port is off: ${config.problems.join("; ")}` : "the observer port is off (set one with --observer-port)",
        credentialRequired: false,
      };
      if (config.problems.length > 0) log.warn(this.current.message);
      return this.state();
    }
    const { host, port } = config;
    if (this.server && this.bound?.host === host && this.bound.port === port) return this.state();
    clearTimeout(this.retry);
    await this.stop();
    const credentialRequired = !isLoopback(host);
    if (credentialRequired) {
      this.credentialValue = await this.source.credential();
      if (!this.credentialValue) {
        this.current = {
          state: "error",
          host,
          port,
          credentialRequired,
          message: `the observer port cannot be bound to ${host}: this platform keeps no credential for it, and only loopback addresses are served without one`,
        };
        log.warn(this.current.message);
        return this.state();
      }
    }
    const server = http.createServer({ maxHeaderSize: MAX_HEADER_BYTES, requestTimeout: 10_000, headersTimeout: 10_000 }, (req, res) => {
      this.handle(req, res, credentialRequired).catch((err: unknown) => {
        log.warn(`observer request ${req.method} ${req.url?.slice(0, 100)} failed: ${errorMessage(err)}`);
        if (!res.headersSent) this.send(res, 500, "text/plain; charset=utf-8", "internal error\n");
        else res.destroy();
      });
    });
    server.keepAliveTimeout = 5000;
    server.maxConnections = this.maxEventClients + 48;
    server.on("connection", (socket: Socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
    try {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          server.off("error", reject);
          resolve();
        });
      });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === "EADDRINUSE" ? `port ${port} is already in use; choose another with --observer-port` : code === "EADDRNOTAVAIL" ? `${host} is not an address of this machine` : errorMessage(err);
      this.current = { state: "error", host, port, credentialRequired, message: `the observer port cannot listen on ${host}:${port}: ${why}; trying again in ${Math.round(this.retryMs / 1000)} s` };
      log.warn(this.current.message);
      this.retry = setTimeout(() => {
        if (this.wanted === config) void this.configure(config);
      }, this.retryMs);
      this.retry.unref();
      return this.state();
    }
    server.on("error", (err) => log.warn(`observer server: ${err.message}`));
    this.server = server;
    const actualPort = (server.address() as AddressInfo).port;
    this.bound = { host, port };
    const url = observerUrl(host, actualPort);
    this.current = {
      state: "listening",
      host,
      port: actualPort,
      url,
      credentialRequired,
      message: `listening on ${url}${credentialRequired ? " (the credential is required)" : " (loopback: no credential)"}`,
    };
    log.info(`observer ${this.current.message}`);
    this.ticker = setInterval(() => this.push(), this.pushIntervalMs);
    this.ticker.unref();
    return this.state();
  }

  private async stop(): Promise<void> {
    clearInterval(this.ticker);
    this.ticker = undefined;
    const server = this.server;
    this.server = undefined;
    this.bound = undefined;
    this.credentialValue = undefined;
    if (!server) return;
    for (const stream of this.streams) stream.end();
    this.streams.clear();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
    log.info("observer port closed");
  }

  /** The view as the console gets it (the grant server's CA left out: nothing shows it). */
  private viewJson(): string {
    const { grantServerCa: _ca, ...view } = this.source.view();
    return JSON.stringify(view);
  }

  private push(): void {
    if (this.streams.size === 0) return;
    let data: string;
    try {
      data = this.viewJson();
    } catch (err) {
      log.warn(`cannot compute the network view: ${errorMessage(err)}`);
      return;
    }
    for (const stream of this.streams) stream.write(`data: ${data}\n\n`);
  }

  private send(res: http.ServerResponse, status: number, type: string, body: string | Buffer, headers: Record<string, string> = {}): void {
    res.writeHead(status, { ...SECURITY_HEADERS, "content-type": type, "cache-control": "no-store", ...headers });
    res.end(body);
  }

  private authorized(req: http.IncomingMessage): boolean {
    const expected = this.credentialValue;
    if (!expected) return false;
    return sameCredential(bearer(req), expected) || sameCredential(cookie(req, COOKIE_NAME), expected);
  }

  private sessionCookie(): string {
    return `${COOKIE_NAME}=${encodeURIComponent(this.credentialValue ?? "")}; HttpOnly; SameSite=Strict; Path=/`;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse, credentialRequired: boolean): Promise<void> {
    const url = new URL(req.url ?? "/", "http://observer");
    const method = req.method ?? "GET";
    if (!credentialRequired && !loopbackHostHeader(req.headers.host)) {
      // A page elsewhere whose name was made to resolve to 127.0.0.1 (DNS rebinding) gets nothing.
      this.send(res, 421, "text/plain; charset=utf-8", "this server answers requests for localhost only\n");
      return;
    }
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > MAX_BODY_BYTES || (req.headers["transfer-encoding"] && url.pathname !== "/login")) {
      this.send(res, 413, "text/plain; charset=utf-8", `request bodies are limited to ${MAX_BODY_BYTES} bytes\n`, { connection: "close" });
      return;
    }
    if (credentialRequired) {
      if (url.pathname === "/login" && method === "POST") return this.login(req, res);
      const token = url.searchParams.get("token");
      if (token !== null && method === "GET") {
        if (!sameCredential(token, this.credentialValue ?? "")) {
          this.send(res, 401, "text/html; charset=utf-8", loginPage("That credential is not this site's."));
          return;
        }
        // The credential leaves the address bar (and the history) at once.
        url.searchParams.delete("token");
        this.send(res, 303, "text/plain; charset=utf-8", "signed in\n", { location: url.pathname + url.search, "set-cookie": this.sessionCookie() });
        return;
      }
      if (!this.authorized(req)) {
        const wantsPage = method === "GET" && (url.pathname === "/" || url.pathname === "/index.html");
        if (wantsPage) this.send(res, 401, "text/html; charset=utf-8", loginPage());
        else if (url.pathname === "/assets/app.css") await this.asset(res, ASSETS["/assets/app.css"]!);
        else this.send(res, 401, "text/plain; charset=utf-8", "the credential is required: send \"Authorization: Bearer <credential>\" (see skupper network console)\n", { "www-authenticate": 'Bearer realm="skupper"' });
        return;
      }
    }
    if (method !== "GET" && method !== "HEAD") {
      this.send(res, 405, "text/plain; charset=utf-8", "only GET is served\n", { allow: "GET, HEAD" });
      return;
    }
    switch (url.pathname) {
      case "/healthz":
        this.send(res, 200, "text/plain; charset=utf-8", "ok\n");
        return;
      case "/api/network":
        this.send(res, 200, "application/json; charset=utf-8", this.viewJson());
        return;
      case "/api/events":
        this.events(req, res);
        return;
      case "/metrics":
        return this.metrics(res);
      case "/favicon.ico":
        res.writeHead(204, { ...SECURITY_HEADERS, "cache-control": "max-age=86400" }).end();
        return;
    }
    const asset = ASSETS[url.pathname];
    if (asset) return this.asset(res, asset);
    this.send(res, 404, "text/plain; charset=utf-8", "not found\n");
  }

  private async login(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        this.send(res, 413, "text/plain; charset=utf-8", `request bodies are limited to ${MAX_BODY_BYTES} bytes\n`, { connection: "close" });
        req.destroy();
        return;
      }
      chunks.push(chunk);
    }
    const token = new URLSearchParams(Buffer.concat(chunks).toString("utf8")).get("token") ?? undefined;
    if (!sameCredential(token, this.credentialValue ?? "")) {
      this.send(res, 401, "text/html; charset=utf-8", loginPage("That credential is not this site's."));
      return;
    }
    this.send(res, 303, "text/plain; charset=utf-8", "signed in\n", { location: "/", "set-cookie": this.sessionCookie() });
  }

  private events(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (this.streams.size >= this.maxEventClients) {
      this.send(res, 503, "text/plain; charset=utf-8", `at most ${this.maxEventClients} event streams are served at once\n`, { "retry-after": "5" });
      return;
    }
    res.writeHead(200, { ...SECURITY_HEADERS, "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", "x-accel-buffering": "no" });
    res.write(`retry: 1000\n\ndata: ${this.viewJson()}\n\n`);
    this.streams.add(res);
    const forget = () => this.streams.delete(res);
    req.on("close", forget);
    res.on("error", forget);
  }

  private async metrics(res: http.ServerResponse): Promise<void> {
    const source = this.source.metrics;
    if (!source) {
      this.send(res, 404, "text/plain; charset=utf-8", "metrics not enabled\n");
      return;
    }
    const { contentType, body } = await source();
    this.send(res, 200, contentType, body);
  }

  private async asset(res: http.ServerResponse, asset: { file: string; type: string }): Promise<void> {
    let body = this.assetCache.get(asset.file);
    if (!body) {
      try {
        body = await fs.readFile(path.join(this.assets, asset.file));
      } catch {
        this.send(res, 404, "text/plain; charset=utf-8", `the console is not built (${asset.file} is missing in ${this.assets}); run "npm run build"\n`);
        return;
      }
      this.assetCache.set(asset.file, body);
    }
    this.send(res, 200, asset.type, body, { "cache-control": "no-cache" });
  }
}
