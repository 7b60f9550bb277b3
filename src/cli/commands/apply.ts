/**
 * `skupper apply|get|delete`: the resource commands a user needs for the YAML procedures
 * (the local platform's `kubectl apply/get/delete`). `system apply|delete` are the same.
 */
import { Command } from "commander";
import { checkResourceName, isKind, KINDS, MAX_FILE_BYTES, parseDocuments, SHORT_NAMES, type Kind, type Resource } from "../../api/index.js";
import { InvalidInputError, NotFoundError, SkupperError, ValidationError, type ExitCode } from "../../common/errors.js";
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

/** Why a resource of the file does not belong in this command's namespace, if it does not. */
function namespaceProblem(ctx: CliContext, resource: Resource): string | undefined {
  const ns = resource.metadata.namespace;
  if (!ns || ns === ctx.namespace) return undefined;
  return `${resource.kind} "${resource.metadata.name}" names namespace "${ns}" but the command is for namespace "${ctx.namespace}"; add "-n ${ns}" or remove metadata.namespace`;
}

function checkNamespace(ctx: CliContext, resource: Resource): void {
  const problem = namespaceProblem(ctx, resource);
  if (problem) throw new InvalidInputError(problem);
}

/** A document or resource of the file that was not applied, and the exit code it calls for. */
interface Failure {
  message: string;
  exitCode: ExitCode;
}

/**
 * `apply -f`, as kubectl does it: every valid resource is applied and reported; each document
 * that is not one (invalid fields, a kind we do not handle, another namespace) is reported on
 * stderr by kind and name (or by its place in the file), and the command then fails: exit code 2,
 * or 1 when storing a valid resource failed. A file that cannot be read or is not YAML applies
 * nothing.
 */
async function applyFile(ctx: CliContext, file: string): Promise<void> {
  const source = file === "-" ? "standard input" : file;
  const parsed = parseDocuments(await readSource(file), source);
  if (parsed.fileProblems.length > 0) throw new ValidationError(parsed.fileProblems);
  if (parsed.resources.length === 0 && parsed.rejected.length === 0) throw new InvalidInputError(`${source} holds no resources`);
  const failures: Failure[] = parsed.rejected.map((rejected) => ({ message: rejected.problems.join("\n"), exitCode: 2 }));
  const resources = parsed.resources.filter((resource) => {
    const problem = namespaceProblem(ctx, resource);
    if (problem) failures.push({ message: `${source}: ${problem}`, exitCode: 2 });
    return !problem;
  });
  if (resources.length > 0) {
    const hadSite = (await activeSite(ctx)) !== undefined;
    await ctx.platform.prepare();
    const sites: string[] = [];
    for (const resource of resources) {
      try {
        const { created } = await saveResource(ctx, resource);
        print(`${resource.kind} "${resource.metadata.name}" ${created ? "created" : "configured"}.`);
        if (resource.kind === "Site") sites.push(resource.metadata.name);
      } catch (err) {
        if (!(err instanceof SkupperError)) throw err;
        // The store's own message may already name the resource, even twice; say it once.
        const label = `${resource.kind} "${resource.metadata.name}": `;
        let reason = err.message;
        while (reason.startsWith(label)) reason = reason.slice(label.length);
        failures.push({ message: `${source}: ${label.slice(0, -2)} was not applied: ${reason}`, exitCode: err.exitCode });
      }
    }
    const active = sites.length > 0 ? await activeSite(ctx) : undefined;
    for (const name of sites) {
      // Not a failure of the command: the Site is stored, and its status says why it does not run.
      if (active && name !== active.metadata.name) {
        print(`Note: namespace "${ctx.namespace}" already has Site "${active.metadata.name}"; only one site per namespace runs, so Site "${name}" has no effect (see "skupper${ctx.nsFlag} get site ${name}").`);
      }
    }
    // Where the platform runs the site itself (Kubernetes), writing the resources is all there is to do.
    if (!ctx.managedSite) await startSiteIfNeeded(ctx, hadSite || sites.length > 0);
  }
  if (failures.length > 0) {
    const documents = parsed.resources.length + parsed.rejected.length;
    const summary = `${failures.length} of ${documents} ${documents === 1 ? "resource" : "resources"} in ${source} ${failures.length === 1 ? "was" : "were"} not applied`;
    const exitCode: ExitCode = failures.some((f) => f.exitCode === 1) ? 1 : 2;
    throw new ApplyError([...failures.map((f) => f.message), summary], exitCode);
  }
}

/** Some documents of a file were not applied (the others were). */
class ApplyError extends SkupperError {
  constructor(problems: string[], exitCode: ExitCode) {
    super(exitCode === 2 ? "ERR_VALIDATION" : "ERR_APPLY", problems.join("\n"), exitCode);
  }
}

async function startSiteIfNeeded(ctx: CliContext, hasSite: boolean): Promise<void> {
  const running = await isRunning(ctx);
  if (!running && hasSite) {
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
  MultiKeyListener: [
    ["NAME", (r) => r.metadata.name],
    ["PORT", (r) => field(r, "spec", "port")],
    ["HOST", (r) => field(r, "spec", "host")],
    ["STATUS", status],
    ["HAS DESTINATION", (r) => field(r, "status", "hasDestination") || "false"],
    ["MESSAGE", message],
  ],
  SecuredAccess: [["NAME", (r) => r.metadata.name], ["STATUS", status], ["MESSAGE", message]],
  Certificate: [
    ["NAME", (r) => r.metadata.name],
    ["CA", (r) => field(r, "spec", "ca")],
    ["SUBJECT", (r) => field(r, "spec", "subject")],
    ["STATUS", status],
    ["MESSAGE", message],
  ],
  AttachedConnector: [
    ["NAME", (r) => r.metadata.name],
    ["SITE NAMESPACE", (r) => field(r, "spec", "siteNamespace")],
    ["SELECTOR", (r) => field(r, "spec", "selector")],
    ["PORT", (r) => field(r, "spec", "port")],
    ["STATUS", status],
    ["MESSAGE", message],
  ],
  AttachedConnectorBinding: [
    ["NAME", (r) => r.metadata.name],
    ["ROUTING KEY", (r) => field(r, "spec", "routingKey")],
    ["CONNECTOR NAMESPACE", (r) => field(r, "spec", "connectorNamespace")],
    ["STATUS", status],
    ["HAS MATCHING LISTENER", (r) => field(r, "status", "hasMatchingListener") || "false"],
    ["MESSAGE", message],
  ],
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
    .argument("<type>", `resource type: ${KINDS.map((k) => k.toLowerCase()).join(", ")}`)
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
