/** `skupper listener …` and `skupper connector …`: the two share their shape. */
import { isIP } from "node:net";
import { Command } from "commander";
import { API_VERSION, checkResourceName, isValidResourceName, MAX_NAME_LENGTH, resourceNameProblem, type Connector, type Listener } from "../../api/index.js";
import { AlreadyExistsError, InvalidInputError, NotFoundError, systemErrorCode } from "../../common/errors.js";
import { contextOf, type CliContext } from "../context.js";
import { formatResource, outputFormat, portOption, print, table, timeoutOption, waitOption } from "../output.js";
import { createResource, current, listCurrent, statusOf, updateResource } from "../resources.js";
import { isRunning } from "../runner.js";
import { pollUntilGone, waitForResource } from "../wait.js";

type BindingKind = "Listener" | "Connector";
type Binding = Listener | Connector;

interface BindingFlags {
  routingKey?: string;
  host?: string;
  port?: string;
  tlsCredentials?: string;
  type?: string;
  selector?: string;
  workload?: string;
  timeout?: string;
  wait?: string;
  output?: string;
}

const HOST_PATTERN = /^[a-z0-9]+([-.][a-z0-9]+)*$/i;

/** Defaults: a listener binds to loopback only unless asked (nothing listens on more than it must). */
const DEFAULT_HOST: Record<BindingKind, string> = { Listener: "127.0.0.1", Connector: "localhost" };

/** The characters of a Kubernetes label selector (`app=db,tier!=cache`, `env in (a,b)`). */
const SELECTOR_PATTERN = /^[A-Za-z0-9._/=!,() -]+$/;

function validateHost(host: string): void {
  if (!isIP(host) && !HOST_PATTERN.test(host)) throw new InvalidInputError(`host is not valid: "${host}" is neither an IP address nor a host name`);
}

function validateSelector(selector: string): string {
  if (!selector.trim() || !SELECTOR_PATTERN.test(selector)) throw new InvalidInputError(`selector is not valid: "${selector}" is not a label selector (example: app=backend)`);
  return selector;
}

/**
 * Where a connector's backend is: `--host`, or on platforms with workloads (Kubernetes) the pods
 * that `--selector` or `--workload <kind>/<name>` select, by default `app=<name>` as the
 * original does. Elsewhere only a host (default localhost).
 */
async function connectorTarget(ctx: CliContext, name: string, flags: BindingFlags): Promise<{ host?: string; selector?: string }> {
  if (!ctx.workloadSelector) {
    if (flags.selector || flags.workload) throw new InvalidInputError("--selector and --workload are for Kubernetes; on this platform use --host");
    return { host: flags.host ?? DEFAULT_HOST.Connector };
  }
  const given = [flags.host && "--host", flags.selector && "--selector", flags.workload && "--workload"].filter(Boolean);
  if (given.length > 1) throw new InvalidInputError(`only one of --host, --selector and --workload can be given (got ${given.join(" and ")})`);
  if (flags.host !== undefined) return { host: flags.host };
  if (flags.selector !== undefined) return { selector: validateSelector(flags.selector) };
  if (flags.workload !== undefined) return { selector: await ctx.workloadSelector(flags.workload) };
  return { selector: `app=${name}` };
}

async function build(ctx: CliContext, kind: BindingKind, name: string, port: number, flags: BindingFlags): Promise<Binding> {
  if (!isValidResourceName(name)) {
    throw new InvalidInputError(
      `${kind.toLowerCase()} name "${name.length > 80 ? `${name.slice(0, 80)}…` : name}" is not valid: use lower case letters, digits, '-' and '.' (at most ${MAX_NAME_LENGTH} characters)`,
    );
  }
  const tlsCredentials = tlsCredentialsOption(flags.tlsCredentials);
  if (flags.type && flags.type !== "tcp") throw new InvalidInputError(`type "${flags.type}" is not valid: only tcp is supported`);
  if (flags.host !== undefined) validateHost(flags.host);
  // On Kubernetes a listener's host is the name of the Service clients connect to: by default its own name.
  const target = kind === "Connector" ? await connectorTarget(ctx, name, flags) : { host: flags.host ?? (ctx.managedSite ? name : DEFAULT_HOST.Listener) };
  const spec = { routingKey: flags.routingKey ?? name, ...target, port, ...(tlsCredentials ? { tlsCredentials } : {}) };
  return { apiVersion: API_VERSION, kind, metadata: { name }, spec } as Binding;
}

/**
 * `--tls-credentials <secret>`: the name of a Secret in the namespace; "" (update) removes TLS.
 * The Secret may be created later: until it exists the status says it is missing.
 */
function tlsCredentialsOption(value: string | undefined): string | undefined {
  if (value === undefined || value === "") return undefined;
  const problem = resourceNameProblem(value);
  if (problem) throw new InvalidInputError(`tls-credentials is not valid: the Secret name "${value.length > 80 ? `${value.slice(0, 80)}…` : value}" ${problem}`);
  return value;
}

function parsePort(kind: BindingKind, value: string | undefined): number {
  try {
    return portOption("port", value) as number;
  } catch {
    throw new InvalidInputError(`${kind.toLowerCase()} port is not valid: "${value}" (use 1-65535)`);
  }
}

/**
 * Waits as the original does: "Waiting for create to complete..." then "is <wait>.", or
 * "Waiting for update to complete..." then "is updated.".
 */
async function waitForBinding(ctx: CliContext, kind: BindingKind, name: string, flags: BindingFlags, verb: "created" | "updated"): Promise<void> {
  const waitFor = waitOption(flags.wait, "configured");
  const timeoutMs = timeoutOption(flags.timeout, 60_000);
  if (waitFor === "none" || !(await isRunning(ctx))) {
    if (waitFor !== "none") print(`Note: the site ${ctx.managedSite ? "pod" : "process"} of namespace "${ctx.namespace}" is not running; the ${kind.toLowerCase()} takes effect once it runs.`);
    print(`${kind} "${name}" is ${verb}.`);
    return;
  }
  print(`Waiting for ${verb === "created" ? "create" : "update"} to complete...`);
  await waitForResource(ctx, kind, name, waitFor, timeoutMs);
  print(`${kind} "${name}" is ${verb === "updated" ? verb : waitFor}.`);
}

function bindingCommand(kind: BindingKind): Command {
  const noun = kind.toLowerCase();
  const command = new Command(noun).description(
    kind === "Listener"
      ? "Listeners: local ports where clients reach a service of the network"
      : "Connectors: where a service's backend runs, offered to the network under a routing key",
  );
  const addFlags = (c: Command) => {
    c.option("-r, --routing-key <key>", "routing key that joins listeners and connectors (default: the name)")
      .option(
        "--host <host>",
        kind === "Listener"
          ? "local address to listen on (default 127.0.0.1; 0.0.0.0 for all); on Kubernetes the name of the Service clients use (default: the listener's name)"
          : "host of the backend (default localhost; on Kubernetes give --host, --selector or --workload, default selector app=<name>)",
      )
      .option(
        "--tls-credentials <secret>",
        kind === "Listener"
          ? 'Secret with tls.crt and tls.key: clients connect with TLS and see this certificate; with ca.crt too, clients must present a certificate it issued ("" on update: plain TCP again)'
          : 'Secret with ca.crt: the backend is reached with TLS and its certificate must be issued by ca.crt (set useClientCert in the resource to also send tls.crt/tls.key) ("" on update: plain TCP again)',
      )
      .option("--type <type>", "tcp (the only type)", "tcp");
    if (kind === "Connector") {
      c.option("--selector <labels>", "Kubernetes: the pods of the backend, as a label selector (e.g. app=backend)").option(
        "--workload <workload>",
        "Kubernetes: the pods a workload selects: deployment/<name>, statefulset/<name>, daemonset/<name> or service/<name>",
      );
    }
    return c;
  };

  addFlags(command.command("create <name> <port>").description(`Create a ${noun}`))
    .option("--timeout <duration>", "raise an error if not done in this time", "60s")
    .option("--wait <status>", "wait for the status: configured, ready or none", "configured")
    .action(async (name: string, portText: string, flags: BindingFlags, cmd: Command) => {
      const ctx = contextOf(cmd);
      const resource = await build(ctx, kind, name, parsePort(kind, portText), flags);
      timeoutOption(flags.timeout, 60_000);
      await ctx.platform.prepare();
      try {
        await createResource(ctx, resource);
      } catch (err) {
        if (systemErrorCode(err) === "ERR_ALREADY_EXISTS") throw new AlreadyExistsError(`There is already a ${noun} ${name} created for namespace ${ctx.namespace}`);
        throw err;
      }
      await waitForBinding(ctx, kind, name, flags, "created");
    });

  addFlags(command.command("update <name>").description(`Change a ${noun}; only the options given are changed`))
    .option("--port <port>", "port")
    .option("--timeout <duration>", "raise an error if not done in this time", "60s")
    .option("--wait <status>", "wait for the status: configured, ready or none", "configured")
    .action(async (name: string, flags: BindingFlags, cmd: Command) => {
      const ctx = contextOf(cmd);
      checkResourceName(kind, name);
      const explicit = (option: string) => cmd.getOptionValueSource(option) === "cli";
      if (flags.host !== undefined) validateHost(flags.host);
      const port = flags.port !== undefined ? parsePort(kind, flags.port) : undefined;
      const tlsCredentials = explicit("tlsCredentials") ? (tlsCredentialsOption(flags.tlsCredentials) ?? "") : undefined;
      // A connector's new host, selector or workload replaces the one it had.
      const target = kind === "Connector" && (flags.host ?? flags.selector ?? flags.workload) !== undefined ? await connectorTarget(ctx, name, flags) : undefined;
      // Read, change and write, again on a concurrent write: concurrent updates never undo each other.
      const updated = await updateResource(ctx, kind, name, (existing) => {
        const spec = { ...existing.spec } as Binding["spec"] & { host?: string; selector?: string };
        if (flags.routingKey !== undefined) spec.routingKey = flags.routingKey;
        if (target) {
          delete spec.host;
          delete spec.selector;
          Object.assign(spec, target);
        } else if (flags.host !== undefined) spec.host = flags.host;
        if (port !== undefined) spec.port = port;
        if (tlsCredentials === "") delete spec.tlsCredentials;
        else if (tlsCredentials !== undefined) spec.tlsCredentials = tlsCredentials;
        return { ...existing, spec } as typeof existing;
      });
      if (!updated) throw new NotFoundError(`${kind} "${name}" does not exist in namespace "${ctx.namespace}"`);
      await waitForBinding(ctx, kind, name, flags, "updated");
    });

  command
    .command("delete <name>")
    .description(`Delete a ${noun} (its open connections are closed)`)
    .option("--timeout <duration>", "raise an error if not done in this time", "60s")
    .option("--wait [true|false]", "wait until the site has removed it", "true")
    .action(async (name: string, flags: { timeout?: string; wait?: string | boolean }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const timeoutMs = timeoutOption(flags.timeout, 60_000);
      checkResourceName(kind, name);
      if (!(await ctx.platform.resources.delete(kind, name))) throw new NotFoundError(`${kind} "${name}" does not exist in namespace "${ctx.namespace}"`);
      if (flags.wait !== false && flags.wait !== "false" && (await isRunning(ctx))) {
        // Gone once the site process has removed it (and closed its connections).
        print("Waiting for deletion to complete...");
        await pollUntilGone(ctx, kind, name, timeoutMs);
      }
      print(`${kind} "${name}" deleted.`);
    });

  command
    .command("status [name]")
    .description(`Show the status of ${noun}s`)
    .option("-o, --output <format>", "json or yaml")
    .action(async (name: string | undefined, flags: { output?: string }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const format = outputFormat(flags.output);
      if (name) checkResourceName(kind, name);
      const resources = (name ? [await current(ctx, kind, name)] : await listCurrent(ctx, kind)).filter(
        (r): r is Binding => r !== undefined,
      );
      if (name && resources.length === 0) throw new NotFoundError(`${kind} "${name}" does not exist in namespace "${ctx.namespace}"`);
      if (resources.length === 0) {
        print(`No ${noun}s found`);
        return;
      }
      if (format) {
        print(formatResource(name ? resources[0] : { apiVersion: "v1", kind: "List", items: resources }, format));
        return;
      }
      const matched = (r: Binding) =>
        String(kind === "Listener" ? ((r as Listener).status?.hasMatchingConnector ?? false) : ((r as Connector).status?.hasMatchingListener ?? false));
      if (name) {
        const r = resources[0] as Binding;
        const { status, message } = statusOf(r);
        print(
          [
            `Name:\t\t\t${r.metadata.name}`,
            `Status:\t\t\t${status}`,
            `Routing key:\t\t${r.spec.routingKey}`,
            `Host:\t\t\t${r.spec.host ?? ""}`,
            `Port:\t\t\t${r.spec.port}`,
            `${kind === "Listener" ? "Has Matching Connector" : "Has Matching Listener"}:\t${matched(r)}`,
            `Message:\t\t${message}`,
          ].join("\n"),
        );
        return;
      }
      const headers =
        kind === "Listener"
          ? ["NAME", "STATUS", "ROUTING-KEY", "HOST", "PORT", "MATCHING-CONNECTOR", "MESSAGE"]
          : ["NAME", "STATUS", "ROUTING-KEY", "SELECTOR", "HOST", "PORT", "HAS MATCHING LISTENER", "MESSAGE"];
      const rows = resources.map((r) => {
        const { status, message } = statusOf(r);
        const base = [r.metadata.name, status, r.spec.routingKey];
        const rest = [r.spec.host ?? "", String(r.spec.port), matched(r), message];
        return kind === "Listener" ? [...base, ...rest] : [...base, (r as Connector).spec.selector ?? "", ...rest];
      });
      print(table(headers, rows));
    });

  addFlags(command.command("generate <name> <port>").description(`Print the ${noun} resource that create would make`))
    .option("-o, --output <format>", "json or yaml", "yaml")
    .action(async (name: string, portText: string, flags: BindingFlags, cmd: Command) => {
      const ctx = contextOf(cmd);
      print(formatResource(await build(ctx, kind, name, parsePort(kind, portText), flags), outputFormat(flags.output) ?? "yaml"));
    });

  return command;
}

export const listenerCommand = () => bindingCommand("Listener");
export const connectorCommand = () => bindingCommand("Connector");
