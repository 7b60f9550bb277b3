/**
 * A client of the Docker-compatible REST API (v1.41), which dockerd and `podman system service`
 * both serve, over the engine's Unix socket with plain `http.request`. Only what the container
 * platform needs. Every request is bounded by a timeout; every answer is checked against the
 * shape we rely on before use; failures are SkupperErrors with a code and a sentence.
 */
import http from "node:http";
import { z } from "zod";
import { SkupperError } from "../../../common/errors.js";
import type { EngineEndpoint, EngineName } from "./endpoint.js";

export const API_VERSION = "v1.41";
/** Default bound of one request (a stop is given its own, longer one). */
export const REQUEST_TIMEOUT_MS = 15_000;
/** The most of an answer read: far above any answer we ask for. */
const MAX_ANSWER_BYTES = 8 * 1024 * 1024;

/** Codes of EngineError: callers branch on these. */
export type EngineErrorCode =
  | "ERR_ENGINE_UNAVAILABLE" // no socket, refused, permission denied
  | "ERR_ENGINE_TIMEOUT"
  | "ERR_ENGINE" // the engine answered an error
  | "ERR_ENGINE_ANSWER" // the engine answered something we cannot read
  | "ERR_IMAGE_MISSING";

export class EngineError extends SkupperError {
  constructor(
    code: EngineErrorCode,
    message: string,
    /** The HTTP status the engine answered, if it answered. */
    readonly status?: number,
  ) {
    super(code, message, 1);
  }
}

// ---- the shapes we read ----

const VersionSchema = z.object({
  Version: z.string(),
  ApiVersion: z.string().optional(),
  Components: z.array(z.object({ Name: z.string() })).nullish(),
});
export interface EngineVersion {
  /** "Podman Engine" or "Docker Engine - Community" etc., or the engine name asked for. */
  product: string;
  version: string;
  apiVersion?: string;
}

const ImageSchema = z.object({ Id: z.string() });

const CreatedSchema = z.object({ Id: z.string(), Warnings: z.array(z.string()).nullish() });

const StateSchema = z.object({
  Status: z.string(),
  Running: z.boolean(),
  Restarting: z.boolean().optional(),
  ExitCode: z.number().optional(),
  Pid: z.number().optional(),
  Error: z.string().optional(),
  StartedAt: z.string().optional(),
});
const ContainerSchema = z.object({
  Id: z.string(),
  Name: z.string(),
  RestartCount: z.number().optional(),
  State: StateSchema,
  Config: z.object({ Labels: z.record(z.string(), z.string()).nullish() }),
  /** The networks the container is attached to, by name (podman says NetworkMode "bridge" for any of them). */
  NetworkSettings: z.object({ Networks: z.record(z.string(), z.unknown()).nullish() }).optional(),
});
export type ContainerInfo = z.infer<typeof ContainerSchema>;

const SummarySchema = z.array(
  z.object({
    Id: z.string(),
    Names: z.array(z.string()).nullish(),
    State: z.string().optional(),
    Labels: z.record(z.string(), z.string()).nullish(),
  }),
);
export interface ContainerSummary {
  id: string;
  name: string;
  state: string;
  labels: Record<string, string>;
}

/** The part of POST /containers/create we send (field names as the API spells them). */
export interface ContainerCreateSpec {
  Image: string;
  Entrypoint?: string[];
  Cmd?: string[];
  User?: string;
  WorkingDir?: string;
  Env?: string[];
  Labels?: Record<string, string>;
  Hostname?: string;
  ExposedPorts?: Record<string, Record<string, never>>;
  StopTimeout?: number;
  HostConfig: {
    Binds?: string[];
    NetworkMode?: string;
    Init?: boolean;
    RestartPolicy?: { Name: "no" | "always" | "unless-stopped" | "on-failure"; MaximumRetryCount?: number };
    PortBindings?: Record<string, Array<{ HostIp: string; HostPort: string }>>;
    UsernsMode?: string;
    ExtraHosts?: string[];
  };
}

interface Answer {
  status: number;
  body: string;
}

export class EngineClient {
  constructor(
    readonly endpoint: EngineEndpoint,
    private readonly timeoutMs = REQUEST_TIMEOUT_MS,
  ) {}

  get engine(): EngineName {
    return this.endpoint.engine;
  }

  /** Where the engine is, for messages. */
  describe(): string {
    return `the ${this.engine} engine at ${this.endpoint.socketPath}`;
  }

  async ping(): Promise<void> {
    await this.expect("GET", "/_ping", [200]);
  }

  async version(): Promise<EngineVersion> {
    const { body } = await this.expect("GET", "/version", [200]);
    const parsed = this.parse(VersionSchema, body, "its version");
    // Podman says "Podman Engine", dockerd only "Engine".
    const component = parsed.Components?.[0]?.Name ?? "Engine";
    const product = component.toLowerCase().includes(this.engine) ? component : `${this.engine === "docker" ? "Docker" : "Podman"} ${component}`;
    return { product, version: parsed.Version, ...(parsed.ApiVersion ? { apiVersion: parsed.ApiVersion } : {}) };
  }

  /** The image's id, or undefined if the engine has no such image. */
  async imageId(image: string): Promise<string | undefined> {
    const answer = await this.request("GET", `/images/${encodeURIComponent(image)}/json`);
    if (answer.status === 404) return undefined;
    this.check(answer, [200], `inspecting image ${image}`);
    return this.parse(ImageSchema, answer.body, `image ${image}`).Id;
  }

  /** Creates a container; returns its id. */
  async createContainer(name: string, spec: ContainerCreateSpec): Promise<string> {
    const answer = await this.request("POST", `/containers/create?name=${encodeURIComponent(name)}`, spec);
    if (answer.status === 404 && /image/i.test(engineMessage(answer.body))) {
      throw new EngineError("ERR_IMAGE_MISSING", `${this.describe()} has no image ${spec.Image}. ${buildHint(this.engine)}`, 404);
    }
    this.check(answer, [201], `creating container ${name}`);
    return this.parse(CreatedSchema, answer.body, `the container ${name} it created`).Id;
  }

  async startContainer(name: string): Promise<void> {
    await this.expect("POST", `/containers/${encodeURIComponent(name)}/start`, [204, 304], `starting container ${name}`);
  }

  /** Stops it (SIGTERM, then SIGKILL after `graceSeconds`); false if there is no such container. */
  async stopContainer(name: string, graceSeconds = 10): Promise<boolean> {
    const answer = await this.request("POST", `/containers/${encodeURIComponent(name)}/stop?t=${graceSeconds}`, undefined, (graceSeconds + 15) * 1000);
    if (answer.status === 404) return false;
    this.check(answer, [204, 304], `stopping container ${name}`);
    return true;
  }

  async killContainer(name: string, signal = "SIGKILL"): Promise<void> {
    await this.expect("POST", `/containers/${encodeURIComponent(name)}/kill?signal=${encodeURIComponent(signal)}`, [204], `killing container ${name}`);
  }

  /** Removes it (forcing a running one to stop); false if there was none. */
  async removeContainer(name: string): Promise<boolean> {
    const answer = await this.request("DELETE", `/containers/${encodeURIComponent(name)}?force=true&v=true`, undefined, 30_000);
    if (answer.status === 404) return false;
    this.check(answer, [200, 204], `removing container ${name}`);
    return true;
  }

  /** The container, or undefined if there is none of that name. */
  async inspectContainer(name: string): Promise<ContainerInfo | undefined> {
    const answer = await this.request("GET", `/containers/${encodeURIComponent(name)}/json`);
    if (answer.status === 404) return undefined;
    this.check(answer, [200], `inspecting container ${name}`);
    return this.parse(ContainerSchema, answer.body, `container ${name}`);
  }

  /** Containers (running or not, unless `runningOnly`) carrying every one of `labels`. */
  async listContainers(labels: Record<string, string>, options: { runningOnly?: boolean } = {}): Promise<ContainerSummary[]> {
    const filters = JSON.stringify({ label: Object.entries(labels).map(([k, v]) => `${k}=${v}`) });
    const query = `${options.runningOnly ? "" : "all=true&"}filters=${encodeURIComponent(filters)}`;
    const { body } = await this.expect("GET", `/containers/json?${query}`, [200], "listing containers");
    return this.parse(SummarySchema, body, "its list of containers").map((c) => ({
      id: c.Id,
      name: (c.Names?.[0] ?? c.Id).replace(/^\//, ""),
      state: c.State ?? "unknown",
      labels: c.Labels ?? {},
    }));
  }

  /** Creates a network unless one of that name exists. */
  async ensureNetwork(name: string, labels: Record<string, string>): Promise<void> {
    const answer = await this.request("GET", `/networks/${encodeURIComponent(name)}`);
    if (answer.status === 200) return;
    if (answer.status !== 404) this.check(answer, [200], `inspecting network ${name}`);
    const created = await this.request("POST", "/networks/create", { Name: name, Labels: labels, CheckDuplicate: true });
    if (created.status === 409) return; // made meanwhile
    this.check(created, [200, 201], `creating network ${name}`);
  }

  /** Removes a network; false if there was none of that name. */
  async removeNetwork(name: string): Promise<boolean> {
    const answer = await this.request("DELETE", `/networks/${encodeURIComponent(name)}`);
    if (answer.status === 404) return false;
    this.check(answer, [200, 204], `removing network ${name}`);
    return true;
  }

  // ---- plumbing ----

  private async expect(method: string, path: string, statuses: number[], doing?: string): Promise<Answer> {
    const answer = await this.request(method, path);
    this.check(answer, statuses, doing ?? `${method} ${path}`);
    return answer;
  }

  private check(answer: Answer, statuses: number[], doing: string): void {
    if (statuses.includes(answer.status)) return;
    const message = engineMessage(answer.body) || `HTTP ${answer.status}`;
    throw new EngineError("ERR_ENGINE", `${capitalize(this.describe())} failed ${doing}: ${message}`, answer.status);
  }

  private parse<T>(schema: z.ZodType<T>, body: string, what: string): T {
    let json: unknown;
    try {
      json = JSON.parse(body);
    } catch {
      throw new EngineError("ERR_ENGINE_ANSWER", `${capitalize(this.describe())} answered something that is not JSON for ${what}: ${body.slice(0, 200)}`);
    }
    const result = schema.safeParse(json);
    if (!result.success) {
      const issue = result.error.issues[0];
      throw new EngineError(
        "ERR_ENGINE_ANSWER",
        `${capitalize(this.describe())} answered ${what} in a shape this version cannot read (${issue ? `${issue.path.join(".") || "(top)"}: ${issue.message}` : "invalid"}); is it a Docker-compatible API (v1.41)?`,
      );
    }
    return result.data;
  }

  request(method: string, path: string, body?: unknown, timeoutMs = this.timeoutMs): Promise<Answer> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise<Answer>((resolve, reject) => {
      let settled = false;
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.destroy();
        reject(err);
      };
      const req = http.request(
        {
          socketPath: this.endpoint.socketPath,
          method,
          path: `/${API_VERSION}${path}`,
          headers: { Host: "docker", ...(payload ? { "Content-Type": "application/json", "Content-Length": payload.length } : {}) },
          agent: false,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on("data", (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_ANSWER_BYTES) fail(new EngineError("ERR_ENGINE_ANSWER", `${capitalize(this.describe())} answered more than ${MAX_ANSWER_BYTES} bytes to ${method} ${path}`));
            else chunks.push(chunk);
          });
          res.on("end", () => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") });
          });
          res.on("error", (err) => fail(this.connectionError(err)));
        },
      );
      const timer = setTimeout(
        () => fail(new EngineError("ERR_ENGINE_TIMEOUT", `${capitalize(this.describe())} did not answer ${method} ${path} within ${Math.round(timeoutMs / 1000)} s; is it overloaded or hung?`)),
        timeoutMs,
      );
      req.on("error", (err) => fail(this.connectionError(err)));
      req.end(payload);
    });
  }

  private connectionError(err: NodeJS.ErrnoException): EngineError {
    const socket = this.endpoint.socketPath;
    const how =
      err.code === "ENOENT"
        ? "there is no such socket"
        : err.code === "ECONNREFUSED"
          ? "nothing accepts connections on it"
          : err.code === "EACCES"
            ? "permission denied (run as a user allowed to use the engine)"
            : err.message;
    const source = this.endpoint.source === "default" ? "the default socket" : `${this.endpoint.source}`;
    return new EngineError(
      "ERR_ENGINE_UNAVAILABLE",
      `Cannot reach the ${this.engine} engine at ${socket} (${source}): ${how}. ${startHint(this.engine, socket)}`,
    );
  }
}

/** How to start the engine's API service, for messages. */
export function startHint(engine: EngineName, socket: string): string {
  return engine === "podman"
    ? `Start its API service ("systemctl enable --now podman.socket", or "podman system service --time=0 unix://${socket} &"), or set CONTAINER_ENDPOINT=unix:///path/to/podman.sock.`
    : `Start dockerd (it listens on ${socket} unless told otherwise), or set CONTAINER_ENDPOINT (or DOCKER_HOST) to unix:///path/to/docker.sock.`;
}

/** How to make the project's image without a registry, for messages. */
export function buildHint(engine: EngineName): string {
  return `Build it with "npm run image -- --engine ${engine}" in the skupper-ts source directory${
    engine === "docker" ? ' (or build with podman and load it: "podman save IMAGE | docker load")' : ""
  }, or set SKUPPER_IMAGE to an image the engine has.`;
}

/** The engine's error message from an error answer (`{"message": "..."}`), else the text itself. */
export function engineMessage(body: string): string {
  try {
    const parsed = JSON.parse(body) as unknown;
    if (parsed && typeof parsed === "object" && typeof (parsed as { message?: unknown }).message === "string") return (parsed as { message: string }).message.trim();
  } catch {
    // not JSON
  }
  return body.trim().slice(0, 500);
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
