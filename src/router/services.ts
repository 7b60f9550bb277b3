/**
 * Listeners (local TCP entry points for a routing key) and connectors (where a routing key's
 * backend is). A listener's socket is open only while some reachable site has a connector for
 * its key; otherwise clients get "connection refused".
 */
import net from "node:net";
import tls from "node:tls";
import { Backoff } from "../common/backoff.js";
import { admitTlsHandshakes, UnauthenticatedConnectionLimiter } from "../common/connection-limiter.js";
import { logger } from "../common/log.js";
import { SOCKET_HIGH_WATER_MARK, resetSocket } from "./bridge.js";
import { ResetCode } from "./frames.js";
import { strategyKeys, type KeyStrategy } from "./strategy.js";
import {
  backendTlsOptions,
  connectorContext,
  describeBackendTlsFailure,
  listenerContextOptions,
  sameConnectorTls,
  sameListenerTls,
  SERVICE_HANDSHAKE_TIMEOUT_MS,
  SERVICE_MAX_HANDSHAKES,
  type ConnectorTls,
  type ListenerTls,
} from "./service-tls.js";

const log = logger("service");

export interface ListenerConfig {
  name: string;
  host: string;
  port: number;
  routingKey: string;
  /** A MultiKeyListener's keys and how each new connection picks one; routingKey is then unused. */
  strategy?: KeyStrategy;
  /** Clients connect with TLS, terminated here; absent: plain TCP. */
  tls?: ListenerTls;
}

/** The routing keys a listener serves: its strategy's, or its one routing key. */
export function listenerKeys(config: ListenerConfig): string[] {
  return config.strategy ? strategyKeys(config.strategy) : [config.routingKey];
}

export interface ConnectorConfig {
  name: string;
  host: string;
  port: number;
  routingKey: string;
  /** The backend is reached with TLS; absent: plain TCP. */
  tls?: ConnectorTls;
}

/** An application connection the router can tear down (bridged or spliced). */
export interface Connection {
  abort(code: number, message: string): void;
  /** Payload bytes from the client toward the service so far, and back. */
  readonly toService: number;
  readonly fromService: number;
}

/** What a listener or connector counts over its life (open connections add their live bytes). */
export interface ServiceCounts {
  opened: number;
  refused: number;
  reset: number;
  /** Bytes of connections already closed, from the client toward the service and back. */
  closedToService: number;
  closedFromService: number;
}

export const newServiceCounts = (): ServiceCounts => ({ opened: 0, refused: 0, reset: 0, closedToService: 0, closedFromService: 0 });

export interface ListenerHost {
  handleClient(listener: ServiceListener, socket: net.Socket): void;
  listenerChanged(listener: ServiceListener): void;
}

export type ListenerState = "waiting" | "listening" | "error";

export class ServiceListener {
  state: ListenerState = "waiting";
  message = "No matching connectors";
  readonly connections = new Set<Connection>();
  readonly counts = newServiceCounts();
  /** TLS clients that did not complete their handshake (refused, too slow, not TLS). */
  tlsHandshakeFailures = 0;
  private server: net.Server | undefined;
  private reachable = false;
  private retry: NodeJS.Timeout | undefined;
  private readonly backoff = new Backoff({ initialMs: 500, maxMs: 10_000 });

  constructor(
    public config: ListenerConfig,
    private readonly host: ListenerHost,
  ) {}

  get name(): string {
    return this.config.name;
  }

  /** Opens the socket when the key becomes reachable, closes it when it no longer is. */
  setReachable(reachable: boolean): void {
    if (reachable === this.reachable) return;
    this.reachable = reachable;
    if (reachable) this.open();
    else {
      this.closeServer();
      this.setState("waiting", "No matching connectors");
    }
  }

  /**
   * New host or port, or TLS turned on or off: listens anew (open connections stay). New TLS
   * credentials: new clients get them, open connections keep theirs.
   */
  update(config: ListenerConfig): void {
    const previous = this.config;
    // Whether clients must present certificates is the server's option, not its secure context's.
    const rebind =
      config.host !== previous.host || config.port !== previous.port || !config.tls !== !previous.tls || !config.tls?.requireClientCert !== !previous.tls?.requireClientCert;
    this.config = config;
    if (rebind && this.reachable) {
      this.closeServer();
      this.open();
    } else if (config.tls && !sameListenerTls(config.tls, previous.tls) && this.server instanceof tls.Server) {
      this.server.setSecureContext(tlsServerOptions(config.tls));
    }
  }

  /** Removes the listener: stops listening and resets its connections. */
  close(): void {
    this.reachable = false;
    this.closeServer();
    for (const connection of [...this.connections]) connection.abort(ResetCode.Removed, "listener removed");
  }

  private open(): void {
    if (this.server || !this.reachable) return;
    if (this.retry) clearTimeout(this.retry);
    this.retry = undefined;
    const server = this.config.tls ? this.createTlsServer(this.config.tls) : this.createTcpServer();
    this.server = server;
    server.once("error", (err: NodeJS.ErrnoException) => {
      if (this.server !== server) return;
      this.server = undefined;
      server.close();
      const where = `${this.config.host}:${this.config.port}`;
      const message =
        err.code === "EADDRINUSE"
          ? `port ${this.config.port} on ${this.config.host} is already in use`
          : err.code === "EACCES"
            ? `not permitted to listen on ${where}`
            : err.code === "EADDRNOTAVAIL" || err.code === "ENOTFOUND" || err.code === "EAI_AGAIN"
              ? `cannot listen on ${where}: no such local address`
              : `cannot listen on ${where}: ${err.message}`;
      log.warn(`listener ${this.name}: ${message}`);
      this.setState("error", message);
      if (this.reachable) {
        this.retry = setTimeout(() => this.open(), this.backoff.next());
        this.retry.unref();
      }
    });
    server.listen({ host: this.config.host, port: this.config.port, backlog: 4096 }, () => {
      if (this.server !== server) return;
      this.backoff.reset();
      this.setState("listening", "OK");
    });
  }

  private createTcpServer(): net.Server {
    const server = net.createServer({
      allowHalfOpen: true,
      pauseOnConnect: true,
      noDelay: true,
      highWaterMark: SOCKET_HIGH_WATER_MARK,
    });
    server.on("connection", (socket: net.Socket) => this.host.handleClient(this, socket));
    return server;
  }

  /**
   * Terminates the clients' TLS; a client is handed to the router like a TCP one once its
   * handshake is done, within SERVICE_HANDSHAKE_TIMEOUT_MS of being accepted.
   */
  private createTlsServer(credentials: ListenerTls): tls.Server {
    const server = tls.createServer({
      ...tlsServerOptions(credentials),
      allowHalfOpen: true,
      noDelay: true,
      highWaterMark: SOCKET_HIGH_WATER_MARK,
      handshakeTimeout: SERVICE_HANDSHAKE_TIMEOUT_MS,
    } as tls.TlsOptions);
    const failed = (address: string | undefined, reason: string) => {
      this.tlsHandshakeFailures++;
      log.debug(`listener ${this.name}: TLS client ${address ?? "?"} did not connect: ${reason}`);
    };
    const limiter = new UnauthenticatedConnectionLimiter(
      { maxConnections: SERVICE_MAX_HANDSHAKES, timeoutMs: SERVICE_HANDSHAKE_TIMEOUT_MS },
      { evicted: (socket, reason) => failed(socket.remoteAddress, reason), expired: (socket, reason) => failed(socket.remoteAddress, reason) },
    );
    const claim = admitTlsHandshakes(server, limiter, `the TLS handshake did not finish within ${SERVICE_HANDSHAKE_TIMEOUT_MS / 1000} s`);
    server.on("secureConnection", (socket: tls.TLSSocket) => {
      claim(socket)?.authenticated();
      this.host.handleClient(this, socket);
    });
    server.on("tlsClientError", (err: NodeJS.ErrnoException, socket: tls.TLSSocket) => {
      failed(socket.remoteAddress, err.code === "ERR_TLS_HANDSHAKE_TIMEOUT" ? "handshake timed out" : err.message);
      socket.destroy();
    });
    return server;
  }

  private closeServer(): void {
    if (this.retry) clearTimeout(this.retry);
    this.retry = undefined;
    const server = this.server;
    this.server = undefined;
    server?.close();
  }

  private setState(state: ListenerState, message: string): void {
    if (state === this.state && message === this.message) return;
    this.state = state;
    this.message = message;
    this.host.listenerChanged(this);
  }
}

export class LocalConnector {
  readonly connections = new Set<Connection>();
  readonly counts = newServiceCounts();
  /** Made once per TLS credentials and shared by every connection to the backend. */
  private context: tls.SecureContext | undefined;
  private current: ConnectorConfig;
  private lastTlsFailure: string | undefined;

  constructor(config: ConnectorConfig) {
    this.current = config;
  }

  get config(): ConnectorConfig {
    return this.current;
  }

  /** New TLS credentials apply to the next connection; open ones keep theirs. */
  set config(config: ConnectorConfig) {
    if (!sameConnectorTls(config.tls, this.current.tls)) {
      this.context = undefined;
      this.lastTlsFailure = undefined;
    }
    this.current = config;
  }

  /** A TLS failure with the backend: a warning when it is new, then quiet (debug) while it repeats. */
  tlsFailed(failure: string): void {
    if (failure === this.lastTlsFailure) log.debug(`connector ${this.name}: ${failure}`);
    else log.warn(`connector ${this.name}: ${failure}`);
    this.lastTlsFailure = failure;
  }

  /** The secure context for the backend, or undefined for plain TCP. */
  get secureContext(): tls.SecureContext | undefined {
    if (!this.current.tls) return undefined;
    this.context ??= connectorContext(this.current.tls);
    return this.context;
  }

  get name(): string {
    return this.config.name;
  }

  close(): void {
    for (const connection of [...this.connections]) connection.abort(ResetCode.Removed, "connector removed");
  }
}

const BACKEND_CONNECT_TIMEOUT_MS = 10_000;

/**
 * Connects to a connector's backend; `onResult` gets the socket or a sentence saying why not.
 * With TLS the socket is handed over once the handshake is done, within the same deadline.
 */
export function connectBackend(
  connector: LocalConnector,
  onResult: (socket: net.Socket | undefined, error?: string) => void,
): net.Socket {
  const config = connector.config;
  const options: net.NetConnectOpts & { highWaterMark: number } = {
    host: config.host,
    port: config.port,
    allowHalfOpen: true,
    noDelay: true,
    highWaterMark: SOCKET_HIGH_WATER_MARK,
  };
  const secureContext = connector.secureContext;
  const socket =
    config.tls && secureContext ? tls.connect({ ...options, ...backendTlsOptions(config.host, config.tls, secureContext) }) : net.connect(options);
  let settled = false;
  const timer = setTimeout(() => {
    if (settled) return;
    settled = true;
    socket.destroy();
    onResult(undefined, `the backend ${config.host}:${config.port} did not accept the connection within ${BACKEND_CONNECT_TIMEOUT_MS / 1000} s`);
  }, BACKEND_CONNECT_TIMEOUT_MS);
  socket.once(socket instanceof tls.TLSSocket ? "secureConnect" : "connect", () => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    onResult(socket);
  });
  socket.once("error", (err: NodeJS.ErrnoException) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    if (socket instanceof tls.TLSSocket && err.code !== "ECONNREFUSED" && err.code !== "ENOTFOUND") {
      const failure = describeBackendTlsFailure(err, `${config.host}:${config.port}`);
      connector.tlsFailed(failure);
      onResult(undefined, failure);
      return;
    }
    const reason = err.code === "ECONNREFUSED" ? "connection refused" : err.code === "ENOTFOUND" ? "unknown host" : err.message;
    onResult(undefined, `cannot connect to the backend ${config.host}:${config.port}: ${reason}`);
  });
  return socket;
}

/**
 * Client and backend on the same site: the sockets are joined directly, with the same rules as
 * a bridged stream (half-close per direction, RST on failure).
 */
export class LocalSplice implements Connection {
  toService = 0;
  fromService = 0;
  /** Aborted (by either socket failing or closing early, or by the router). */
  aborted = false;
  private ended = 0;
  private done = false;

  constructor(
    private readonly client: net.Socket,
    private readonly backend: net.Socket,
    private readonly onClose: () => void,
  ) {}

  start(): void {
    this.pipe(this.client, this.backend, true);
    this.pipe(this.backend, this.client, false);
    for (const socket of [this.client, this.backend]) {
      socket.on("error", () => this.abort(ResetCode.Cancelled, "connection failed"));
      socket.on("close", () => {
        if (this.ended < 2) this.abort(ResetCode.Cancelled, "connection closed");
        else this.finish();
      });
    }
    this.client.resume();
  }

  abort(_code: number, _message: string): void {
    if (this.done) return;
    this.aborted = true;
    for (const socket of [this.client, this.backend]) if (!socket.destroyed) resetSocket(socket);
    this.finish();
  }

  private pipe(from: net.Socket, to: net.Socket, toService: boolean): void {
    from.on("data", (chunk: Buffer) => {
      if (toService) this.toService += chunk.length;
      else this.fromService += chunk.length;
      if (!to.write(chunk)) {
        from.pause();
        to.once("drain", () => from.resume());
      }
    });
    from.on("end", () => {
      this.ended++;
      to.end();
    });
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.onClose();
  }
}

function tlsServerOptions(credentials: ListenerTls): tls.TlsOptions {
  // Only when asked to, clients must present a certificate the CA issued; a CA alone (as every
  // kubernetes.io/tls Secret carries) asks nothing of them.
  return { ...listenerContextOptions(credentials), requestCert: credentials.requireClientCert === true, rejectUnauthorized: true };
}
