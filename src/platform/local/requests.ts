/**
 * The local request channel: the CLI asks the site process for work that needs the site's keys
 * (a link bundle, revoking access) over a Unix socket the site process serves.
 *
 * - Socket: `runtime/site.sock` when that path has at most 100 bytes (a socket path may have
 *   107), else `$TMPDIR/skupper-<uid>/<16 hex of the SHA-256 of the namespace directory>.sock`
 *   in a directory of mode 0700 that must be ours (it is refused otherwise, by server and
 *   client: another user could otherwise stand in for the site process). The socket is 0600.
 * - Protocol: one request per connection, a JSON object on one line of at most 64 KiB, which
 *   must arrive within 10 s: `{"op":"generate-link","request":{...}}`, `{"op":"revoke-access"}` or
 *   `{"op":"observer-access"}` (where the console is, and its credential).
 *   The answer is one line: `{"ok":true,"result":...}` or
 *   `{"ok":false,"error":{"code","message","exitCode"}}`; then the connection is closed.
 * - Every field is checked (names with the resource-name rules) before the handler sees it;
 *   bad input is answered with an InvalidInputError (exit code 2), which the client re-raises.
 */
import { createHash } from "node:crypto";
import { promises as fs } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { resourceNameProblem, validateResource, type Link, type Secret } from "../../api/index.js";
import { errorMessage, InvalidInputError, SkupperError, TimeoutError, type ExitCode } from "../../common/errors.js";
import { MiB } from "../../common/files.js";
import { logger } from "../../common/log.js";
import type { LinkBundleRequest, ObserverAccess, SiteRequestHandler } from "../types.js";
import { DIR_MODE } from "./files.js";
import type { SitePaths } from "./paths.js";
import { runningPid } from "./pidfile.js";
import { siteNotRunning } from "./runner.js";

const log = logger("requests");

/** The longest request line (without its newline). */
export const MAX_REQUEST_BYTES = 64 * 1024;
/** A request must have arrived this long after the connection was opened. */
export const REQUEST_DEADLINE_MS = 10_000;
/** How long a client waits for the answer (revoking access takes a few seconds). */
export const ANSWER_TIMEOUT_MS = 30_000;
/** The longest socket path used in runtime/; longer ones go to the temporary directory. */
export const MAX_SOCKET_PATH_BYTES = 100;
/** Far above any answer (a link bundle is a few KiB). */
const MAX_ANSWER_BYTES = 4 * MiB;
const SOCKET_MODE = 0o600;
/** How long closing waits for requests being handled (the site process gives itself 5 s to stop). */
const CLOSE_GRACE_MS = 2_000;

export type SiteRequest = { op: "generate-link"; request: LinkBundleRequest } | { op: "revoke-access" } | { op: "observer-access" };

export interface RequestChannelOptions {
  /** Base of the fallback socket directory (default: os.tmpdir()). */
  tmpdir?: string;
}

export interface SocketLocation {
  file: string;
  /** The private directory the socket is in, when it is not in runtime/. */
  privateDirectory?: string;
}

function uid(): number {
  return process.getuid?.() ?? 0;
}

/** Where the socket of a namespace is (see the module comment). */
export function socketLocation(paths: SitePaths, options: RequestChannelOptions = {}): SocketLocation {
  if (Buffer.byteLength(paths.socketFile) <= MAX_SOCKET_PATH_BYTES) return { file: paths.socketFile };
  const dir = path.join(options.tmpdir ?? os.tmpdir(), `skupper-${uid()}`);
  const hash = createHash("sha256").update(paths.root).digest("hex").slice(0, 16);
  return { file: path.join(dir, `${hash}.sock`), privateDirectory: dir };
}

/** Refuses a directory another user could have put there or can write to. */
async function checkPrivateDirectory(dir: string): Promise<void> {
  const stat = await fs.lstat(dir);
  if (!stat.isDirectory() || stat.uid !== uid() || (stat.mode & 0o077) !== 0) {
    throw new SkupperError(
      "ERR_SOCKET_DIRECTORY",
      `${dir} is not a private directory of this user (it must be a directory owned by uid ${uid()} with mode 0700), so the site's socket is not put there; remove it, or set TMPDIR to another directory`,
    );
  }
}

// ---- requests ----

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function onlyKeys(value: Record<string, unknown>, allowed: string[], what: string): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) throw new InvalidInputError(`${what}: unknown field ${JSON.stringify(key.slice(0, 80))}`);
  }
}

function checkName(value: unknown, what: string): string {
  const problem = resourceNameProblem(value);
  if (problem) throw new InvalidInputError(`${what} ${JSON.stringify(String(value).slice(0, 80))} is not valid: ${problem}`);
  return value as string;
}

/** The request in `value`, every field checked; InvalidInputError (exit code 2) if it is not one. */
export function readSiteRequest(value: unknown): SiteRequest {
  if (!isObject(value)) throw new InvalidInputError("a request must be a JSON object");
  if (value.op === "revoke-access") {
    onlyKeys(value, ["op"], "a revoke-access request");
    return { op: "revoke-access" };
  }
  if (value.op === "observer-access") {
    onlyKeys(value, ["op"], "an observer-access request");
    return { op: "observer-access" };
  }
  if (value.op !== "generate-link") throw new InvalidInputError(`unknown request ${JSON.stringify(String(value.op).slice(0, 80))}`);
  onlyKeys(value, ["op", "request"], "a generate-link request");
  const given = value.request ?? {};
  if (!isObject(given)) throw new InvalidInputError("a generate-link request must be a JSON object");
  onlyKeys(given, ["name", "host", "cost", "tlsCredentials"], "a generate-link request");
  const request: LinkBundleRequest = {};
  if (given.name !== undefined) request.name = checkName(given.name, "link name");
  if (given.tlsCredentials !== undefined) request.tlsCredentials = checkName(given.tlsCredentials, "secret name");
  if (given.host !== undefined) {
    if (typeof given.host !== "string" || given.host.length === 0 || given.host.length > 253) {
      throw new InvalidInputError("host must be a non-empty string of at most 253 characters");
    }
    request.host = given.host;
  }
  if (given.cost !== undefined) {
    if (typeof given.cost !== "number" || !Number.isSafeInteger(given.cost) || given.cost < 1) {
      throw new InvalidInputError("cost must be an integer of at least 1");
    }
    request.cost = given.cost;
  }
  return { op: "generate-link", request };
}

// ---- the server (the site process) ----

type Answer = { ok: true; result: unknown } | { ok: false; error: { code: string; message: string; exitCode: ExitCode } };

function errorAnswer(err: unknown): Answer {
  if (err instanceof SkupperError) return { ok: false, error: { code: err.code, message: err.message, exitCode: err.exitCode } };
  log.error(`a request failed: ${(err as Error)?.stack ?? errorMessage(err)}`);
  return { ok: false, error: { code: "ERR_SITE_REQUEST", message: `The site process could not do this: ${errorMessage(err)}`, exitCode: 1 } };
}

export interface ServeOptions extends RequestChannelOptions {
  /** How long a client has to send its request (default 10 s). */
  requestDeadlineMs?: number;
}

/**
 * Serves requests on the namespace's socket until the returned function is called. Only the
 * site process serves (it holds the pid file), so a socket file found at start is a leftover.
 */
export async function serveSiteRequests(paths: SitePaths, handler: SiteRequestHandler, options: ServeOptions = {}): Promise<() => Promise<void>> {
  const { file, privateDirectory } = socketLocation(paths, options);
  if (privateDirectory) {
    await fs.mkdir(privateDirectory, { recursive: true, mode: DIR_MODE });
    await checkPrivateDirectory(privateDirectory);
  } else {
    await fs.mkdir(path.dirname(file), { recursive: true, mode: DIR_MODE });
  }
  try {
    if ((await fs.lstat(file)).isDirectory()) throw new SkupperError("ERR_SOCKET", `${file} is a directory; remove it so the site process can serve requests`);
    await fs.rm(file, { force: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const deadlineMs = options.requestDeadlineMs ?? REQUEST_DEADLINE_MS;
  const connections = new Set<net.Socket>();
  const inFlight = new Set<Promise<void>>();

  const serve = (socket: net.Socket) => {
    connections.add(socket);
    socket.on("close", () => connections.delete(socket));
    socket.on("error", () => undefined); // a client that went away: nothing to answer
    const chunks: Buffer[] = [];
    let size = 0;
    let received = false;
    const answer = (value: Answer) => {
      if (!socket.writable) return;
      // Then closed; once flushed, unread input (an oversized request) is dropped.
      socket.end(`${JSON.stringify(value)}\n`, () => socket.destroy());
    };
    const refuse = (err: SkupperError) => {
      received = true;
      clearTimeout(timer);
      answer(errorAnswer(err));
    };
    const timer = setTimeout(() => {
      if (!received) refuse(new TimeoutError(`no complete request within ${Math.round(deadlineMs / 1000)} s`));
    }, deadlineMs);
    timer.unref();
    socket.on("close", () => clearTimeout(timer));
    socket.on("end", () => {
      if (!received) refuse(new InvalidInputError("the request ended before its newline"));
    });
    socket.on("data", (chunk: Buffer) => {
      if (received) return;
      const newline = chunk.indexOf(10);
      const part = newline === -1 ? chunk : chunk.subarray(0, newline);
      size += part.length;
      if (size > MAX_REQUEST_BYTES) {
        refuse(new InvalidInputError(`a request may have at most ${MAX_REQUEST_BYTES / 1024} KiB`, "ERR_TOO_LARGE"));
        return;
      }
      chunks.push(part);
      if (newline === -1) return;
      received = true;
      clearTimeout(timer);
      const work = handle(Buffer.concat(chunks).toString("utf8")).then(answer);
      inFlight.add(work);
      void work.finally(() => inFlight.delete(work));
    });
  };

  const handle = async (line: string): Promise<Answer> => {
    try {
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        throw new InvalidInputError("a request must be a JSON object on one line");
      }
      const request = readSiteRequest(value);
      if (request.op === "generate-link") return { ok: true, result: await handler.generateLink(request.request) };
      if (request.op === "observer-access") {
        if (!handler.observerAccess) throw new SkupperError("ERR_NOT_SUPPORTED", "This site process has no observer port (web console, metrics)");
        return { ok: true, result: await handler.observerAccess() };
      }
      await handler.revokeAccess();
      return { ok: true, result: {} };
    } catch (err) {
      return errorAnswer(err);
    }
  };

  // Half-open: a client that ends its side after the request still gets the answer.
  const server = net.createServer({ allowHalfOpen: true }, serve);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(file, () => {
      server.off("error", reject);
      resolve();
    });
  });
  server.on("error", (err) => log.error(`serving requests on ${file}: ${err.message}`));
  await fs.chmod(file, SOCKET_MODE);
  const inode = (await fs.lstat(file)).ino;
  log.debug(`serving requests on ${file}`);

  let closing: Promise<void> | undefined;
  return () =>
    (closing ??= (async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Requests being handled get their answer, if it comes soon: stopping must not hang.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.allSettled([...inFlight]), new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_GRACE_MS)))]);
      clearTimeout(timer);
      for (const socket of connections) socket.destroy();
      await closed;
      try {
        if ((await fs.lstat(file)).ino === inode) await fs.rm(file, { force: true });
      } catch {
        // already removed (Node.js removes a socket it listened on when it closes)
      }
    })());
}

// ---- the client (the CLI) ----

export interface RequestOptions extends RequestChannelOptions {
  /** How long to wait for the answer (default 30 s). */
  timeoutMs?: number;
}

/** How long a client waits for a site process that runs but does not serve requests yet (it is starting). */
export const STARTING_SITE_WAIT_MS = 15_000;

/**
 * Sends one request to the site process of `paths` and returns the result it answers. A site
 * process that is starting (it holds its pid file, its socket is not there yet) is waited for.
 */
export async function requestSite(paths: SitePaths, request: SiteRequest, options: RequestOptions = {}): Promise<unknown> {
  const deadline = Date.now() + STARTING_SITE_WAIT_MS;
  for (;;) {
    try {
      return await requestOnce(paths, request, options);
    } catch (err) {
      const starting = err instanceof SkupperError && err.code === "ERR_SITE_NOT_RUNNING" && (await runningPid(paths.pidFile)) !== undefined;
      if (!starting || Date.now() >= deadline) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function requestOnce(paths: SitePaths, request: SiteRequest, options: RequestOptions): Promise<unknown> {
  const checked = readSiteRequest(request);
  const line = JSON.stringify(checked);
  if (Buffer.byteLength(line) > MAX_REQUEST_BYTES) throw new InvalidInputError(`a request may have at most ${MAX_REQUEST_BYTES / 1024} KiB`, "ERR_TOO_LARGE");
  const { file, privateDirectory } = socketLocation(paths, options);
  if (privateDirectory) {
    try {
      await checkPrivateDirectory(privateDirectory);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") throw siteNotRunning(paths.namespace);
      throw err;
    }
  }
  const timeoutMs = options.timeoutMs ?? ANSWER_TIMEOUT_MS;
  const text = await new Promise<string>((resolve, reject) => {
    const socket = net.createConnection(file);
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (result: { text: string } | { error: Error }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if ("text" in result) resolve(result.text);
      else reject(result.error);
    };
    const timer = setTimeout(
      () =>
        finish({
          error: new TimeoutError(`The site process of namespace "${paths.namespace}" did not answer within ${Math.round(timeoutMs / 1000)} s; see ${paths.logFile}`),
        }),
      timeoutMs,
    );
    const complete = () => {
      const all = Buffer.concat(chunks);
      const newline = all.indexOf(10);
      return newline === -1 ? undefined : all.subarray(0, newline).toString("utf8");
    };
    socket.on("connect", () => socket.write(`${line}\n`));
    socket.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_ANSWER_BYTES) {
        finish({ error: new SkupperError("ERR_SITE_REQUEST", `The site process of namespace "${paths.namespace}" answered with more than ${MAX_ANSWER_BYTES / MiB} MiB`) });
        return;
      }
      chunks.push(chunk);
      if (chunk.includes(10)) finish({ text: complete() as string });
    });
    socket.on("end", () =>
      finish({ error: new SkupperError("ERR_SITE_REQUEST", `The site process of namespace "${paths.namespace}" closed the connection without answering; see ${paths.logFile}`) }),
    );
    socket.on("error", (err: NodeJS.ErrnoException) => {
      const answered = complete();
      if (answered !== undefined) finish({ text: answered });
      else if (err.code === "ENOENT" || err.code === "ECONNREFUSED") finish({ error: siteNotRunning(paths.namespace) });
      else finish({ error: new SkupperError("ERR_SITE_REQUEST", `Cannot reach the site process of namespace "${paths.namespace}" (${file}): ${err.message}`) });
    });
  });
  return readAnswer(text, paths.namespace);
}

function readAnswer(text: string, namespace: string): unknown {
  const malformed = () => new SkupperError("ERR_SITE_REQUEST", `The site process of namespace "${namespace}" gave an answer this version does not understand`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw malformed();
  }
  if (!isObject(value)) throw malformed();
  if (value.ok === true) return value.result;
  const error = value.error;
  if (value.ok !== false || !isObject(error) || typeof error.code !== "string" || typeof error.message !== "string") throw malformed();
  throw new SkupperError(error.code, error.message, error.exitCode === 2 ? 2 : 1);
}

/** The client side as a SiteRequestHandler: what the Platform facade's `requests` is. */
export class LocalRequestClient implements SiteRequestHandler {
  constructor(
    readonly paths: SitePaths,
    private readonly options: RequestOptions = {},
  ) {}

  async generateLink(request: LinkBundleRequest): Promise<{ link: Link; secret: Secret }> {
    const result = await requestSite(this.paths, { op: "generate-link", request }, this.options);
    const bad = () => new SkupperError("ERR_SITE_REQUEST", `The site process of namespace "${this.paths.namespace}" answered with something that is not a Link and its Secret`);
    if (!isObject(result)) throw bad();
    const link = validateResource(result.link, "link");
    const secret = validateResource(result.secret, "secret");
    if (!link.ok || link.resource.kind !== "Link" || !secret.ok || secret.resource.kind !== "Secret") throw bad();
    return { link: link.resource, secret: secret.resource };
  }

  async revokeAccess(): Promise<void> {
    await requestSite(this.paths, { op: "revoke-access" }, this.options);
  }

  async observerAccess(): Promise<ObserverAccess> {
    const result = await requestSite(this.paths, { op: "observer-access" }, this.options);
    const bad = () => new SkupperError("ERR_SITE_REQUEST", `The site process of namespace "${this.paths.namespace}" answered with something that is not where its console is`);
    if (!isObject(result) || !["off", "listening", "error"].includes(result.state as string) || typeof result.message !== "string" || typeof result.credentialRequired !== "boolean") throw bad();
    if ((result.url !== undefined && typeof result.url !== "string") || (result.credential !== undefined && typeof result.credential !== "string")) throw bad();
    return {
      state: result.state as ObserverAccess["state"],
      message: result.message,
      credentialRequired: result.credentialRequired,
      ...(typeof result.url === "string" ? { url: result.url } : {}),
      ...(typeof result.credential === "string" ? { credential: result.credential } : {}),
    };
  }
}
