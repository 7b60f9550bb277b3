/**
 * The Kubernetes platform's ResourceStore: the semantics of `ResourceStore` (see ../types.ts)
 * on the API server, for one namespace.
 *
 * - Every kind but Secret is a custom resource of `skupper.io/v2alpha1` (plural: the kind in
 *   lower case + "s", `RouterAccess` → `routeraccesses`) whose CRD has the status
 *   subresource; Secret is the core v1 Secret.
 * - `generation`, `resourceVersion`, `uid` and `creationTimestamp` are the API server's. With
 *   the status subresource, the server advances a custom resource's generation on changes of
 *   everything but metadata and status, as the contract asks (it also advances it once when a
 *   resource is marked for deletion).
 * - Core Secrets have no generation. This store keeps one in the annotation
 *   `skupper.io/generation`: "1" on create, advanced by `update` when `type`, `data`
 *   (`stringData` folded in) or `immutable` change, and presents it as `metadata.generation`
 *   (the annotation itself is not shown). A client's value of the annotation is ignored.
 * - Status is written only through the `/status` subresource.
 * - A delete is immediate: this store adds no finalizer, so it does not hold deleted
 *   resources (see ResourceStore). A finalizer would block the deletion of a namespace whose
 *   site pod is deleted first, and nothing outside the site process needs cleaning up when a
 *   resource goes (what it makes is owned by the Site). Resources that still carry the
 *   finalizer `skupper.io/site-controller` of earlier versions lose it at `finalize`; it is
 *   not shown in what the store returns, and `update` keeps it whatever a client sends.
 * - Service-account token Secrets (type `kubernetes.io/service-account-token`) are not
 *   Skupper's: list, get and watch leave them out.
 *
 * Watches list each kind, then watch from the list's resourceVersion; a closed connection is
 * resumed from the last resourceVersion seen, and a 410 Gone (history compacted) re-lists and
 * reports the differences. Changes of status alone (and of the finalizer) are not reported.
 */
import {
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  Watch,
  type V1Secret,
} from "@kubernetes/client-node";
import { isDeepStrictEqual } from "node:util";
import { checkKind, checkResourceName, DEFAULT_NAMESPACE, KINDS, pluralName, validateNamespace, type Kind, type Resource, type ResourceByKind } from "../../api/index.js";
import { AlreadyExistsError, ConflictError, errorMessage, InvalidInputError, NotFoundError, SkupperError } from "../../common/errors.js";
import { logger } from "../../common/log.js";
import { MISSING, namespaceMissing, translateApiError } from "./api-errors.js";
import type { ResourceStore, StatusOf, Unwatch, WatchEvent, WatchEventType } from "../types.js";

const log = logger("kube-store");

export const SKUPPER_GROUP = "skupper.io";
export const SKUPPER_VERSION = "v2alpha1";
/** Added to resources by earlier versions; removed by `finalize`. */
export const SKUPPER_FINALIZER = "skupper.io/site-controller";
/** Where a Secret's generation is kept (core Secrets have none of their own). */
export const GENERATION_ANNOTATION = "skupper.io/generation";
const SERVICE_ACCOUNT_TOKEN = "kubernetes.io/service-account-token";
const NOT_SERVICE_ACCOUNT_TOKENS = `type!=${SERVICE_ACCOUNT_TOKEN}`;
/** How often a write is tried again after a conflict it can resolve itself. */
const MAX_CONFLICT_RETRIES = 10;
const WATCH_BACKOFF_MIN_MS = 500;
const WATCH_BACKOFF_MAX_MS = 30_000;

export interface KubernetesConfigOptions {
  /** Path of a kubeconfig file; default: $KUBECONFIG, ~/.kube/config, or the in-cluster config. */
  kubeconfig?: string;
  /** A context of that kubeconfig; default: its current context. */
  context?: string;
}

/** Loads the client configuration, as `--kubeconfig` and `--context` ask. */
export function kubernetesConfig(options: KubernetesConfigOptions = {}): KubeConfig {
  const config = new KubeConfig();
  try {
    if (options.kubeconfig) config.loadFromFile(options.kubeconfig);
    else config.loadFromDefault();
  } catch (err) {
    throw new InvalidInputError(`Cannot read the kubeconfig ${options.kubeconfig ? `"${options.kubeconfig}"` : "(KUBECONFIG or ~/.kube/config)"}: ${errorMessage(err)}`);
  }
  if (options.context) {
    if (!config.getContexts().some((c) => c.name === options.context)) {
      const known = config.getContexts().map((c) => c.name);
      throw new InvalidInputError(`The kubeconfig has no context "${options.context}"${known.length ? ` (it has: ${known.join(", ")})` : ""}`);
    }
    config.setCurrentContext(options.context);
  }
  if (!config.getCurrentCluster()) {
    throw new InvalidInputError("No Kubernetes cluster is configured: set KUBECONFIG or pass --kubeconfig (and --context)");
  }
  return config;
}

/** The namespace the kubeconfig's current context names, or "default". */
export function contextNamespace(config: KubeConfig): string {
  return config.getContextObject(config.getCurrentContext())?.namespace ?? DEFAULT_NAMESPACE;
}

export interface KubernetesResourceStoreOptions {
  /** Default: the namespace of the kubeconfig's current context. */
  namespace?: string;
  /**
   * Asks the API server to close each watch connection after this many seconds (it is then
   * resumed); the server's own default otherwise. For tests of resuming.
   */
  watchTimeoutSeconds?: number;
}

/** A JSON object as the API server sends it. */
interface RawObject {
  apiVersion?: string;
  kind?: string;
  metadata: RawMeta;
  [field: string]: unknown;
}

interface RawMeta {
  name: string;
  namespace?: string;
  resourceVersion?: string;
  generation?: number;
  deletionTimestamp?: string | null;
  finalizers?: string[];
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  [field: string]: unknown;
}

interface RawList {
  items: RawObject[];
  resourceVersion: string;
}

/** The metadata fields only the store (the API server) sets; a client's are dropped. */
const SERVER_METADATA = ["uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields", "selfLink", "namespace"] as const;

type Verb = "get" | "list" | "create" | "update" | "delete" | "watch";

export class KubernetesResourceStore implements ResourceStore {
  readonly namespace: string;
  private readonly custom: CustomObjectsApi;
  private readonly core: CoreV1Api;
  private readonly watchTimeoutSeconds: number | undefined;

  constructor(
    readonly config: KubeConfig,
    options: KubernetesResourceStoreOptions = {},
  ) {
    this.namespace = validateNamespace(options.namespace ?? contextNamespace(config));
    this.custom = config.makeApiClient(CustomObjectsApi);
    this.core = config.makeApiClient(CoreV1Api);
    this.watchTimeoutSeconds = options.watchTimeoutSeconds;
  }

  // ---- reads ----

  async list<K extends Kind>(kind: K): Promise<Array<ResourceByKind[K]>> {
    checkKind(kind);
    const { items } = await this.listRaw(kind);
    return items.map((item) => present(item, kind) as ResourceByKind[K]);
  }

  async get<K extends Kind>(kind: K, name: string): Promise<ResourceByKind[K] | undefined> {
    checkResourceName(kind, name);
    const raw = await this.getRaw(kind, name);
    return raw ? (present(raw, kind) as ResourceByKind[K]) : undefined;
  }

  // ---- writes ----

  async create<R extends Resource>(resource: R): Promise<R> {
    const { kind } = resource;
    const name = resource.metadata.name;
    checkResourceName(kind, name);
    const body = this.desiredBody(resource, undefined);
    if (kind === "Secret") setGeneration(body, 1);
    const created = await this.call("create", kind, name, () =>
      kind === "Secret"
        ? this.core.createNamespacedSecret({ namespace: this.namespace, body: body as V1Secret }).then(fromSecret)
        : this.custom.createNamespacedCustomObject({ ...this.crPath(kind), body }),
    );
    if (created === MISSING) throw namespaceMissing(this.namespace);
    return present(created, kind) as R;
  }

  async update<R extends Resource>(resource: R): Promise<R> {
    const { kind } = resource;
    const name = resource.metadata.name;
    checkResourceName(kind, name);
    const expected = resource.metadata.resourceVersion;
    for (let attempt = 0; ; attempt++) {
      const current = await this.getRaw(kind, name);
      if (!current) throw new NotFoundError(`${kind} "${name}" does not exist in namespace "${this.namespace}"`);
      if (expected !== undefined && expected !== current.metadata.resourceVersion) throw this.conflict(kind, name);
      const body = this.desiredBody(resource, current);
      body.metadata.resourceVersion = current.metadata.resourceVersion;
      try {
        const updated = await this.replace(kind, name, body);
        if (!updated) throw new NotFoundError(`${kind} "${name}" does not exist in namespace "${this.namespace}"`);
        return present(updated, kind) as R;
      } catch (err) {
        // A stale version the caller gave is the caller's conflict; one this store read is retried.
        if (!(err instanceof ConflictError) || expected !== undefined || attempt >= MAX_CONFLICT_RETRIES) throw err;
      }
    }
  }

  async updateStatus<K extends Kind>(kind: K, name: string, status: StatusOf<K>): Promise<ResourceByKind[K] | undefined> {
    checkResourceName(kind, name);
    for (let attempt = 0; ; attempt++) {
      try {
        const current = await this.getRaw(kind, name);
        if (!current) return undefined;
        // Secrets have no status.
        if (kind === "Secret") return present(current, kind) as ResourceByKind[K];
        const body = copy(current);
        if (status === undefined) delete body.status;
        else body.status = copy(status);
        const updated = await this.call("update", kind, name, () =>
          this.custom.replaceNamespacedCustomObjectStatus({ ...this.crPath(kind), name, body }),
        );
        if (updated === MISSING) return undefined;
        return present(updated, kind) as ResourceByKind[K];
      } catch (err) {
        if (!(err instanceof ConflictError) || attempt >= MAX_CONFLICT_RETRIES) throw err;
      }
    }
  }

  async delete(kind: Kind, name: string): Promise<boolean> {
    checkResourceName(kind, name);
    if (kind === "Secret" && !(await this.getRaw(kind, name))) return false;
    const result = await this.call("delete", kind, name, () =>
      kind === "Secret"
        ? this.core.deleteNamespacedSecret({ name, namespace: this.namespace }).then(() => ({}))
        : this.custom.deleteNamespacedCustomObject({ ...this.crPath(kind), name }),
    );
    return result !== MISSING;
  }

  async finalize(kind: Kind, name: string): Promise<void> {
    checkResourceName(kind, name);
    for (let attempt = 0; ; attempt++) {
      const current = await this.getRaw(kind, name);
      if (!current?.metadata.deletionTimestamp || !hasFinalizer(current)) return;
      const body = copy(current);
      body.metadata.finalizers = (current.metadata.finalizers ?? []).filter((f) => f !== SKUPPER_FINALIZER);
      try {
        await this.replace(kind, name, body);
        return;
      } catch (err) {
        if (!(err instanceof ConflictError) || attempt >= MAX_CONFLICT_RETRIES) throw err;
      }
    }
  }

  // ---- watch ----

  watch(onEvent: (event: WatchEvent) => void): Unwatch {
    const watches = KINDS.map((kind) => new KindWatch(this, kind, onEvent));
    for (const w of watches) w.start();
    return () => {
      for (const w of watches) w.stop();
    };
  }

  // ---- the API server, for this store and its watches ----

  /** @internal */
  async listRaw(kind: Kind): Promise<RawList> {
    const result = await this.call("list", kind, undefined, () =>
      kind === "Secret"
        ? this.core.listNamespacedSecret({ namespace: this.namespace, fieldSelector: NOT_SERVICE_ACCOUNT_TOKENS }).then((list) => ({
            metadata: { resourceVersion: list.metadata?.resourceVersion },
            items: list.items.map(fromSecret),
          }))
        : this.custom.listNamespacedCustomObject({ ...this.crPath(kind) }),
    );
    if (result === MISSING) throw namespaceMissing(this.namespace);
    return validList(result, kind);
  }

  /** @internal The path a watch of this kind uses, and its query. */
  watchPath(kind: Kind): { path: string; query: Record<string, string | number | boolean> } {
    const query: Record<string, string | number | boolean> = { allowWatchBookmarks: true };
    if (this.watchTimeoutSeconds !== undefined) query.timeoutSeconds = this.watchTimeoutSeconds;
    if (kind === "Secret") return { path: `/api/v1/namespaces/${this.namespace}/secrets`, query: { ...query, fieldSelector: NOT_SERVICE_ACCOUNT_TOKENS } };
    return { path: `/apis/${SKUPPER_GROUP}/${SKUPPER_VERSION}/namespaces/${this.namespace}/${pluralName(kind)}`, query };
  }

  private async getRaw(kind: Kind, name: string): Promise<RawObject | undefined> {
    const result = await this.call("get", kind, name, () =>
      kind === "Secret"
        ? this.core.readNamespacedSecret({ name, namespace: this.namespace }).then(fromSecret)
        : this.custom.getNamespacedCustomObject({ ...this.crPath(kind), name }),
    );
    if (result === MISSING) return undefined;
    const raw = validObject(result, kind, name);
    if (kind === "Secret" && raw.type === SERVICE_ACCOUNT_TOKEN) return undefined;
    return raw;
  }

  /** PUT of the whole object (not its status); undefined if it is gone. */
  private async replace(kind: Kind, name: string, body: RawObject): Promise<RawObject | undefined> {
    const result = await this.call("update", kind, name, () =>
      kind === "Secret"
        ? this.core.replaceNamespacedSecret({ name, namespace: this.namespace, body: body as V1Secret }).then(fromSecret)
        : this.custom.replaceNamespacedCustomObject({ ...this.crPath(kind), name, body }),
    );
    return result === MISSING ? undefined : validObject(result, kind, name);
  }

  /**
   * What a create or update sends: the client's resource without status and without the
   * metadata the server sets; the finalizer and the Secret generation kept from `current`.
   */
  private desiredBody(resource: Resource, current: RawObject | undefined): RawObject {
    const body = copy(resource) as unknown as RawObject;
    delete body.status;
    const metadata: RawMeta = { ...body.metadata, namespace: this.namespace };
    for (const field of SERVER_METADATA) if (field !== "namespace") delete metadata[field];
    const annotations = { ...(metadata.annotations ?? {}) };
    delete annotations[GENERATION_ANNOTATION];
    if (Object.keys(annotations).length > 0) metadata.annotations = annotations;
    else delete metadata.annotations;
    const finalizers = (metadata.finalizers ?? []).filter((f) => f !== SKUPPER_FINALIZER);
    if (current && hasFinalizer(current)) finalizers.push(SKUPPER_FINALIZER);
    if (finalizers.length > 0) metadata.finalizers = finalizers;
    else delete metadata.finalizers;
    body.metadata = metadata;
    body.apiVersion = resource.kind === "Secret" ? "v1" : `${SKUPPER_GROUP}/${SKUPPER_VERSION}`;
    if (resource.kind === "Secret" && current) {
      const generation = secretGeneration(current);
      setGeneration(body, isDeepStrictEqual(secretDesiredState(body), secretDesiredState(current)) ? generation : generation + 1);
    }
    return body;
  }

  private crPath(kind: Kind) {
    return { group: SKUPPER_GROUP, version: SKUPPER_VERSION, namespace: this.namespace, plural: pluralName(kind) };
  }

  private conflict(kind: Kind, name: string): ConflictError {
    return new ConflictError(`${kind} "${name}" was changed by another command meanwhile; read it again and retry`);
  }

  /**
   * Makes one API call; a 404 for the object (not for its type) is MISSING, every other
   * error a SkupperError with a sentence saying what went wrong.
   */
  private async call<T>(verb: Verb, kind: Kind, name: string | undefined, request: () => Promise<T>): Promise<T | typeof MISSING> {
    try {
      return await request();
    } catch (err) {
      const problem = this.translate(err, verb, kind, name);
      if (problem === MISSING) return MISSING;
      throw problem;
    }
  }

  /** @internal */
  translate(err: unknown, verb: Verb, kind: Kind, name: string | undefined): SkupperError | typeof MISSING {
    const resource = kind === "Secret" ? "secrets" : `${pluralName(kind)}.${SKUPPER_GROUP}`;
    return translateApiError(err, {
      config: this.config,
      namespace: this.namespace,
      verb,
      resource,
      what: name === undefined ? `${kind} resources` : `${kind} "${name}"`,
      alreadyExists: () => new AlreadyExistsError(`${kind} "${name}" already exists in namespace "${this.namespace}"`),
      conflict: () => this.conflict(kind, name ?? ""),
      ...(kind === "Secret"
        ? {}
        : {
            typeMissing: () =>
              new SkupperError(
                "ERR_CRDS_MISSING",
                `The Skupper CRDs are not installed in this cluster (the API server does not know ${resource}). Install them with "kubectl apply -f deploy/kubernetes/crds.yaml"`,
              ),
          }),
    });
  }
}


// ---- watching one kind ----

interface Known {
  fingerprint: string;
  terminating: boolean;
}

/**
 * One kind's list and watch, resumed from the last resourceVersion after the connection
 * closes, re-listed after a 410 Gone; reports what changed compared with what it last saw.
 */
class KindWatch {
  private readonly known = new Map<string, Known>();
  private resourceVersion: string | undefined;
  private stopped = false;
  private abort: AbortController | undefined;
  private timer: NodeJS.Timeout | undefined;
  private backoffMs = WATCH_BACKOFF_MIN_MS;
  /** Changes the watch connection so events of an old one are ignored. */
  private connection = 0;

  constructor(
    private readonly store: KubernetesResourceStore,
    private readonly kind: Kind,
    private readonly onEvent: (event: WatchEvent) => void,
  ) {}

  start(): void {
    void this.relist();
  }

  stop(): void {
    this.stopped = true;
    this.connection++;
    if (this.timer) clearTimeout(this.timer);
    this.abort?.abort();
  }

  private emit(type: WatchEventType, name: string): void {
    if (!this.stopped) this.onEvent({ type, kind: this.kind, name });
  }

  /** Lists the kind and reports the differences from what was known (all of it at first). */
  private async relist(): Promise<void> {
    if (this.stopped) return;
    let list: RawList;
    try {
      list = await this.store.listRaw(this.kind);
    } catch (err) {
      log.warn(`listing ${this.kind} in namespace "${this.store.namespace}" failed (trying again in ${this.backoffMs} ms): ${errorMessage(err)}`);
      this.retry(() => this.relist());
      return;
    }
    if (this.stopped) return;
    const seen = new Set<string>();
    for (const item of list.items) {
      seen.add(item.metadata.name);
      this.observe(item, "list");
    }
    for (const name of [...this.known.keys()]) {
      if (seen.has(name)) continue;
      this.known.delete(name);
      this.emit("deleted", name);
    }
    this.resourceVersion = list.resourceVersion;
    this.backoffMs = WATCH_BACKOFF_MIN_MS;
    void this.connect();
  }

  /** Compares an object with what was known of it and reports the difference, if any. */
  private observe(raw: RawObject, source: "list" | "ADDED" | "MODIFIED"): void {
    const name = raw.metadata.name;
    const previous = this.known.get(name);
    const next: Known = { fingerprint: fingerprint(raw, this.kind), terminating: Boolean(raw.metadata.deletionTimestamp) };
    this.known.set(name, next);
    if (!previous) {
      this.emit(next.terminating ? "deleted" : source === "MODIFIED" ? "modified" : "added", name);
    } else if (next.terminating && !previous.terminating) {
      this.emit("deleted", name);
    } else if (next.fingerprint !== previous.fingerprint) {
      this.emit("modified", name);
    }
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const connection = ++this.connection;
    const { path, query } = this.store.watchPath(this.kind);
    const current = () => connection === this.connection && !this.stopped;
    let gone = false;
    let failed: string | undefined;
    const onEvent = (type: string, object: unknown) => {
      if (!current()) return;
      if (type === "ERROR") {
        const status = object as { code?: number; message?: string } | undefined;
        if (status?.code === 410) gone = true;
        else failed = status?.message ?? JSON.stringify(object);
        this.abort?.abort();
        return;
      }
      if (type === "BOOKMARK") {
        // Only a resourceVersion to resume from; the object has no name or kind of its own.
        const version = (object as { metadata?: { resourceVersion?: unknown } } | undefined)?.metadata?.resourceVersion;
        if (typeof version === "string" && version) this.resourceVersion = version;
        return;
      }
      let raw: RawObject;
      try {
        raw = validObject(object, this.kind);
      } catch (err) {
        log.warn(`ignoring a ${type} event of the ${this.kind} watch: ${errorMessage(err)}`);
        return;
      }
      if (raw.metadata.resourceVersion) this.resourceVersion = raw.metadata.resourceVersion;
      this.backoffMs = WATCH_BACKOFF_MIN_MS;
      if (this.kind === "Secret" && raw.type === SERVICE_ACCOUNT_TOKEN) return;
      if (type === "DELETED") {
        this.known.delete(raw.metadata.name);
        this.emit("deleted", raw.metadata.name);
      } else if (type === "ADDED" || type === "MODIFIED") {
        this.observe(raw, type);
      }
    };
    const onDone = (err: unknown) => {
      if (!current()) return;
      this.connection++;
      const status = (err as { statusCode?: number } | null)?.statusCode;
      if (gone || status === 410) {
        log.debug(`watch of ${this.kind}: resourceVersion ${this.resourceVersion} is too old; listing again`);
        void this.relist();
      } else if (failed !== undefined || (err && !isAbort(err))) {
        log.warn(`watch of ${this.kind} in namespace "${this.store.namespace}" failed (resuming in ${this.backoffMs} ms): ${failed ?? errorMessage(err)}`);
        this.retry(() => this.connect());
      } else {
        // The server closed it (its timeout): resume from the last resourceVersion.
        log.debug(`watch of ${this.kind} in namespace "${this.store.namespace}" closed; resuming from resourceVersion ${this.resourceVersion}`);
        void this.connect();
      }
    };
    try {
      const watch = new Watch(this.store.config);
      const abort = await watch.watch(path, { ...query, resourceVersion: this.resourceVersion }, onEvent, onDone);
      if (current()) this.abort = abort;
      else abort.abort();
    } catch (err) {
      onDone(err);
    }
  }

  private retry(again: () => Promise<void>): void {
    if (this.stopped) return;
    const delay = this.backoffMs * (0.8 + Math.random() * 0.4);
    this.backoffMs = Math.min(this.backoffMs * 2, WATCH_BACKOFF_MAX_MS);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void again();
    }, delay);
  }
}

function isAbort(err: unknown): boolean {
  return err instanceof Error && (err.name === "AbortError" || (err as { type?: string }).type === "aborted");
}

// ---- objects as the API server sends them, and as this store presents them ----

function copy<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

function hasFinalizer(raw: RawObject): boolean {
  return (raw.metadata.finalizers ?? []).includes(SKUPPER_FINALIZER);
}

/** The JSON of a Secret the typed client returned (it turns timestamps into Dates). */
function fromSecret(secret: V1Secret): RawObject {
  const raw = JSON.parse(
    JSON.stringify(secret),
    (_key, value: unknown) => (typeof value === "string" && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/.test(value) ? value.replace(".000Z", "Z") : value),
  ) as RawObject;
  return { apiVersion: "v1", kind: "Secret", ...raw };
}

function validObject(value: unknown, kind: Kind, name?: string): RawObject {
  if (!value || typeof value !== "object") throw new SkupperError("ERR_KUBERNETES", `The Kubernetes API server sent no object for ${kind}${name ? ` "${name}"` : ""}`);
  const raw = value as Partial<RawObject>;
  const metadata = raw.metadata as Partial<RawMeta> | undefined;
  if (raw.kind !== kind || !metadata || typeof metadata.name !== "string" || metadata.name === "" || (name !== undefined && metadata.name !== name)) {
    throw new SkupperError(
      "ERR_KUBERNETES",
      `The Kubernetes API server sent an unexpected object for ${kind}${name ? ` "${name}"` : ""} (kind ${JSON.stringify(raw.kind)}, name ${JSON.stringify(metadata?.name)})`,
    );
  }
  return raw as RawObject;
}

function validList(value: unknown, kind: Kind): RawList {
  const list = value as { items?: unknown; metadata?: { resourceVersion?: unknown } } | undefined;
  if (!list || !Array.isArray(list.items) || typeof list.metadata?.resourceVersion !== "string") {
    throw new SkupperError("ERR_KUBERNETES", `The Kubernetes API server sent no list of ${kind} resources`);
  }
  const items = list.items
    .map((item) => validObject(kind === "Secret" ? { apiVersion: "v1", kind: "Secret", ...(item as object) } : item, kind))
    .filter((item) => !(kind === "Secret" && item.type === SERVICE_ACCOUNT_TOKEN))
    .sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0));
  return { items, resourceVersion: list.metadata.resourceVersion };
}

/** The resource as the store returns it: without what is the API server's or this store's business. */
function present(raw: RawObject, kind: Kind): Resource {
  const resource = copy(raw);
  const metadata = resource.metadata;
  delete metadata.managedFields;
  delete metadata.selfLink;
  if (metadata.finalizers) {
    const finalizers = metadata.finalizers.filter((f) => f !== SKUPPER_FINALIZER);
    if (finalizers.length > 0) metadata.finalizers = finalizers;
    else delete metadata.finalizers;
  }
  if (kind === "Secret") {
    metadata.generation = secretGeneration(raw);
    if (metadata.annotations) {
      delete metadata.annotations[GENERATION_ANNOTATION];
      if (Object.keys(metadata.annotations).length === 0) delete metadata.annotations;
    }
  }
  if (metadata.deletionTimestamp === null) delete metadata.deletionTimestamp;
  return resource as unknown as Resource;
}

/** What a watch compares to tell a change worth reporting: all but status and versions. */
function fingerprint(raw: RawObject, kind: Kind): string {
  const shown = present(raw, kind) as unknown as RawObject;
  delete shown.status;
  delete shown.metadata.resourceVersion;
  return stableJson(shown);
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

function secretGeneration(raw: RawObject): number {
  const value = Number(raw.metadata.annotations?.[GENERATION_ANNOTATION]);
  return Number.isInteger(value) && value > 0 ? value : 1;
}

function setGeneration(body: RawObject, generation: number): void {
  body.metadata.annotations = { ...(body.metadata.annotations ?? {}), [GENERATION_ANNOTATION]: String(generation) };
}

/** A Secret's desired state as the API server stores it: stringData folded into data. */
function secretDesiredState(raw: RawObject): Record<string, unknown> {
  const data: Record<string, string> = { ...((raw.data as Record<string, string> | undefined) ?? {}) };
  for (const [key, value] of Object.entries((raw.stringData as Record<string, string> | undefined) ?? {})) data[key] = Buffer.from(value).toString("base64");
  return { type: (raw.type as string | undefined) ?? "Opaque", data, immutable: raw.immutable ?? false };
}
