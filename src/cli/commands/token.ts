import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";
import { Command } from "commander";
import {
  API_VERSION,
  checkResourceName,
  linkAccessEnabled,
  toYaml,
  toYamlDocuments,
  type AccessGrant,
  type AccessToken,
} from "../../api/index.js";
import { describeDuration, formatDuration, parseDuration } from "../../common/duration.js";
import { InvalidInputError, NotFoundError, SkupperError } from "../../common/errors.js";
import { writeFileAtomic } from "../../common/files.js";
import { contextOf, type CliContext } from "../context.js";
import { integerOption, print, timeoutOption } from "../output.js";
import { createResource, current, requireSite } from "../resources.js";
import { requireRunning } from "../runner.js";
import { readAccessTokenFile, redeemAccessToken } from "../tokens.js";
import { waitForResource } from "../wait.js";
import { generateLinkBundle } from "./link.js";

const LINK_ACCESS_NOT_ENABLED =
  'Link access at this site is not currently enabled. You can use "skupper site update --enable-link-access" to enable it.';

interface IssueOptions {
  file: string;
  expirationWindowMs: number;
  redemptionsAllowed: number;
  grant?: string;
  /** The code the token carries (v1's claim password); by default the site picks a random one. */
  code?: string;
  timeoutMs: number;
  cost: number;
}

async function checkTokenFile(file: string): Promise<string> {
  const resolved = path.resolve(file);
  try {
    if ((await fs.stat(resolved)).isDirectory()) throw new InvalidInputError(`token file name is a directory: ${file}`);
  } catch (err) {
    if (err instanceof InvalidInputError) throw err;
  }
  try {
    await fs.access(path.dirname(resolved), fs.constants.W_OK);
  } catch {
    throw new InvalidInputError(`invalid token file name: cannot write to the directory ${path.dirname(resolved)}`);
  }
  return resolved;
}

function randomSuffix(): string {
  const alphabet = "bcdfghjklmnpqrstvwxz2456789";
  return [...randomBytes(5)].map((b) => alphabet[b % alphabet.length]).join("");
}

async function issueToken(ctx: CliContext, options: IssueOptions): Promise<void> {
  const file = await checkTokenFile(options.file);
  const site = await requireSite(ctx);
  if (site.spec.edge) throw new SkupperError("ERR_EDGE", "Edge sites cannot accept incoming links from remote sites");
  if (!linkAccessEnabled(site)) throw new SkupperError("ERR_LINK_ACCESS", LINK_ACCESS_NOT_ENABLED);
  await requireRunning(ctx);
  print("Waiting for token status ...");
  await waitForResource(ctx, "Site", site.metadata.name, "ready", options.timeoutMs);

  let grantName = options.grant;
  if (grantName) {
    checkResourceName("AccessGrant", grantName);
    if (!(await current(ctx, "AccessGrant", grantName))) throw new NotFoundError(`There is no access grant named "${grantName}" in namespace "${ctx.namespace}"`);
  } else {
    do grantName = `${site.metadata.name}-${randomSuffix()}`;
    while (await ctx.platform.resources.get("AccessGrant", grantName));
    const grant: AccessGrant = {
      apiVersion: API_VERSION,
      kind: "AccessGrant",
      metadata: { name: grantName },
      spec: {
        redemptionsAllowed: options.redemptionsAllowed,
        expirationWindow: formatDuration(options.expirationWindowMs),
        ...(options.code !== undefined ? { code: options.code } : {}),
      },
    };
    await createResource(ctx, grant);
  }
  const grant = await waitForResource(ctx, "AccessGrant", grantName, "ready", options.timeoutMs);
  const { url, code, ca } = grant.status ?? {};
  if (!url || !code || !ca) throw new SkupperError("ERR_GRANT", `grant "${grantName}" not ready yet, check the status for more information`);
  const token: AccessToken = {
    apiVersion: API_VERSION,
    kind: "AccessToken",
    metadata: { name: grantName },
    spec: { url, code, ca, linkCost: options.cost },
  };
  await writeFileAtomic(file, toYaml(token), { mode: 0o600 });
  const allowed = grant.spec.redemptionsAllowed || 1;
  const expiresIn = Date.parse(grant.status?.expirationTime ?? "") - Date.now();
  print(`Access grant "${grantName}" is ready.`);
  print(`Token file ${file} created.`);
  print();
  print("Transfer this file to a remote site. At the remote site,");
  print(`create a link to this site using the "skupper token redeem" command:`);
  print();
  print(`    $ skupper token redeem ${options.file}`);
  print();
  print(
    `The token expires after ${allowed} use${allowed === 1 ? "" : "s"} or after ${describeDuration(options.grant && expiresIn > 0 ? expiresIn : options.expirationWindowMs)}.`,
  );
}

async function redeemTokenFile(ctx: CliContext, file: string, timeoutMs: number): Promise<void> {
  const token = await readAccessTokenFile(file);
  const name = token.metadata.name;
  await redeemAccessToken(ctx, token, timeoutMs);
  print(`Token "${name}" has been redeemed.`);
  print(`Link "${name}" created; check its status with "skupper${ctx.nsFlag} link status".`);
}

export function tokenCommand(): Command {
  const token = new Command("token").description("Issue and redeem tokens that create links between sites");

  token
    .command("issue <file>")
    .description("Issue a token file redeemable for a link to this site")
    .option("--expiration-window <duration>", "period of time in which the token can be redeemed", "15m")
    .option("--redemptions-allowed <n>", "number of times the token can be redeemed", "1")
    .option("--grant <name>", "use this access grant instead of creating a new one")
    .option("--timeout <duration>", "raise an error if the token is not ready in this time", "60s")
    .option("--cost <cost>", "cost of the links created with the token", "1")
    .action(async (file: string, flags: { expirationWindow: string; redemptionsAllowed: string; grant?: string; timeout?: string; cost: string }, command: Command) => {
      const ctx = contextOf(command);
      const redemptionsAllowed = integerOption("number of redemptions", flags.redemptionsAllowed, { min: 1 }) as number;
      const windowMs = parseDuration(flags.expirationWindow);
      if (windowMs === undefined) throw new InvalidInputError(`expiration time is not valid: "${flags.expirationWindow}" is not a duration (examples: 15m, 1h, 24h)`);
      if (windowMs < 60_000) {
        throw new InvalidInputError(`expiration time is not valid: duration must not be less than 1m0s; got ${formatDuration(windowMs)}`);
      }
      const cost = integerOption("cost", flags.cost, { min: 0 }) as number;
      await issueToken(ctx, {
        file,
        expirationWindowMs: windowMs,
        redemptionsAllowed,
        ...(flags.grant ? { grant: flags.grant } : {}),
        timeoutMs: timeoutOption(flags.timeout, 60_000),
        cost,
      });
    });

  token
    .command("redeem <file>")
    .description("Redeem a token file: creates a link from this site to the site that issued it")
    .option("--timeout <duration>", "raise an error if the redemption does not complete in this time", "60s")
    .action(async (file: string, flags: { timeout?: string }, command: Command) => {
      const ctx = contextOf(command);
      await redeemTokenFile(ctx, file, timeoutOption(flags.timeout, 60_000));
    });

  token
    .command("create <file>")
    .description("Create a token (v1 syntax): a claim token, as 'token issue', or a cert token, as 'link generate'")
    .option("-t, --token-type <type>", "claim or cert", "claim")
    .option("--expiry <duration>", "claim tokens: period of time in which the token can be redeemed", "15m0s")
    .option("--uses <n>", "claim tokens: number of times the token can be redeemed", "1")
    .option("-p, --password <password>", "claim tokens: the code the token carries (default: a random one)")
    .option("--name <name>", "cert tokens: name of the link the token creates")
    .option("--cost <cost>", "cost of the links created with the token", "1")
    .option("--timeout <duration>", "raise an error if the token is not ready in this time", "60s")
    .action(async (file: string, flags: { tokenType: string; expiry: string; uses: string; password?: string; name?: string; cost: string; timeout?: string }, command: Command) => {
      const ctx = contextOf(command);
      const cost = integerOption("cost", flags.cost, { min: 0 }) as number;
      if (flags.password !== undefined && flags.tokenType !== "claim") throw new InvalidInputError("--password is for claim tokens only");
      if (flags.password !== undefined && !flags.password) throw new InvalidInputError("password must not be empty");
      if (flags.tokenType === "cert") {
        const target = await checkTokenFile(file);
        const { link, secret } = await generateLinkBundle(ctx, { ...(flags.name ? { name: flags.name } : {}), cost: Math.max(1, cost) });
        await writeFileAtomic(target, toYamlDocuments([link, secret]), { mode: 0o600 });
        print(`Token written to ${file}: use it on another site with "skupper link create ${file}" (or "skupper apply -f ${file}").`);
        print("Cert tokens do not expire and any number of sites can link with one, until revoke-access. Protect this file.");
        return;
      }
      if (flags.tokenType !== "claim") throw new InvalidInputError(`token type "${flags.tokenType}" is not valid: use claim or cert`);
      const windowMs = parseDuration(flags.expiry);
      if (windowMs === undefined || windowMs < 60_000) throw new InvalidInputError(`expiry is not valid: "${flags.expiry}" (at least 1m)`);
      await issueToken(ctx, {
        file,
        expirationWindowMs: windowMs,
        redemptionsAllowed: integerOption("uses", flags.uses, { min: 1 }) as number,
        ...(flags.password !== undefined ? { code: flags.password } : {}),
        timeoutMs: timeoutOption(flags.timeout, 60_000),
        cost,
      });
    });

  return token;
}
