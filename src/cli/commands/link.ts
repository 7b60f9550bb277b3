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
import { formatResource, integerOption, outputFormat, print, table, timeoutOption, waitOption } from "../output.js";
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

async function linkRows(ctx: CliContext): Promise<{ rows: LinkRow[]; outgoing: Link[]; incoming: unknown[] }> {
  const outgoing = await listCurrent(ctx, "Link");
  const network = await ctx.platform.networkStatus();
  const incoming = network?.router?.incoming ?? [];
  const rows: LinkRow[] = outgoing.map((link) => {
    const { status, message } = statusOf(link);
    return {
      name: link.metadata.name,
      status,
      remoteSite: link.status?.remoteSiteName ?? link.metadata.annotations?.[Annotation.remoteSiteName] ?? "",
      cost: String(Math.max(1, link.spec.cost ?? DEFAULT_LINK_COST)),
      direction: "outgoing",
      message,
    };
  });
  for (const link of incoming) {
    rows.push({ name: link.name, status: "Ready", remoteSite: link.remoteSiteName, cost: String(link.cost), direction: "incoming", message: "OK" });
  }
  return { rows, outgoing, incoming };
}

export function linkCommand(): Command {
  const link = new Command("link").description("Inspect and manage the links of this site");

  link
    .command("status [name]")
    .description("Show outgoing links and the incoming links from other sites")
    .option("-o, --output <format>", "json or yaml")
    .action(async (name: string | undefined, flags: { output?: string }, command: Command) => {
      const ctx = contextOf(command);
      const format = outputFormat(flags.output);
      const { rows, outgoing, incoming } = await linkRows(ctx);
      const selected = name ? rows.filter((r) => r.name === name) : rows;
      if (format) {
        const links = name ? outgoing.filter((l) => l.metadata.name === name) : outgoing;
        print(formatResource({ links, incoming: name ? incoming.filter((i) => (i as { name: string }).name === name) : incoming }, format));
        return;
      }
      if (name && selected.length === 0) throw new NotFoundError(`There is no link named "${name}" in namespace "${ctx.namespace}"`);
      if (selected.length === 0) {
        print("There are no link resources in the namespace");
        return;
      }
      if (name) {
        for (const row of selected) {
          print(
            [
              `Name:\t\t${row.name}`,
              `Status:\t\t${row.status}`,
              `Remote site:\t${row.remoteSite}`,
              `Cost:\t\t${row.cost}`,
              `Direction:\t${row.direction}`,
              `Message:\t${row.message}`,
            ].join("\n"),
          );
        }
        return;
      }
      print(
        table(
          ["NAME", "STATUS", "REMOTE SITE", "COST", "DIRECTION", "MESSAGE"],
          selected.map((r) => [r.name, r.status, r.remoteSite, r.cost, r.direction, r.message]),
        ),
      );
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
    .option("--generate-credential [true|false]", "accepted for compatibility; a credential is always generated")
    .option("--timeout <duration>", "accepted for compatibility", "60s")
    .option("-o, --output <format>", "json or yaml", "yaml")
    .action(async (flags: { name?: string; host?: string; cost?: string; tlsCredentials?: string; timeout?: string; output?: string }, command: Command) => {
      const ctx = contextOf(command);
      const format = outputFormat(flags.output) ?? "yaml";
      timeoutOption(flags.timeout, 60_000);
      const cost = integerOption("cost", flags.cost, { min: 1 }) ?? 1;
      const { link, secret } = await generateLinkBundle(ctx, {
        ...(flags.name ? { name: flags.name } : {}),
        ...(flags.host ? { host: flags.host } : {}),
        ...(flags.tlsCredentials ? { tlsCredentials: flags.tlsCredentials } : {}),
        cost,
      });
      if (format === "yaml") process.stdout.write(toYamlDocuments([link, secret]));
      else print(formatResource({ apiVersion: "v1", kind: "List", items: [link, secret] }, "json"));
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

