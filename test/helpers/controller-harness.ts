/**
 * A SiteController on the in-memory platform with a fake router and a fake grant server, for
 * reconciler tests: resource builders, a record of every status write (the memory store keeps
 * only the last one, and an Error shown between two attempts would otherwise be missed), and
 * bounded waits.
 */
import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import {
  API_VERSION,
  type AccessGrant,
  type AccessToken,
  type Connector,
  type Kind,
  type Link,
  type Listener,
  type ResourceByKind,
  type RouterAccess,
  type Secret,
  type Site,
} from "../../src/api/index.js";
import { createCA, type Credentials } from "../../src/certs/index.js";
import { setLogSink } from "../../src/common/log.js";
import { SiteController, type ControllerOptions, type GrantServerPort } from "../../src/controller/index.js";
import { GrantServer, type GrantLedger } from "../../src/grants/index.js";
import { memorySiteHost, type MemorySiteHost } from "../../src/platform/memory/index.js";
import type { SiteNetwork, StatusOf } from "../../src/platform/index.js";
import { fakeDataPlaneFactory, type FakeDataPlane } from "./fake-data-plane.js";
import { tlsSecret as secretFromCa } from "./grant-fixtures.js";

/** Log lines of the controller, for the message of a failed wait. */
export const logLines: string[] = [];
setLogSink((line) => {
  logLines.push(line);
  if (logLines.length > 2000) logLines.splice(0, 1000);
});

export const VERSION = "9.9.9-test";
/** Retries after 10–20 ms, then up to 100 ms: a failed reconcile heals within a test. */
export const BACKOFF = { initialMs: 20, maxMs: 100 } as const;
export const LINK_PORT = 45671;
export const GRANT_PORT = 49090;
export const HOST = "127.0.0.1";

/** The grant server as the controller drives it, without sockets. */
export class FakeGrantServer implements GrantServerPort {
  readonly configs: Array<{ port: number; host?: string; cert: string; key: string }> = [];
  closes = 0;
  listening = false;
  /** Makes the next `configure` reject with this error (`failConfigureTimes` times, default once). */
  failConfigure: Error | undefined;
  failConfigureTimes = 1;

  async configure(config: { port: number; host?: string; cert: string; key: string }): Promise<void> {
    const error = this.failConfigure;
    if (error) {
      if (--this.failConfigureTimes <= 0) {
        this.failConfigure = undefined;
        this.failConfigureTimes = 1;
      }
      throw error;
    }
    this.configs.push({ ...config });
    this.listening = true;
  }

  async close(): Promise<void> {
    this.closes++;
    this.listening = false;
  }
}

export interface StatusRecord {
  kind: Kind;
  name: string;
  status: Record<string, unknown> | undefined;
  error?: string;
}

export class Harness {
  readonly host: MemorySiteHost;
  readonly planes = fakeDataPlaneFactory();
  readonly grantServer = new FakeGrantServer();
  /** The ledger the last controller gave its grant server (the AccessGrant book). */
  ledger: GrantLedger | undefined;
  controller: SiteController | undefined;
  /** Every status write attempted, in order, with what it tried to write. */
  readonly statusWrites: StatusRecord[] = [];
  /** Every key the controller's queue processed, in order (see `observe`). */
  readonly processed: string[] = [];
  private readonly options: Partial<ControllerOptions>;

  private readonly realGrantServer: boolean;

  /** `realGrantServer`: the controller runs a real GrantServer (on the port its Site says) instead of the fake. */
  constructor(options: { namespace?: string; siteId?: string; controller?: Partial<ControllerOptions>; realGrantServer?: boolean; network?: SiteNetwork } = {}) {
    this.realGrantServer = options.realGrantServer ?? false;
    this.host = memorySiteHost({
      ...(options.namespace ? { namespace: options.namespace } : {}),
      siteId: options.siteId ?? "00000000-0000-4000-8000-0000000000aa",
      ...(options.network ? { network: options.network } : {}),
    });
    this.options = options.controller ?? {};
    const store = this.host.resources;
    const updateStatus = store.updateStatus.bind(store);
    store.updateStatus = (async (kind: Kind, name: string, status: unknown) => {
      const record: StatusRecord = { kind, name, status: status === undefined ? undefined : structuredClone(status as Record<string, unknown>) };
      this.statusWrites.push(record);
      try {
        return await updateStatus(kind, name, status as never);
      } catch (err) {
        record.error = (err as Error).message;
        throw err;
      }
    }) as typeof store.updateStatus;
  }

  get resources() {
    return this.host.resources;
  }

  /** The newest fake router (the one the active site runs). */
  get router(): FakeDataPlane {
    const router = this.planes.instances.at(-1);
    if (!router) throw new Error("no router was started");
    return router;
  }

  async start(options: Partial<ControllerOptions> = {}): Promise<SiteController> {
    const controller = new SiteController(this.host, {
      version: VERSION,
      createDataPlane: this.planes.factory,
      createGrantServer: (ledger) => {
        this.ledger = ledger;
        return this.realGrantServer ? new GrantServer(ledger) : this.grantServer;
      },
      backoff: BACKOFF,
      ...this.options,
      ...options,
    });
    this.controller = controller;
    this.observe(controller);
    await controller.start();
    return controller;
  }

  /**
   * Records the keys the controller's queue hands over (`processed`), and lets timers and I/O run
   * every 50 keys: the memory store answers in microtasks, so a reconcile that keeps queueing
   * itself would otherwise starve every timer, the bounded waits of the tests included, and hang
   * the test instead of failing it.
   */
  private observe(controller: SiteController): void {
    const internal = controller as unknown as { process?: (key: string) => Promise<unknown> };
    const process = internal.process;
    if (typeof process !== "function") return;
    internal.process = async (key: string) => {
      this.processed.push(key);
      if (this.processed.length % 50 === 0) await new Promise((resolve) => setImmediate(resolve));
      return process.call(controller, key);
    };
  }

  async stop(): Promise<void> {
    const controller = this.controller;
    this.controller = undefined;
    await controller?.stop();
  }

  /** Stops the controller and starts a new one on the same host (resources, credentials, state). */
  async restart(options: Partial<ControllerOptions> = {}): Promise<SiteController> {
    await this.stop();
    return this.start(options);
  }

  async settled(): Promise<void> {
    await this.settledWithin(5000, "the controller to settle");
  }

  /** `controller.settled()`, bounded: a controller that never settles fails the test instead of hanging it. */
  private async settledWithin(ms: number, what: string): Promise<void> {
    const controller = this.controller;
    if (!controller) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the controller did not settle within ${ms} ms (waiting for ${what})\n--- controller log ---\n${logLines.slice(-15).join("\n")}`)), ms);
    });
    try {
      await Promise.race([controller.settled(), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  get<K extends Kind>(kind: K, name: string): Promise<ResourceByKind[K] | undefined> {
    return this.host.resources.get(kind, name);
  }

  async status<K extends Kind>(kind: K, name: string): Promise<StatusOf<K> | undefined> {
    const resource = (await this.get(kind, name)) as { status?: StatusOf<K> } | undefined;
    return resource?.status;
  }

  /** Status writes attempted for one resource. */
  writesOf(kind: Kind, name: string): StatusRecord[] {
    return this.statusWrites.filter((w) => w.kind === kind && w.name === name);
  }

  /** Waits (bounded) until `check` returns something other than undefined/false; settles first each time. */
  async until<T>(description: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 5000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (;;) {
      await this.settledWithin(Math.max(100, deadline - Date.now()), description);
      try {
        const value = await check();
        if (value !== undefined && value !== false) return value as T;
        last = undefined;
      } catch (err) {
        last = err;
      }
      if (Date.now() > deadline) {
        const tail = logLines.slice(-15).join("\n");
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}${last ? `: ${(last as Error).message}` : ""}\n--- controller log ---\n${tail}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  /** Waits until the resource's status has `status.status === want` (and `extra` holds). */
  untilStatus<K extends Kind>(kind: K, name: string, want: "Ready" | "Pending" | "Error", extra: (status: StatusOf<K> & CommonFields) => boolean = () => true, timeoutMs = 5000): Promise<StatusOf<K> & CommonFields> {
    let seen: unknown;
    return this.until(`${kind} "${name}" to be ${want}`, async () => {
      const status = (await this.status(kind, name)) as (StatusOf<K> & CommonFields) | undefined;
      seen = status;
      return status?.status === want && extra(status) ? status : undefined;
    }, timeoutMs).catch((err: Error) => {
      throw new Error(`${err.message}\nlast status of ${kind} "${name}": ${JSON.stringify(seen, null, 1)}`);
    });
  }
}

export interface CommonFields {
  status?: "Pending" | "Ready" | "Error";
  message?: string;
  observedGeneration?: number;
  conditions?: Array<{ type: string; status: string; reason: string; message: string; lastTransitionTime: string }>;
}

/** A harness whose controller is stopped when the test ends. */
export function harness(t: TestContext, options: ConstructorParameters<typeof Harness>[0] = {}): Harness {
  const h = new Harness(options);
  t.after(() => h.stop());
  return h;
}

/** A started controller with an active Site (`site("west")` unless another is given). */
export async function withSite(t: TestContext, active: Site = site("west")): Promise<Harness> {
  const h = harness(t);
  await h.resources.create(active);
  await h.start();
  await h.untilStatus("Site", active.metadata.name, "Ready");
  return h;
}

/** What a failed reconcile says at its end. */
export const RETRY = /; retrying in 1 s$/;

/**
 * Asserts that a status was written showing a failed reconcile: overall Error, and a Configured
 * condition False (reason Error) whose message matches `message` and says when the retry comes.
 */
export function assertFailureShown(h: Harness, kind: Kind, name: string, message: RegExp): void {
  const shown = h.writesOf(kind, name).find((w) => w.error === undefined && w.status?.status === "Error" && RETRY.test(String(w.status?.message)));
  assert.ok(shown, `no Error status with a retry was written for ${kind}/${name}; messages written: ${JSON.stringify(h.writesOf(kind, name).map((w) => w.status?.message))}`);
  const configured = condition(shown.status as CommonFields, "Configured");
  assert.equal(configured?.status, "False");
  assert.equal(configured?.reason, "Error");
  assert.match(configured?.message ?? "", message);
  assert.match(configured?.message ?? "", RETRY);
  assert.equal(shown.status?.message, configured?.message);
}

/** The named condition of a status. */
export function condition(status: CommonFields | undefined, type: string): { status: string; reason: string; message: string } | undefined {
  return status?.conditions?.find((c) => c.type === type);
}

/** Counts of status writes in the store's log, by `Kind/name`. */
export function statusWriteCounts(h: Harness, from = 0): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const record of h.resources.log.slice(from)) {
    if (record.op !== "updateStatus") continue;
    const key = `${record.kind}/${record.name}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

// ---- resources ----

export function site(name: string, spec: Site["spec"] = {}): Site {
  return { apiVersion: API_VERSION, kind: "Site", metadata: { name }, spec };
}

/** A Site with link access on, advertising 127.0.0.1 on fixed ports. */
export function linkAccessSite(name: string, settings: Record<string, string> = {}): Site {
  return site(name, {
    linkAccess: "default",
    settings: { "advertised-hosts": HOST, "link-port": String(LINK_PORT), "grant-server-port": String(GRANT_PORT), ...settings },
  });
}

export function listener(name: string, port = 8080, routingKey = name): Listener {
  return { apiVersion: API_VERSION, kind: "Listener", metadata: { name }, spec: { routingKey, host: HOST, port } };
}

export function connector(name: string, port = 8080, routingKey = name): Connector {
  return { apiVersion: API_VERSION, kind: "Connector", metadata: { name }, spec: { routingKey, host: HOST, port } };
}

export function link(name: string, options: { port?: number; cost?: number; secret?: string; host?: string } = {}): Link {
  return {
    apiVersion: API_VERSION,
    kind: "Link",
    metadata: { name },
    spec: {
      endpoints: [{ name: "inter-router", host: options.host ?? "192.0.2.10", port: String(options.port ?? 55671) }],
      ...(options.secret ? { tlsCredentials: options.secret } : {}),
      ...(options.cost !== undefined ? { cost: options.cost } : {}),
    },
  };
}

export function grant(name: string, spec: AccessGrant["spec"] = {}): AccessGrant {
  return { apiVersion: API_VERSION, kind: "AccessGrant", metadata: { name }, spec };
}

export function token(name: string, spec: AccessToken["spec"]): AccessToken {
  return { apiVersion: API_VERSION, kind: "AccessToken", metadata: { name }, spec };
}

export function routerAccess(name: string, port: number, hosts: string[] = [HOST]): RouterAccess {
  return {
    apiVersion: API_VERSION,
    kind: "RouterAccess",
    metadata: { name },
    spec: { roles: [{ name: "inter-router", port }], tlsCredentials: `${name}-tls`, subjectAlternativeNames: hosts },
  };
}

let remoteCa: Promise<Credentials> | undefined;

/** A TLS Secret as a remote site's CA would issue it (one CA per test run, a fresh client certificate each call). */
export async function tlsSecret(name: string): Promise<Secret> {
  remoteCa ??= createCA("remote site CA");
  return secretFromCa({ siteCa: await remoteCa }, name, {}, name);
}
