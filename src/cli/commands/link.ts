import { Command } from "commander";
import {
  Annotation,
  checkResourceName,
  DEFAULT_LINK_COST,
  isValidResourceName,
  linkAccessEnabled,
  linkSecretName,
  toYamlDocuments,
  type Link,
  type Secret,
} from "../../api/index.js";
import { InvalidInputError, NotFoundError, SkupperError, systemErrorCode } from "../../common/errors.js";
import { contextOf, type CliContext } from "../context.js";
import { booleanOption, formatResource, integerOption, outputFormat, print, table, timeoutOption, waitOption, type OutputFormat } from "../output.js";
import { current, listCurrent, requireSite, statusOf, updateResource } from "../resources.js";
import { pollUntilGone, waitForResource } from "../wait.js";

const LINK_ACCESS_DISABLED =
  'A link cannot be generated because link access is not enabled. Use "skupper site update --enable-link-access" to enable it.';

export interface LinkBundleOptions {
  name?: string;
  host?: string;
  cost?: number;
  tlsCredentials?: string;
}

/**
 * A Link and its Secret (client certificate from this site's CA) that another site can apply to
 * link to this one: the "cert token" style, reusable until the site CA changes. The site process
 * issues it (it holds the CA); the checks of what the user asked for are made here first.
 */
export async function generateLinkBundle(ctx: CliContext, options: LinkBundleOptions): Promise<{ link: Link; secret: Secret }> {
  const site = await requireSite(ctx);
  if (!linkAccessEnabled(site)) throw new SkupperError("ERR_LINK_ACCESS", LINK_ACCESS_DISABLED);
  const name = options.name ?? `link-${site.metadata.name}`;
  if (!isValidResourceName(name)) throw new InvalidInputError(`link name "${name}" is not valid: use lower case letters, digits, '-' and '.' (at most 253 characters)`);
  if (options.tlsCredentials !== undefined && !isValidResourceName(options.tlsCredentials)) {
    throw new InvalidInputError(`secret name "${options.tlsCredentials}" is not valid: use lower case letters, digits, '-' and '.' (at most 253 characters)`);
  }
  try {
    return await ctx.platform.requests.generateLink({
      name,
      ...(options.host !== undefined ? { host: options.host } : {}),
      cost: options.cost ?? DEFAULT_LINK_COST,
      ...(options.tlsCredentials !== undefined ? { tlsCredentials: options.tlsCredentials } : {}),
    });
  } catch (err) {
    // A stopped site process has not set up link access, as far as anyone can tell.
    if (systemErrorCode(err) === "ERR_SITE_NOT_RUNNING") {
      throw new SkupperError(
        "ERR_SITE_NOT_READY",
        `The site "${site.metadata.name}" has not set up link access yet; check "skupper${ctx.nsFlag} site status" (is its site ${ctx.managedSite ? "pod" : "process"} running?)`,
      );
    }
    throw err;
  }
}

interface LinkRow {
  name: string;
  status: string;
  remoteSite: string;
  cost: string;
  direction: "outgoing" | "incoming";
  message: string;
}

function outgoingRow(link: Link): LinkRow {
  const { status, message } = statusOf(link);
  return {
    name: link.metadata.name,
    status,
    remoteSite: link.status?.remoteSiteName ?? link.metadata.annotations?.[Annotation.remoteSiteName] ?? "",
    cost: String(Math.max(1, link.spec.cost ?? DEFAULT_LINK_COST)),
    direction: "outgoing",
    message,
  };
}

/** Incoming links have no resource: they come from the network view the site publishes. */
async function incomingRows(ctx: CliContext): Promise<LinkRow[]> {
  const incoming = (await ctx.platform.networkStatus())?.router?.incoming ?? [];
  return incoming.map((link) => ({
    name: link.name,
    status: "Ready",
    remoteSite: link.remoteSiteName,
    cost: String(link.cost),
    direction: "incoming",
    message: "OK",
  }));
}

type LinkStatusFormat = OutputFormat | "wide";

/** `-o`: json or yaml (the Link resources, as the original prints them), or wide (a wider table, as kubectl). */
function linkStatusFormat(value: string | undefined): LinkStatusFormat | undefined {
  if (value === "wide") return value;
  if (value === undefined || value === "json" || value === "yaml") return outputFormat(value);
  throw new InvalidInputError(`value ${value} not allowed. It should be one of this options: [json yaml wide]`);
}

/** One document per Link, as the original prints them: JSON objects one after another, YAML documents separated by `---`. */
function formatLinks(links: Link[], format: OutputFormat): string {
  const documents = links.map((link) => formatResource(link, format));
  return format === "json" ? documents.join("") : documents.join("---\n");
}

/** The original's single-link view, `Key\t: value` lines; wide adds where the link goes and which way. */
function linkDetails(row: LinkRow, wide: boolean): string {
  const lines: Array<[string, string]> = [
    ["Name", row.name],
    ["Status", row.status],
    ...(wide ? ([["Remote site", row.remoteSite]] as Array<[string, string]>) : []),
    ["Cost", row.cost],
    ...(wide ? ([["Direction", row.direction]] as Array<[string, string]>) : []),
    ["Message", row.message],
  ];
  return lines.map(([key, value]) => `${key}\t: ${value}`).join("\n");
}

const NO_LINKS = "There are no link resources in the namespace";

async function linkStatus(ctx: CliContext, name: string | undefined, format: LinkStatusFormat | undefined): Promise<void> {
  if (name !== undefined) checkResourceName("Link", name);
  const links = (await listCurrent(ctx, "Link")).filter((l) => name === undefined || l.metadata.name === name);
  const incoming = format === "wide" ? (await incomingRows(ctx)).filter((r) => name === undefined || r.name === name) : [];
  if (name !== undefined && links.length === 0 && incoming.length === 0) {
    const isIncoming = format !== "wide" && (await incomingRows(ctx)).some((r) => r.name === name);
    throw new NotFoundError(
      isIncoming
        ? `There is no link resource in the namespace with the name "${name}"; it is an incoming link, see "skupper${ctx.nsFlag} link status ${name} -o wide"`
        : `There is no link resource in the namespace with the name "${name}"`,
    );
  }
  if (links.length === 0 && incoming.length === 0) {
    print(NO_LINKS);
    return;
  }
  if (format === "json" || format === "yaml") {
    print(formatLinks(links, format));
    return;
  }
  const wide = format === "wide";
  const rows = [...links.map(outgoingRow), ...incoming];
  if (name !== undefined) {
    print(rows.map((row) => linkDetails(row, wide)).join("\n\n"));
    return;
  }
  print(
    wide
      ? table(
          ["NAME", "STATUS", "REMOTE SITE", "COST", "DIRECTION", "MESSAGE"],
          rows.map((r) => [r.name, r.status, r.remoteSite, r.cost, r.direction, r.message]),
        )
      : table(["NAME", "STATUS", "COST", "MESSAGE"], rows.map((r) => [r.name, r.status, r.cost, r.message])),
  );
}

export function linkCommand(): Command {
  const link = new Command("link").description("Inspect and manage the links of this site");

  link
    .command("status [name]")
    .description("Show this site's links (-o wide: also the remote site, and the incoming links from other sites)")
    .option("-o, --output <format>", "json or yaml (the Link resources), or wide")
    .option("-v, --verbose", "the same as -o wide (v1's flag)")
    .action(async (name: string | undefined, flags: { output?: string; verbose?: boolean }, command: Command) => {
      await linkStatus(contextOf(command), name, linkStatusFormat(flags.output ?? (flags.verbose ? "wide" : undefined)));
    });

  link
    .command("delete <name>")
    .description("Delete an outgoing link (and the credentials it used)")
    .option("--timeout <duration>", "raise an error if the link is not gone in this time", "60s")
    .option("--wait [true|false]", "wait until the link is closed", "true")
    .action(async (name: string, flags: { timeout?: string; wait?: string | boolean }, command: Command) => {
      const ctx = contextOf(command);
      const timeoutMs = timeoutOption(flags.timeout, 60_000);
      checkResourceName("Link", name);
      const existing = await current(ctx, "Link", name);
      if (!existing) {
        const incoming = (await ctx.platform.networkStatus())?.router?.incoming.find((i) => i.name === name);
        if (incoming) {
          throw new SkupperError(
            "ERR_INCOMING_LINK",
            `Link "${name}" is an incoming link from site "${incoming.remoteSiteName}"; delete it on that site ("skupper link delete ${name}" there)`,
          );
        }
        throw new NotFoundError(`There is no link resource in the namespace with the name "${name}"`);
      }
      await ctx.platform.resources.delete("Link", name);
      const secretName = linkSecretName(existing);
      // Other links (not this one, which may still be listed while it is being deleted) using the Secret.
      const others = (await listCurrent(ctx, "Link")).filter(
        (l) => l.metadata.name !== name && linkSecretName(l) === secretName,
      );
      // Names from inside a (possibly hand-written) Link: only valid ones are looked up.
      if (others.length === 0 && isValidResourceName(secretName)) await ctx.platform.resources.delete("Secret", secretName);
      const token = existing.metadata.annotations?.[Annotation.accessToken];
      if (token && isValidResourceName(token)) await ctx.platform.resources.delete("AccessToken", token);
      // The site process finalizes the delete once it has closed the link.
      if (flags.wait !== false && flags.wait !== "false" && !(await pollUntilGone(ctx, "Link", name, timeoutMs))) {
        throw new SkupperError("ERR_TIMEOUT", `Link "${name}" not deleted yet, check the status for more information`);
      }
      print(`Link "${name}" is deleted.`);
    });

  link
    .command("generate")
    .description("Print a Link and Secret that another site can apply to link to this site")
    .option("--name <name>", "name of the Link (default: link-<site>)")
    .option("--host <host>", "host the other site dials (default: this site's first advertised host)")
    .option("--cost <cost>", "cost of the link", "1")
    .option("--tls-credentials <name>", "name of the Secret (default: the link name)")
    .option("--generate-credential [true|false]", "print a Secret with a client certificate from this site's CA; with false, print only the Link, naming the Secret of --tls-credentials that you provide", "true")
    .option("--timeout <duration>", "accepted for compatibility", "60s")
    .option("-o, --output <format>", "json or yaml", "yaml")
    .action(async (flags: { name?: string; host?: string; cost?: string; tlsCredentials?: string; generateCredential?: string | boolean; timeout?: string; output?: string }, command: Command) => {
      const ctx = contextOf(command);
      const format = outputFormat(flags.output) ?? "yaml";
      timeoutOption(flags.timeout, 60_000);
      const cost = integerOption("cost", flags.cost, { min: 1 }) ?? 1;
      const withCredential = booleanOption("generate-credential", flags.generateCredential) ?? true;
      if (!withCredential && !flags.tlsCredentials) {
        throw new InvalidInputError("the TLS secret name was not specified: with --generate-credential=false, name the Secret that holds the link's client certificate with --tls-credentials");
      }
      const { link, secret } = await generateLinkBundle(ctx, {
        ...(flags.name ? { name: flags.name } : {}),
        ...(flags.host ? { host: flags.host } : {}),
        ...(flags.tlsCredentials ? { tlsCredentials: flags.tlsCredentials } : {}),
        cost,
      });
      // Without a credential the site's certificate is not handed out: the Link names a Secret
      // the user makes (a client certificate the site's CA, or the CA they gave the site, signed).
      const documents = withCredential ? [link, secret] : [link];
      if (format === "yaml") process.stdout.write(toYamlDocuments(documents));
      else print(formatResource({ apiVersion: "v1", kind: "List", items: documents }, "json"));
    });

  link
    .command("update <name>")
    .description("Change an outgoing link; only the options given are changed (the link stays up)")
    .option("--cost <cost>", "cost of the link")
    .option("--tls-credentials <name>", "name of the Secret with the link's credentials")
    .option("--timeout <duration>", "raise an error if the link is not ready in this time", "60s")
    .option("--wait <status>", "ready, configured or none", "ready")
    .action(async (name: string, flags: { cost?: string; tlsCredentials?: string; timeout?: string; wait?: string }, command: Command) => {
      const ctx = contextOf(command);
      const timeoutMs = timeoutOption(flags.timeout, 60_000);
      const waitFor = waitOption(flags.wait, "ready");
      const cost = integerOption("cost", flags.cost, { min: 1 });
      checkResourceName("Link", name);
      const existing = await current(ctx, "Link", name);
      if (!existing) throw new NotFoundError(`the link "${name}" is not available in the namespace "${ctx.namespace}"`);
      if (flags.tlsCredentials) {
        checkResourceName("Secret", flags.tlsCredentials);
        if (!(await current(ctx, "Secret", flags.tlsCredentials))) {
          throw new NotFoundError(`the TLS secret "${flags.tlsCredentials}" is not available in the namespace "${ctx.namespace}"`);
        }
      }
      const updated = await updateResource(ctx, "Link", name, (latest) => {
        const spec = { ...latest.spec };
        if (cost !== undefined) spec.cost = cost;
        if (flags.tlsCredentials) spec.tlsCredentials = flags.tlsCredentials;
        return { ...latest, spec };
      });
      if (!updated) throw new NotFoundError(`the link "${name}" is not available in the namespace "${ctx.namespace}"`);
      if (waitFor !== "none") {
        print("Waiting for update to complete...");
        await waitForResource(ctx, "Link", name, waitFor, timeoutMs);
      }
      print(`Link "${name}" is updated.`);
    });

  return link;
}

