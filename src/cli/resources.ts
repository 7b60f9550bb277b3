/**
 * Reading and writing resources through the platform's store. The store advances
 * `metadata.generation` and `metadata.resourceVersion`; the CLI never sets them. Writes based on a
 * read carry the read's resourceVersion and are redone on a conflict, so concurrent commands
 * never lose an update.
 */
import { activeSiteOf, desiredState, type Kind, type Resource, type ResourceByKind, type Site } from "../api/index.js";
import { SkupperError, systemErrorCode } from "../common/errors.js";
import type { CliContext } from "./context.js";

/** Attempts of a write that keeps meeting concurrent writes (or a resource being deleted). */
const MAX_ATTEMPTS = 50;

function hasCode(err: unknown, code: "ERR_CONFLICT" | "ERR_ALREADY_EXISTS" | "ERR_NOT_FOUND"): boolean {
  return systemErrorCode(err) === code;
}

/** A short random pause, so writers that collided do not collide again in step. */
function pause(ms = 5 + Math.random() * 20): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Deleted, and kept only until the site process has acted on the delete. */
function isDeleting(resource: Resource): boolean {
  return !!resource.metadata.deletionTimestamp;
}

/** The desired state as a client sends it: without status and what the store manages. */
function desired<R extends Resource>(resource: R, resourceVersion?: string): R {
  const state = desiredState(resource);
  return resourceVersion === undefined ? state : { ...state, metadata: { ...state.metadata, resourceVersion } };
}

/**
 * Creates a resource; throws AlreadyExistsError if it exists. Of several commands creating the
 * same resource at once, exactly one succeeds.
 */
export async function createResource<R extends Resource>(ctx: CliContext, resource: R): Promise<R> {
  return ctx.platform.resources.create(desired(resource));
}

/** Creates the resource, or replaces the desired state of the one of its kind and name. */
export async function saveResource(ctx: CliContext, resource: Resource): Promise<{ created: boolean }> {
  const store = ctx.platform.resources;
  const { kind, metadata: { name } } = resource;
  for (let attempt = 1; ; attempt++) {
    try {
      const existing = await store.get(kind, name);
      if (!existing) {
        await store.create(desired(resource));
        return { created: true };
      }
      if (!isDeleting(existing)) {
        await store.update(desired(resource, existing.metadata.resourceVersion));
        return { created: false };
      }
      // Deleted, not yet finalized: it is gone soon, then this one can be created.
      if (attempt >= MAX_ATTEMPTS) {
        throw new SkupperError("ERR_BEING_DELETED", `${kind} "${name}" is being deleted; apply it again once it is gone`);
      }
      await pause(100);
      continue;
    } catch (err) {
      // Created, changed or deleted by someone else since the read: read again.
      const raced = hasCode(err, "ERR_ALREADY_EXISTS") || hasCode(err, "ERR_CONFLICT") || hasCode(err, "ERR_NOT_FOUND");
      if (!raced || attempt >= MAX_ATTEMPTS) throw err;
    }
    await pause();
  }
}

/**
 * Read-modify-write of one resource: `change` gets the stored resource and returns it changed;
 * when someone else wrote the resource in between, it is read and changed again. `change` may
 * throw to refuse. Returns the resource as stored, or undefined if there is none to update.
 */
export async function updateResource<K extends Kind>(
  ctx: CliContext,
  kind: K,
  name: string,
  change: (existing: ResourceByKind[K]) => ResourceByKind[K],
): Promise<ResourceByKind[K] | undefined> {
  const store = ctx.platform.resources;
  for (let attempt = 1; ; attempt++) {
    const existing = await store.get(kind, name);
    if (!existing || isDeleting(existing)) return undefined;
    try {
      return await store.update(desired(change(existing), existing.metadata.resourceVersion));
    } catch (err) {
      if (hasCode(err, "ERR_NOT_FOUND")) return undefined;
      if (!hasCode(err, "ERR_CONFLICT") || attempt >= MAX_ATTEMPTS) throw err;
    }
    await pause();
  }
}

/**
 * The resource as users see it: in its namespace (files on disk do not name it; `-o yaml` shows
 * it, as on Kubernetes), with its status only when the status is about the current desired
 * state (the site process has acted on this generation), else without it.
 */
function asShown<R extends Resource>(ctx: CliContext, resource: R): R {
  const { name, namespace, ...metadata } = resource.metadata;
  const shown = namespace ? resource : { ...resource, metadata: { name, namespace: ctx.namespace, ...metadata } };
  const status = (shown as { status?: { observedGeneration?: number } }).status;
  if (status === undefined || status.observedGeneration === shown.metadata.generation) return shown;
  const { status: _stale, ...rest } = shown as R & { status?: unknown };
  return rest as R;
}

/** A resource as users see it, or undefined if there is none or it is being deleted. */
export async function current<K extends Kind>(ctx: CliContext, kind: K, name: string): Promise<ResourceByKind[K] | undefined> {
  const resource = await ctx.platform.resources.get(kind, name);
  return resource && !isDeleting(resource) ? asShown(ctx, resource) : undefined;
}

/** All resources of a kind as users see them (see `current`), by name. */
export async function listCurrent<K extends Kind>(ctx: CliContext, kind: K): Promise<Array<ResourceByKind[K]>> {
  return (await ctx.platform.resources.list(kind))
    .filter((resource) => !isDeleting(resource))
    .map((resource) => asShown(ctx, resource))
    .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
}

/** The Site that runs in the namespace when there are several: the one the site process chose (see api/sites.ts). */
export async function activeSite(ctx: CliContext): Promise<Site | undefined> {
  const site = activeSiteOf((await ctx.platform.resources.list("Site")).filter((s) => !isDeleting(s)));
  return site && asShown(ctx, site);
}

export async function requireSite(ctx: CliContext): Promise<Site> {
  const site = await activeSite(ctx);
  if (!site) {
    throw new SkupperError(
      "ERR_NO_SITE",
      `There is no site in namespace "${ctx.namespace}". Create one with "skupper${ctx.nsFlag} site create <name>".`,
    );
  }
  return site;
}

export function statusOf(resource: Resource): { status: string; message: string } {
  const status = (resource as { status?: { status?: string; message?: string } }).status;
  return { status: status?.status ?? "Pending", message: status?.message ?? "Not yet processed" };
}
