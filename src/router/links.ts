/**
 * The TLS ends of links: the dialer of an outgoing link (reconnecting with exponential backoff
 * and jitter) and the server that accepts incoming links (client certificates from the site CA
 * only).
 */
import { X509Certificate } from "node:crypto";
import { isIP } from "node:net";
import tls from "node:tls";
import { Backoff } from "../common/backoff.js";
import { admitTlsHandshakes, UnauthenticatedConnectionLimiter } from "../common/connection-limiter.js";
import { logger } from "../common/log.js";
import { describeLinkFailure, type LinkFailure } from "./errors.js";
import { peerCertificate, type PeerCertificate } from "./identity.js";
import { DEFAULT_HELLO_TIMEOUT_MS, type LinkSession } from "./session.js";

const log = logger("link");

export const LINK_ALPN = "skupper-link/1";
/** Write buffer of a link socket before local readers are paused. */
export const LINK_HIGH_WATER_MARK = 1024 * 1024;
const CONNECT_TIMEOUT_MS = 10_000;

export interface TlsCredentials {
  /** PEM of the CA to trust for the peer. */
  ca: string;
  cert: string;
  key: string;
}

export interface LinkEndpoint {
  host: string;
  port: number;
}

export interface OutgoingLinkConfig {
  name: string;
  /** Tried in order, one per attempt. */
  endpoints: LinkEndpoint[];
  cost: number;
  credentials: TlsCredentials;
  /** The site this link must reach (the Link's `skupper.io/remote-site-id`), if known. */
  remoteSiteId?: string;
}

export type LinkState = "connecting" | "up" | "error";

export interface DialerHost {
  /** Wraps a connected TLS socket in a session owned by the router. */
  startSession(socket: tls.TLSSocket, dialer: LinkDialer, serverCertificate: PeerCertificate | undefined): LinkSession;
  dialerChanged(dialer: LinkDialer): void;
}

export class LinkDialer {
  state: LinkState = "connecting";
  message = "Connecting";
  session: LinkSession | undefined;
  /** When the current state began. */
  since = Date.now();
  /** Times the link came up; its last failure; bytes of its connections that ended. */
  ups = 0;
  lastError: { message: string; at: number } | undefined;
  pastBytesIn = 0;
  pastBytesOut = 0;
  private socket: tls.TLSSocket | undefined;
  private timer: NodeJS.Timeout | undefined;
  private connectTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private attempt = 0;
  private readonly backoff = new Backoff({ initialMs: 250, maxMs: 10_000 });

  constructor(
    public config: OutgoingLinkConfig,
    private readonly host: DialerHost,
  ) {}

  get name(): string {
    return this.config.name;
  }

  start(): void {
    this.connect();
  }

  /** Applies a new configuration: a cost change is sent on the open link; anything else reconnects. */
  update(config: OutgoingLinkConfig): void {
    const previous = this.config;
    this.config = config;
    const sameTransport =
      previous.credentials.ca === config.credentials.ca &&
      previous.credentials.cert === config.credentials.cert &&
      previous.credentials.key === config.credentials.key &&
      previous.remoteSiteId === config.remoteSiteId &&
      JSON.stringify(previous.endpoints) === JSON.stringify(config.endpoints);
    if (sameTransport) {
      if (previous.cost !== config.cost) this.session?.updateCost(config.cost);
      return;
    }
    log.info(`link ${config.name}: configuration changed, reconnecting`);
    this.disconnect("link configuration changed");
    this.backoff.reset();
    this.connect();
  }

  stop(reason = "the link was deleted"): void {
    this.stopped = true;
    this.disconnect(reason);
  }

  sessionUp(): void {
    this.ups++;
    this.backoff.reset();
    this.setState("up", "OK");
    log.info(`link ${this.name}: up to site ${this.session?.peer?.siteName}`);
  }

  sessionDown(session: LinkSession, reason: string): void {
    if (this.session !== session) return;
    this.pastBytesIn += session.bytesIn;
    this.pastBytesOut += session.bytesOut;
    this.session = undefined;
    this.socket = undefined;
    if (this.stopped) return;
    const endpoint = this.currentEndpoint();
    const failure: LinkFailure = session.closeError
      ? describeLinkFailure(session.closeError, endpoint.host, endpoint.port)
      : { kind: session.refused ? "error" : "pending", message: reason };
    log.warn(`link ${this.name}: down: ${failure.message}`);
    this.fail(failure);
  }

  private connect(): void {
    if (this.stopped) return;
    this.timer = undefined;
    const endpoint = this.currentEndpoint();
    const expiry = certificateExpiry(this.config.credentials.cert);
    if (expiry !== undefined && expiry < Date.now()) {
      this.fail({ kind: "error", message: `this link's certificate expired on ${new Date(expiry).toISOString()}; redeem a new token` });
      return;
    }
    const options: tls.ConnectionOptions & { highWaterMark: number } = {
      host: endpoint.host,
      port: endpoint.port,
      ca: this.config.credentials.ca,
      cert: this.config.credentials.cert,
      key: this.config.credentials.key,
      ...(isIP(endpoint.host) ? {} : { servername: endpoint.host }),
      minVersion: "TLSv1.3",
      ciphers: LINK_CIPHERSUITES,
      ALPNProtocols: [LINK_ALPN],
      highWaterMark: LINK_HIGH_WATER_MARK,
    };
    const socket = tls.connect(options);
    this.socket = socket;
    const timeout = setTimeout(() => {
      const err = Object.assign(new Error("connect timeout"), { code: "ERR_LINK_CONNECT_TIMEOUT" });
      socket.destroy(err);
    }, CONNECT_TIMEOUT_MS);
    this.connectTimer = timeout;
    const onError = (err: Error) => {
      clearTimeout(timeout);
      if (this.socket !== socket) return;
      this.socket = undefined;
      this.fail(describeLinkFailure(err, endpoint.host, endpoint.port));
    };
    socket.once("error", onError);
    socket.once("secureConnect", () => {
      clearTimeout(timeout);
      socket.removeListener("error", onError);
      if (this.stopped || this.socket !== socket) {
        socket.destroy();
        return;
      }
      this.session = this.host.startSession(socket, this, peerCertificate(socket));
    });
  }

  private fail(failure: LinkFailure): void {
    this.lastError = { message: failure.message, at: Date.now() };
    this.setState(failure.kind === "error" ? "error" : "connecting", failure.message);
    this.attempt++;
    if (this.stopped) return;
    const delay = this.backoff.next();
    this.timer = setTimeout(() => this.connect(), delay);
    this.timer.unref();
  }

  private disconnect(reason: string): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    // A socket destroyed without an error fires neither of the events that clear this timer.
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    const session = this.session;
    this.session = undefined;
    session?.shutdown(reason);
    this.socket?.destroy();
    this.socket = undefined;
  }

  private currentEndpoint(): LinkEndpoint {
    const endpoints = this.config.endpoints;
    return endpoints[this.attempt % endpoints.length] as LinkEndpoint;
  }

  private setState(state: LinkState, message: string): void {
    if (this.state === state && this.message === message) return;
    if (this.state !== state) this.since = Date.now();
    this.state = state;
    this.message = message;
    this.host.dialerChanged(this);
  }
}

function certificateExpiry(pem: string): number | undefined {
  try {
    return new Date(new X509Certificate(pem).validTo).getTime();
  } catch {
    return undefined;
  }
}

/** How long, and how many, connections to the link port may stay unauthenticated. */
export interface LinkServerLimits {
  /** From TCP accept to the end of the TLS handshake. */
  handshakeTimeoutMs: number;
  /** From the end of the TLS handshake to the peer's accepted HELLO. */
  helloTimeoutMs: number;
  /** Connections accepted but not yet through HELLO; past it the oldest is closed to make room. */
  maxUnauthenticatedConnections: number;
}

export const DEFAULT_LINK_SERVER_LIMITS: Readonly<LinkServerLimits> = Object.freeze({
  handshakeTimeoutMs: 10_000,
  helloTimeoutMs: DEFAULT_HELLO_TIMEOUT_MS,
  maxUnauthenticatedConnections: 64,
});

export interface LinkServerConfig {
  host?: string;
  port: number;
  /** Server certificate and key; `ca` is the site CA that client certificates must chain to. */
  credentials: TlsCredentials;
  /** Defaults: DEFAULT_LINK_SERVER_LIMITS. */
  limits?: Partial<LinkServerLimits>;
}

/** What the link server hands over with a connection that finished its TLS handshake. */
export interface IncomingConnection {
  /** The client certificate, for binding the site id its HELLO announces. */
  certificate: PeerCertificate | undefined;
  helloTimeoutMs: number;
  /** To be called once the peer's HELLO is accepted: the connection stops counting as unauthenticated. */
  authenticated(): void;
}

export interface LinkServerHost {
  acceptSession(socket: tls.TLSSocket, incoming: IncomingConnection): void;
}

/**
 * Accepts incoming links. Only clients with a certificate from the site CA get through, and no
 * client holds a connection longer than the limits allow before its HELLO is accepted.
 */
export class LinkServer {
  private tlsServer: tls.Server | undefined;
  private limiter: UnauthenticatedConnectionLimiter | undefined;
  /** Admitted sockets still in the TLS handshake, by remote address and port. */
  private config: LinkServerConfig | undefined;
  private limits: LinkServerLimits = { ...DEFAULT_LINK_SERVER_LIMITS };
  private rejections = 0;

  constructor(private readonly host: LinkServerHost) {}

  get listening(): boolean {
    return this.tlsServer?.listening ?? false;
  }

  /** The bound port, once listening (useful with port 0). */
  get port(): number | undefined {
    const address = this.tlsServer?.address();
    return address && typeof address === "object" ? address.port : undefined;
  }

  /** Connections accepted and not yet through HELLO. */
  get unauthenticatedConnections(): number {
    return this.limiter?.pending ?? 0;
  }

  /** Binds (or rebinds) as configured. Rejects with the bind error, e.g. EADDRINUSE. */
  async configure(config: LinkServerConfig): Promise<void> {
    const previous = this.config;
    const limits: LinkServerLimits = { ...DEFAULT_LINK_SERVER_LIMITS, ...config.limits };
    const sameBinding =
      previous !== undefined &&
      previous.port === config.port &&
      previous.host === config.host &&
      JSON.stringify(limits) === JSON.stringify(this.limits);
    if (this.tlsServer && sameBinding) {
      if (
        previous.credentials.cert !== config.credentials.cert ||
        previous.credentials.key !== config.credentials.key ||
        previous.credentials.ca !== config.credentials.ca
      ) {
        this.tlsServer.setSecureContext(secureContextOptions(config.credentials));
        this.config = config;
      }
      return;
    }
    await this.close();
    const tlsServer = tls.createServer({
      ...secureContextOptions(config.credentials),
      requestCert: true,
      rejectUnauthorized: true,
      // Node's own timer is an idle timer and, with a 'tlsClientError' listener, does not close the
      // socket; the limiter's deadline below is absolute and does.
      handshakeTimeout: limits.handshakeTimeoutMs,
      highWaterMark: LINK_HIGH_WATER_MARK,
      ALPNProtocols: [LINK_ALPN],
    } as tls.TlsOptions);
    const limiter = new UnauthenticatedConnectionLimiter(
      { maxConnections: limits.maxUnauthenticatedConnections, timeoutMs: limits.handshakeTimeoutMs },
      {
        evicted: (socket, reason) => this.reportRejection(`closed a link connection from ${socket.remoteAddress}: ${reason}`),
        expired: (socket, reason) => this.reportRejection(`closed a link connection from ${socket.remoteAddress}: ${reason}`),
      },
    );
    // The TLS server listens itself: handing it sockets from a plain net.Server in front
    // ('connection' emitted by hand) measurably slowed every link (about a quarter fewer new
    // connections and request/response round trips per second). Its own 'connection' listener,
    // registered first, has wrapped the raw socket by the time this one admits it; destroying
    // the raw socket still closes the connection.
    const claim = admitTlsHandshakes(tlsServer, limiter, `the TLS handshake did not finish within ${seconds(limits.handshakeTimeoutMs)}`);
    tlsServer.on("secureConnection", (socket: tls.TLSSocket) => {
      const pending = claim(socket);
      if (!pending) {
        socket.destroy();
        return;
      }
      pending.restartDeadline(limits.helloTimeoutMs, `the link handshake (HELLO) did not complete within ${seconds(limits.helloTimeoutMs)}`);
      this.host.acceptSession(socket, {
        certificate: peerCertificate(socket),
        helloTimeoutMs: limits.helloTimeoutMs,
        authenticated: () => pending.authenticated(),
      });
    });
    tlsServer.on("tlsClientError", (err, socket) => {
      // Node's own handshake timer is set to the same time as the limiter's deadline, which is
      // the one that counts (from accept) and says why; whichever fires first, the reason logged
      // is the limiter's.
      if ((err as NodeJS.ErrnoException).code === "ERR_TLS_HANDSHAKE_TIMEOUT") return;
      this.reportRejection(`rejected a link connection from ${socket.remoteAddress}: ${err.message}`);
      socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      tlsServer.once("error", reject);
      tlsServer.listen({ port: config.port, ...(config.host ? { host: config.host } : {}), backlog: 511 }, () => {
        tlsServer.removeListener("error", reject);
        resolve();
      });
    });
    tlsServer.on("error", (err) => log.error(`link server: ${err.message}`));
    this.tlsServer = tlsServer;
    this.limiter = limiter;
    this.limits = limits;
    this.config = config;
  }

  async close(): Promise<void> {
    const server = this.tlsServer;
    this.tlsServer = undefined;
    this.config = undefined;
    if (!server) return;
    // Stops accepting at once and frees the port. Not awaited: 'close' waits for every accepted
    // connection to end, and the links already up are the router's to keep or shut down.
    server.close();
  }

  /** One line per rejected client, but not a flood from a scanner: the first 20, then every 100th. */
  private reportRejection(message: string): void {
    if (this.rejections++ < 20 || this.rejections % 100 === 0) log.warn(message);
  }
}


function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

/**
 * AES-128-GCM first: as strong as a link needs, and cheaper per byte than OpenSSL's default
 * AES-256-GCM on the bulk path (see docs/performance.md).
 */
export const LINK_CIPHERSUITES = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

function secureContextOptions(credentials: TlsCredentials): tls.SecureContextOptions {
  return { ca: credentials.ca, cert: credentials.cert, key: credentials.key, minVersion: "TLSv1.3", ciphers: LINK_CIPHERSUITES };
}
