/**
 * Three routers in a line on memory links, for data-plane unit tests: A ─ B ─ C (A and C dial
 * B), a real TCP backend on 127.0.0.1 behind a connector for routing key "svc" on C, and a
 * listener for it on A, so a connection at A crosses B as a relayed stream. Also a client that
 * reports how its connection ended.
 */
import net from "node:net";
import { Router, type RouterOptions } from "../../src/router/router.js";
import { freePort } from "./cli.js";
import { linkRouters, until } from "./memory-link.js";
import { serve, type Backend } from "./network.js";

/** Steps run after the test (the test file's afterEach runs them in reverse). */
export type Cleanup = Array<() => unknown>;

export interface RouterLine {
  a: Router;
  b: Router;
  c: Router;
  /** A ─ B (A dials) and C ─ B (C dials). */
  ab: ReturnType<typeof linkRouters>;
  cb: ReturnType<typeof linkRouters>;
  backend: Backend;
  listenerPort: number;
}

export function testRouter(name: string, cleanup: Cleanup, options: RouterOptions = {}): Router {
  const r = new Router({ siteId: `id-${name}`, siteName: name, version: "test" }, options);
  cleanup.push(() => r.close());
  return r;
}

/** A ─ B ─ C with the backend `handler` behind C's connector `connectorName` (routing key "svc") and a listener "svc" on A. */
export async function routerLine(
  handler: (socket: net.Socket) => void,
  cleanup: Cleanup,
  options: { router?: RouterOptions; connectorName?: string } = {},
): Promise<RouterLine> {
  const a = testRouter("a", cleanup, options.router);
  const b = testRouter("b", cleanup, options.router);
  const c = testRouter("c", cleanup, options.router);
  const ab = linkRouters(a, b);
  const cb = linkRouters(c, b);
  cleanup.push(ab.close, cb.close);
  const backend = await serve(handler);
  cleanup.push(() => backend.close());
  const listenerPort = await freePort();
  c.setConnectors([{ name: options.connectorName ?? "svc", host: "127.0.0.1", port: backend.port, routingKey: "svc" }]);
  a.setListeners([{ name: "svc", host: "127.0.0.1", port: listenerPort, routingKey: "svc" }]);
  await until("A's listener to open (C's connector known at A)", () => a.status().listeners[0]?.state === "listening");
  return { a, b, c, ab, cb, backend, listenerPort };
}

/** Sends `payload`, half-closes, resolves with the reply and how the connection ended ("end", or the error code). */
export function exchangeOutcome(port: number, payload: string): Promise<{ reply: string; end: string }> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true });
    let reply = "";
    socket.on("data", (d) => (reply += d));
    socket.once("end", () => {
      socket.end();
      resolve({ reply, end: "end" });
    });
    socket.once("error", (err: NodeJS.ErrnoException) => resolve({ reply, end: err.code ?? err.message }));
    socket.end(payload);
  });
}
