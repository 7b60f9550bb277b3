/**
 * `skupper apply|get|delete`: the resource commands a user needs for the YAML procedures
 * (the local platform's `kubectl apply/get/delete`). `system apply|delete` are the same.
 */
import { Command } from "commander";
import { checkResourceName, isKind, KINDS, MAX_FILE_BYTES, parseDocuments, SHORT_NAMES, type Kind, type Resource } from "../../api/index.js";
import { AlreadyExistsError, InvalidInputError, NotFoundError, SkupperError, ValidationError } from "../../common/errors.js";
import { readTextLimited } from "../../common/files.js";
import { contextOf, type CliContext } from "../context.js";
import { formatResource, print, table } from "../output.js";
import { activeSite, current, listCurrent, saveResource, statusOf } from "../resources.js";
import { isRunning } from "../runner.js";

/** Kind names as users type them: singular, plural, short names (as kubectl accepts). */
const KIND_ALIASES: Record<string, Kind> = {};
for (const kind of KINDS) {
  const lower = kind.toLowerCase();
  for (const alias of [lower, `${lower}s`, `${lower}es`, ...SHORT_NAMES[kind], `${lower}.skupper.io`, `${lower}s.skupper.io`]) KIND_ALIASES[alias] = kind;
}

export function kindOf(text: string): Kind {
  const kind = KIND_ALIASES[text.toLowerCase()] ?? (isKind(text) ? text : undefined);
  if (!kind) throw new InvalidInputError(`unknown resource type "${text}" (known: ${KINDS.map((k) => k.toLowerCase()).join(", ")})`);
  return kind;
}

/** The text of a resource file or of standard input ("-"), refused unread if it is too large. */
async function readSource(file: string): Promise<string> {
  const label = file === "-" ? "standard input" : file;
  let text: string | undefined;
  try {
    text = await readTextLimited(file, MAX_FILE_BYTES, { label });
  } catch (err) {
    if (err instanceof SkupperError) throw err;
    throw new NotFoundError(`cannot read ${label}: ${(err as Error).message}`);
  }
  if (text === undefined) throw new NotFoundError(`cannot read ${label}: no such file`);
  return text;
}

function checkNamespace(ctx: CliContext, resource: Resource): void {
  const ns = resource.metadata.namespace;
  if (ns && ns !== ctx.namespace) {
    throw new InvalidInputError(
      `${resource.kind} "${resource.metadata.name}" names namespace "${ns}" but the command is for namespace "${ctx.namespace}"; add "-n ${ns}" or remove metadata.namespace`,
    );
  }
}

async function applyFile(ctx: CliContext, file: string): Promise<void> {
  const resources = await parseOrThrow(file);
  resources.forEach((r) => checkNamespace(ctx, r));
  const site = await activeSite(ctx);
  const newSite = resources.find((r) => r.kind === "Site");
  if (newSite && site && site.metadata.name !== newSite.metadata.name) {
    throw new AlreadyExistsError(`There is already a site created for this namespace ("${site.metadata.name}")`);
  }
  await ctx.platform.prepare();
  for (const resource of resources) {
    const { created } = await saveResource(ctx, resource);
    print(`${resource.kind} "${resource.metadata.name}" ${created ? "created" : "configured"}.`);
  }
  // Where the platform runs the site itself (Kubernetes), writing the resources is all there is to do.
  if (ctx.managedSite) return;
  const running = await isRunning(ctx);
  if (!running && (newSite || site)) {
    await ctx.platform.runner.start();
    print(`Site process of namespace "${ctx.namespace}" started.`);
  } else if (!running) {
    print(`Note: namespace "${ctx.namespace}" has no site yet; these resources take effect once one is created.`);
  }
}

async function parseOrThrow(file: string): Promise<Resource[]> {
  const { resources, problems } = parseDocuments(await readSource(file), file === "-" ? "standard input" : file);
  if (problems.length > 0) throw new ValidationError(problems);
  if (resources.length === 0) throw new InvalidInputError(`${file === "-" ? "standard input" : file} holds no resources`);
  return resources;
}

async function deleteFile(ctx: CliContext, file: string): Promise<void> {
  for (const resource of await parseOrThrow(file)) {
    checkNamespace(ctx, resource);
    const deleted = await ctx.platform.resources.delete(resource.kind, resource.metadata.name);
    print(deleted ? `${resource.kind} "${resource.metadata.name}" deleted.` : `${resource.kind} "${resource.metadata.name}" not found.`);
  }
}

// ---- get ----

type Columns = Array<[string, (r: Resource) => string]>;

const str = (v: unknown) => (v === undefined || v === null ? "" : String(v));
const status = (r: Resource) => statusOf(r).status;
const message = (r: Resource) => statusOf(r).message;
const field = (r: Resource, ...path: string[]) => str(path.reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], r));

const COLUMNS: Record<Kind, Columns> = {
  Site: [["NAME", (r) => r.metadata.name], ["STATUS", status], ["SITES IN NETWORK", (r) => field(r, "status", "sitesInNetwork")], ["MESSAGE", message]],
  Link: [["NAME", (r) => r.metadata.name], ["STATUS", status], ["REMOTE SITE", (r) => field(r, "status", "remoteSiteName")], ["MESSAGE", message]],
  AccessGrant: [
    ["NAME", (r) => r.metadata.name],
    ["REDEMPTIONS ALLOWED", (r) => field(r, "spec", "redemptionsAllowed") || "1"],
    ["REDEMPTIONS MADE", (r) => field(r, "status", "redemptions") || "0"],
    ["EXPIRATION", (r) => field(r, "status", "expirationTime")],
    ["STATUS", status],
    ["MESSAGE", message],
  ],
  AccessToken: [
    ["NAME", (r) => r.metadata.name],
    ["URL", (r) => field(r, "spec", "url")],
    ["REDEEMED", (r) => field(r, "status", "redeemed") || "false"],
    ["STATUS", status],
    ["MESSAGE", message],
  ],
  Listener: [
    ["NAME", (r) => r.metadata.name],
    ["ROUTING KEY", (r) => field(r, "spec", "routingKey")],
    ["PORT", (r) => field(r, "spec", "port")],
    ["HOST", (r) => field(r, "spec", "host")],
    ["STATUS", status],
    ["HAS MATCHING CONNECTOR", (r) => field(r, "status", "hasMatchingConnector") || "false"],
    ["MESSAGE", message],
  ],
  Connector: [
    ["NAME", (r) => r.metadata.name],
    ["ROUTING KEY", (r) => field(r, "spec", "routingKey")],
    ["PORT", (r) => field(r, "spec", "port")],
    ["HOST", (r) => field(r, "spec", "host")],
    ["SELECTOR", (r) => field(r, "spec", "selector")],
    ["STATUS", status],
    ["HAS MATCHING LISTENER", (r) => field(r, "status", "hasMatchingListener") || "false"],
    ["MESSAGE", message],
  ],
  RouterAccess: [["NAME", (r) => r.metadata.name], ["STATUS", status], ["MESSAGE", message]],
  Secret: [["NAME", (r) => r.metadata.name], ["TYPE", (r) => field(r, "type")], ["DATA", (r) => String(Object.keys((r as { data?: object }).data ?? {}).length)]],
};

/**
 * `-o template --template '{{ .status.url }}'` and `-o jsonpath='{.status.url}'`: field paths only,
 * which is what the seed procedures use.
 */
export function renderTemplate(template: string, resource: unknown, syntax: "template" | "jsonpath"): string {
  const pattern = syntax === "template" ? /\{\{\s*([^}]*?)\s*\}\}/g : /\{([^{}]*)\}/g;
  return template.replace(pattern, (_match, expression: string) => {
    const expr = expression.trim();
    if (!/^\.?[A-Za-z0-9_.-]*$/.test(expr)) {
      throw new InvalidInputError(`only field paths such as "{{ .status.url }}" are supported in templates, not "${expr}"`);
    }
    const value = expr
      .replace(/^\./, "")
      .split(".")
      .filter(Boolean)
      .reduce<unknown>((v, key) => (v as Record<string, unknown> | undefined)?.[key], resource);
    if (value === undefined || value === null) return syntax === "template" ? "<no value>" : "";
    return typeof value === "object" ? JSON.stringify(value) : String(value);
  });
}

async function getResources(ctx: CliContext, kindText: string, name: string | undefined, output: string | undefined, template: string | undefined): Promise<void> {
  const kind = kindOf(kindText);
  if (name !== undefined) checkResourceName(kind, name);
  const resources: Resource[] = name ? [await current(ctx, kind, name)].filter((r): r is NonNullable<typeof r> => r !== undefined) : await listCurrent(ctx, kind);
  if (name && resources.length === 0) throw new NotFoundError(`${kind.toLowerCase()} "${name}" not found in namespace "${ctx.namespace}"`);
  if (output === undefined || output === "wide") {
    if (resources.length === 0) {
      print(`No ${kind} resources found in namespace "${ctx.namespace}".`);
      return;
    }
    const columns = COLUMNS[kind];
    print(table(columns.map(([h]) => h), resources.map((r) => columns.map(([, f]) => f(r)))));
    return;
  }
  const [format, inline] = output.split("=", 2) as [string, string | undefined];
  if (format === "yaml" || format === "json") {
    const value = name ? resources[0] : { apiVersion: "v1", kind: "List", items: resources };
    print(formatResource(value, format));
    return;
  }
  if (format === "template" || format === "go-template" || format === "jsonpath") {
    const text = inline ?? template;
    if (!text) throw new InvalidInputError(`-o ${format} needs a template: --template '{{ .status.url }}' or -o ${format}=...`);
    const syntax = format === "jsonpath" ? "jsonpath" : "template";
    process.stdout.write(resources.map((r) => renderTemplate(text, r, syntax)).join(syntax === "jsonpath" ? " " : ""));
    return;
  }
  if (format === "name") {
    print(resources.map((r) => `${kind.toLowerCase()}/${r.metadata.name}`).join("\n"));
    return;
  }
  throw new InvalidInputError(`value ${output} not allowed. It should be one of this options: [json yaml wide name template jsonpath]`);
}

export function applyCommand(name = "apply"): Command {
  return new Command(name)
    .description("Create or update resources from a YAML or JSON file ('-' for standard input)")
    .requiredOption("-f, --filename <file>", "file with one or more resources")
    .action(async (flags: { filename: string }, command: Command) => applyFile(contextOf(command), flags.filename));
}

export function getCommand(): Command {
  return new Command("get")
    .description("Show resources with their status, e.g. 'skupper get accessgrants'")
    .argument("<type>", "resource type: site, link, accessgrant, accesstoken, listener, connector, routeraccess, secret")
    .argument("[name]", "resource name")
    .option("-o, --output <format>", "yaml, json, wide, name, template, jsonpath=<template>")
    .option("--template <template>", "template for -o template / -o jsonpath")
    .action(async (type: string, name: string | undefined, flags: { output?: string; template?: string }, command: Command) =>
      getResources(contextOf(command), type, name, flags.output, flags.template),
    );
}

export function deleteCommand(name = "delete"): Command {
  return new Command(name)
    .description("Delete resources named in a file, or one resource by type and name")
    .argument("[type]", "resource type")
    .argument("[name]", "resource name")
    .option("-f, --filename <file>", "file with the resources to delete")
    .action(async (type: string | undefined, resourceName: string | undefined, flags: { filename?: string }, command: Command) => {
      const ctx = contextOf(command);
      if (flags.filename) {
        if (type) throw new InvalidInputError("give either -f <file> or <type> <name>, not both");
        await deleteFile(ctx, flags.filename);
        return;
      }
      if (!type || !resourceName) throw new InvalidInputError("give -f <file>, or the type and name of the resource to delete");
      const kind = kindOf(type);
      checkResourceName(kind, resourceName);
      if (!(await ctx.platform.resources.delete(kind, resourceName))) throw new NotFoundError(`${kind} "${resourceName}" not found in namespace "${ctx.namespace}"`);
      print(`${kind} "${resourceName}" deleted.`);
    });
}
