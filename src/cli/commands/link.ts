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
import { formatDuration, parseDuration } from "../../common/duration.js";
import { InvalidInputError, NotFoundError, SkupperError, systemErrorCode, TimeoutError } from "../../common/errors.js";
import { contextOf, type CliContext } from "../context.js";
import { booleanOption, formatResource, integerOption, outputFormat, print, table, timeoutOption, waitOption, type OutputFormat } from "../output.js";
import { createResource, current, listCurrent, requireSite, statusOf, updateResource } from "../resources.js";
import { requireRunning } from "../runner.js";
import { checkNamesFree, classifyTokenFile, nextLinkName, readTokenText, redeemAccessToken } from "../tokens.js";
import { pollUntil, pollUntilGone, waitForResource } from "../wait.js";

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

/**
 * `link status --wait`: v1 took seconds (`--wait 30`); a duration (`30s`, `2m`) is accepted too.
 * 0 does not wait.
 */
export function waitSecondsOption(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = /^\d+$/.test(value.trim()) ? Number(value) * 1000 : parseDuration(value);
  if (ms === undefined || ms < 0) throw new InvalidInputError(`wait is not valid: "${value}" is neither a number of seconds nor a duration (examples: 30, 30s, 2m)`);
  return ms;
}

/**
 * Waits, at most `timeoutMs`, until the named Link (or every Link of the site) is Ready, saying on
 * stderr what it waits for so that stdout keeps the status alone. Incoming links are up as long
 * as they are listed, so there is nothing to wait for; a name that is no Link is reported by
 * the status that follows.
 */
async function waitForLinks(ctx: CliContext, name: string | undefined, timeoutMs: number): Promise<void> {
  const names = name !== undefined ? [name] : (await listCurrent(ctx, "Link")).map((l) => l.metadata.name);
  if (names.length === 0 || (name !== undefined && !(await current(ctx, "Link", name)))) return;
  const what = names.length === 1 ? `link "${names[0]}"` : `${names.length} links`;
  process.stderr.write(`Waiting up to ${formatDuration(timeoutMs)} for ${what} to be ready...\n`);
  await requireRunning(ctx);
  let pendingCount = names.length;
  const result = await pollUntil(ctx, timeoutMs, async () => {
    const pending: string[] = [];
    for (const linkName of names) {
      const link = await current(ctx, "Link", linkName);
      if (!link) {
        pending.push(`${linkName} (deleted)`);
        continue;
      }
      const { status, message } = statusOf(link);
      if (status !== "Ready") pending.push(`${linkName} is ${status} (${message})`);
    }
    pendingCount = pending.length;
    return pending.length === 0 ? { done: true, value: true } : { done: false, message: pending.join("; ") };
  });
  if (result.value) return;
  const which = names.length === 1 ? `Link "${names[0]}" is` : `${pendingCount} of ${names.length} links are`;
  throw new TimeoutError(`${which} not ready after ${formatDuration(timeoutMs)}: ${result.message ?? "no status yet"}`);
}

async function linkStatus(ctx: CliContext, nameOrAll: string | undefined, format: LinkStatusFormat | undefined, waitMs?: number): Promise<void> {
  // v1's `link status all`: every link, as with no name.
  const name = nameOrAll === "all" ? undefined : nameOrAll;
  if (name !== undefined) checkResourceName("Link", name);
  if (waitMs) await waitForLinks(ctx, name, waitMs);
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

interface LinkCreateFlags {
  name?: string;
  cost?: string;
  timeout?: string;
}

/** Where a Link dials, for the message v1 printed. */
function endpointOf(link: Link | undefined): string {
  const endpoint = link?.spec.endpoints?.[0];
  return endpoint ? `${endpoint.host}:${endpoint.port}` : "the issuing site";
}

/**
 * `skupper link create <file>` (v1): makes a link from any token file: an AccessToken or a v1
 * claim token is redeemed (as `token redeem` does), a Link with its Secret is stored (as
 * `apply` would). The link is named `--name`, else `link1`, `link2`, … as in v1.
 */
async function linkCreate(ctx: CliContext, file: string, flags: LinkCreateFlags): Promise<void> {
  const cost = integerOption("cost", flags.cost, { min: 1 });
  if (flags.name !== undefined) checkResourceName("Link", flags.name);
  const timeoutMs = timeoutOption(flags.timeout, 60_000);
  const held = classifyTokenFile(await readTokenText(file), file);
  await requireSite(ctx);
  await requireRunning(ctx);
  const name = flags.name ?? (await nextLinkName(ctx));
  const renameHint = "choose another name with --name";
  await checkNamesFree(ctx, name, ["Link", "Secret"], renameHint);

  if (held.kind === "link") {
    const self = (await ctx.platform.networkStatus())?.siteId;
    const target = held.link.metadata.annotations?.[Annotation.remoteSiteId];
    if (self && target === self) {
      throw new SkupperError("ERR_LINK_TO_SELF", `${file} was made by this site; a site cannot link to itself. Use the file on another site.`);
    }
    const { labels, annotations } = held.secret.metadata;
    const secret: Secret = {
      ...held.secret,
      metadata: { name, ...(labels ? { labels } : {}), ...(annotations ? { annotations } : {}) },
    };
    const linkAnnotations = held.link.metadata.annotations;
    const link: Link = {
      ...held.link,
      metadata: { name, ...(linkAnnotations ? { annotations: linkAnnotations } : {}) },
      spec: { ...held.link.spec, tlsCredentials: name, ...(cost !== undefined ? { cost } : {}) },
    };
    await createResource(ctx, secret);
    try {
      await createResource(ctx, link);
    } catch (err) {
      await ctx.platform.resources.delete("Secret", name);
      throw err;
    }
  } else {
    if (held.kind === "v1-claim" && held.expiration && Date.parse(held.expiration) < Date.now()) {
      process.stderr.write(`Warning: token may have expired, expiration time: ${held.expiration}\n`);
    }
    const token = {
      ...held.token,
      metadata: { name },
      spec: { ...held.token.spec, ...(cost !== undefined ? { linkCost: cost } : {}) },
    };
    await redeemAccessToken(ctx, token, timeoutMs, renameHint);
  }
  print(`Site configured to link to ${endpointOf(await current(ctx, "Link", name))} (name=${name})`);
  print(`Check the status of the link using 'skupper${ctx.nsFlag} link status'.`);
}

export function linkCommand(): Command {
  const link = new Command("link").description("Inspect and manage the links of this site");

  link
    .command("create <file>")
    .description("Create a link from a token file (v1 syntax): an access token, a cert token (Link and Secret) or a v1 claim token")
    .option("--name <name>", "name of the link (default: link1, link2, ...)")
    .option("--cost <cost>", "cost of the link (default: the token's, else 1)")
    .option("--timeout <duration>", "raise an error if a token is not redeemed in this time", "60s")
    .action(async (file: string, flags: LinkCreateFlags, command: Command) => {
      await linkCreate(contextOf(command), file, flags);
    });

  link
    .command("status [name]")
    .description("Show this site's links ('all' or no name: every link; -o wide: also the remote site, and the incoming links from other sites)")
    .option("-o, --output <format>", "json or yaml (the Link resources), or wide")
    .option("-v, --verbose", "the same as -o wide (v1's flag)")
    .option("--wait <seconds>", "wait this long (seconds, or a duration such as 30s) for the link, or every link, to be ready")
    .action(async (name: string | undefined, flags: { output?: string; verbose?: boolean; wait?: string }, command: Command) => {
      const format = linkStatusFormat(flags.output ?? (flags.verbose ? "wide" : undefined));
      await linkStatus(contextOf(command), name, format, waitSecondsOption(flags.wait));
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

