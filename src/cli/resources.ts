/** Writing resources from the CLI: each write bumps `metadata.generation`, as an API server would. */
import type { Kind, Resource, ResourceByKind, Site } from "../api/index.js";
import { SkupperError } from "../common/errors.js";
import type { CliContext } from "./context.js";

/**
 * Creates or updates a resource in input with the next generation. The read of the current
 * generation and the write happen under the namespace's input lock, so concurrent commands
 * never lose an update or reuse a generation.
 */
export async function saveResource(ctx: CliContext, resource: Resource): Promise<{ file: string; created: boolean }> {
  return ctx.store.withInputLock(async () => {
    const existing = await ctx.store.getInput(resource.kind, resource.metadata.name);
    const generation = (existing?.metadata.generation ?? 0) + 1;
    const { namespace: _ns, ...metadata } = resource.metadata;
    const file = await ctx.store.writeInput({ ...resource, metadata: { ...metadata, generation } } as Resource);
    return { file, created: existing === undefined };
  });
}

/**
 * Read-modify-write of one input resource under the namespace's input lock, with the next
 * generation: concurrent updates are applied one after the other, none is lost. `change` may
 * throw to refuse. Returns the resource written, or undefined if there is none to update.
 */
export async function updateResource<K extends Kind>(
  ctx: CliContext,
  kind: K,
  name: string,
  change: (existing: ResourceByKind[K]) => ResourceByKind[K],
): Promise<ResourceByKind[K] | undefined> {
  return ctx.store.withInputLock(async () => {
    const existing = await ctx.store.getInput(kind, name);
    if (!existing) return undefined;
    const changed = change(existing);
    const { namespace: _ns, ...metadata } = changed.metadata;
    const updated = { ...changed, metadata: { ...metadata, generation: (existing.metadata.generation ?? 0) + 1 } } as ResourceByKind[K];
    await ctx.store.writeInput(updated);
    return updated;
  });
}

/**
 * Creates a resource (generation 1); throws AlreadyExistsError if it exists. Of several
 * commands creating the same resource at once, exactly one succeeds.
 */
export async function createResource(ctx: CliContext, resource: Resource): Promise<string> {
  const { namespace: _ns, ...metadata } = resource.metadata;
  return ctx.store.withInputLock(() => ctx.store.createInput({ ...resource, metadata: { ...metadata, generation: 1 } } as Resource));
}

export async function activeSite(ctx: CliContext): Promise<Site | undefined> {
  const sites = await ctx.store.listInput("Site");
  return sites.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))[0];
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

/** The runtime copy (with status) if the site process wrote one, else the input resource. */
export async function current<K extends Kind>(ctx: CliContext, kind: K, name: string): Promise<ResourceByKind[K] | undefined> {
  const input = await ctx.store.getInput(kind, name);
  if (!input) return undefined;
  const runtime = await ctx.store.getRuntime(kind, name);
  return runtime && runtime.metadata.generation === input.metadata.generation ? runtime : input;
}

/** All resources of a kind, each with status where the site process has written it. */
export async function listCurrent<K extends Kind>(ctx: CliContext, kind: K): Promise<Array<ResourceByKind[K]>> {
  const inputs = await ctx.store.listInput(kind);
  const runtime = new Map((await ctx.store.listRuntime(kind)).map((r) => [r.metadata.name, r]));
  return inputs
    .map((input) => {
      const r = runtime.get(input.metadata.name);
      return r && r.metadata.generation === input.metadata.generation ? r : input;
    })
    .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
}

export function statusOf(resource: Resource): { status: string; message: string } {
  const status = (resource as { status?: { status?: string; message?: string } }).status;
  return { status: status?.status ?? "Pending", message: status?.message ?? "Not yet processed" };
}
