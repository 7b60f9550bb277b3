/**
 * Token files as the CLI reads them, and their redemption: shared by `token redeem` (v2) and
 * `link create` (v1), which accepts every kind of token a user may hold:
 *
 * - an AccessToken (`token issue`, `token create -t claim`): redeemed at the issuing site's
 *   grant server;
 * - a Link with its Secret (`token create -t cert`, `link generate`): stored as they are;
 * - a v1 claim token, a `Secret` labelled `skupper.io/type: token-claim` with the grant
 *   server's URL in an annotation and the code and CA in its data: redeemed as the
 *   AccessToken it describes.
 *
 * Every check is made before anything is written, and each refusal names the file.
 */
import path from "node:path";
import {
  API_VERSION,
  conditionOf,
  ConditionType,
  MAX_FILE_BYTES,
  validateResource,
  type AccessToken,
  type Link,
  type Secret,
} from "../api/index.js";
import { AlreadyExistsError, InvalidInputError, NotFoundError, SkupperError, systemErrorCode, TimeoutError, ValidationError } from "../common/errors.js";
import { readTextLimited } from "../common/files.js";
import { samePem } from "../common/pem.js";
import { parseAccessTokenFile, parseTokenDocuments } from "../grants/index.js";
import type { CliContext } from "./context.js";
import { createResource, current, requireSite } from "./resources.js";
import { requireRunning } from "./runner.js";
import { pollUntil, pollUntilGone } from "./wait.js";

/** How long a failed redemption waits for its AccessToken to be gone before it reports. */
const TOKEN_REMOVAL_MS = 5_000;

/** The label and annotations of a v1 claim token (a Secret). */
export const V1_TYPE_LABEL = "skupper.io/type";
export const V1_CLAIM_TYPE = "token-claim";
export const V1_CERT_TYPE = "connection-token";
export const V1_URL_ANNOTATION = "skupper.io/url";
export const V1_EXPIRATION_ANNOTATION = "skupper.io/claim-expiration";

/** What a token file holds, once recognised. */
export type TokenFile =
  | { kind: "access-token"; token: AccessToken }
  | { kind: "v1-claim"; token: AccessToken; expiration?: string }
  | { kind: "link"; link: Link; secret: Secret };

const WHAT_A_TOKEN_IS =
  'expected an AccessToken (from "skupper token issue" or "skupper token create"), a Link with its Secret ' +
  '(from "skupper token create -t cert" or "skupper link generate"), or a v1 claim token';

/** The text of a token file (at most MAX_FILE_BYTES), or a NotFoundError naming it. */
export async function readTokenText(file: string): Promise<string> {
  const text = await readTextLimited(path.resolve(file), MAX_FILE_BYTES, { label: file });
  if (text === undefined) throw new NotFoundError(`token file does not exist: ${file}`);
  return text;
}

/** The AccessToken of a `token issue` file (exactly one AccessToken). */
export async function readAccessTokenFile(file: string): Promise<AccessToken> {
  return parseAccessTokenFile(await readTokenText(file), file);
}

function decodeBase64(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  return Buffer.from(value.replace(/\s+/g, ""), "base64").toString("utf8");
}

/** The AccessToken a v1 claim token Secret stands for; a ValidationError naming the file if it is incomplete. */
function v1ClaimToken(secret: Secret, source: string): { token: AccessToken; expiration?: string } {
  const url = secret.metadata.annotations?.[V1_URL_ANNOTATION];
  const code = decodeBase64(secret.data?.password) ?? secret.stringData?.password;
  const ca = decodeBase64(secret.data?.["ca.crt"]) ?? secret.stringData?.["ca.crt"];
  const missing = [
    ...(url ? [] : [`the annotation ${V1_URL_ANNOTATION}`]),
    ...(code ? [] : ["data.password"]),
    ...(ca ? [] : ['data["ca.crt"]']),
  ];
  if (missing.length > 0) throw new ValidationError([`${source}: this v1 claim token lacks ${missing.join(", ")}`]);
  const candidate = {
    apiVersion: API_VERSION,
    kind: "AccessToken",
    metadata: { name: secret.metadata.name },
    spec: { url, code, ca },
  };
  const result = validateResource(candidate, `${source} (v1 claim token)`);
  if (!result.ok) throw new ValidationError(result.problems);
  const expiration = secret.metadata.annotations?.[V1_EXPIRATION_ANNOTATION];
  return { token: result.resource as AccessToken, ...(expiration ? { expiration } : {}) };
}

/** Recognises what a token file holds; anything else is refused with what was found. */
export function classifyTokenFile(text: string, source: string): TokenFile {
  const resources = parseTokenDocuments(text, source);
  const found = resources.map((r) => r.kind).join(", ") || "nothing";
  const [first] = resources;
  if (resources.length === 1 && first?.kind === "AccessToken") return { kind: "access-token", token: first as AccessToken };
  if (resources.length === 1 && first?.kind === "Secret") {
    const type = first.metadata.labels?.[V1_TYPE_LABEL];
    if (type === V1_CLAIM_TYPE) return { kind: "v1-claim", ...v1ClaimToken(first as Secret, source) };
    if (type === V1_CERT_TYPE) {
      throw new InvalidInputError(
        `${source} is a v1 cert token: it links to a v1 site, whose routers this version cannot link with. ` +
          'On the site to link to, make a token with "skupper token issue" or "skupper token create -t cert".',
      );
    }
  }
  const links = resources.filter((r): r is Link => r.kind === "Link");
  const secrets = resources.filter((r): r is Secret => r.kind === "Secret");
  if (links.length === 1 && secrets.length === 1 && resources.length === 2) {
    const [link, secret] = [links[0] as Link, secrets[0] as Secret];
    const uses = link.spec.tlsCredentials || link.metadata.name;
    if (uses !== secret.metadata.name) {
      throw new InvalidInputError(`${source}: the Link "${link.metadata.name}" uses the Secret "${uses}", but the file holds the Secret "${secret.metadata.name}"`);
    }
    if (!secret.data?.["tls.crt"] || !secret.data["tls.key"] || !secret.data["ca.crt"]) {
      throw new InvalidInputError(`${source}: the Secret "${secret.metadata.name}" must hold tls.crt, tls.key and ca.crt`);
    }
    if (!link.spec.endpoints?.length) throw new InvalidInputError(`${source}: the Link "${link.metadata.name}" has no endpoints to dial`);
    return { kind: "link", link, secret };
  }
  throw new InvalidInputError(`${source} is not a token: ${WHAT_A_TOKEN_IS}; found ${found}`);
}

/** Names a redemption or a stored link would take, refused up front if any is in use. */
export async function checkNamesFree(
  ctx: CliContext,
  name: string,
  kinds: ReadonlyArray<"AccessToken" | "Link" | "Secret">,
  renameHint: string,
): Promise<void> {
  for (const kind of kinds) {
    const existing = await current(ctx, kind, name);
    if (!existing) continue;
    if (kind === "AccessToken" && (existing as AccessToken).status?.redeemed) {
      throw new AlreadyExistsError(`Token "${name}" has already been redeemed by this site (link "${name}")`);
    }
    throw new AlreadyExistsError(
      kind === "AccessToken"
        ? `An access token named "${name}" already exists in namespace "${ctx.namespace}"`
        : `A ${kind} named "${name}" already exists in namespace "${ctx.namespace}"; delete it first or ${renameHint}`,
    );
  }
}

/**
 * Redeems a token: stores it as an AccessToken, waits (bounded) until the site process has
 * redeemed it, and leaves nothing behind when it could not be. The Link and Secret it produces
 * are named after the token.
 */
export async function redeemAccessToken(ctx: CliContext, token: AccessToken, timeoutMs: number, renameHint = "rename the token (metadata.name)"): Promise<void> {
  const name = token.metadata.name;
  const site = await requireSite(ctx);
  await requireRunning(ctx);
  await checkNamesFree(ctx, name, ["AccessToken", "Link", "Secret"], renameHint);
  const ownGrantCa = (await ctx.platform.networkStatus())?.grantServerCa;
  if (ownGrantCa && samePem(ownGrantCa, token.spec.ca)) {
    throw new SkupperError(
      "ERR_LINK_TO_SELF",
      `This token was issued by this site ("${site.metadata.name}"); a site cannot link to itself. Redeem the token on another site.`,
    );
  }

  const { status: _status, ...desired } = token;
  // Atomic: of two redemptions of one token at once, one goes ahead and the other is refused.
  try {
    await createResource(ctx, desired as AccessToken);
  } catch (err) {
    if (systemErrorCode(err) === "ERR_ALREADY_EXISTS") throw new AlreadyExistsError(`An access token named "${name}" already exists in namespace "${ctx.namespace}"`);
    throw err;
  }
  type Outcome = { ok: true } | { ok: false; message: string };
  const result = await pollUntil<Outcome>(ctx, timeoutMs, async () => {
    const status = (await current(ctx, "AccessToken", name))?.status;
    if (status?.redeemed) return { done: true, value: { ok: true } };
    const redeemed = conditionOf(status?.conditions, ConditionType.Redeemed);
    if (redeemed?.reason === "Error") return { done: true, value: { ok: false, message: redeemed.message } };
    return { done: false, ...(redeemed?.message ? { message: redeemed.message } : {}) };
  });
  if (result.value?.ok === true) return;
  // Nothing is left behind by a redemption that did not produce a link: the token is deleted,
  // and gone once the site process is done with it (so the same token can be redeemed again).
  await ctx.platform.resources.delete("AccessToken", name);
  await pollUntilGone(ctx, "AccessToken", name, TOKEN_REMOVAL_MS).catch(() => false);
  if (result.value?.ok === false) throw new SkupperError("ERR_REDEMPTION", `Token "${name}" could not be redeemed: ${result.value.message}`);
  throw new TimeoutError(`Token "${name}" redeem not ready yet${result.message ? `: ${result.message}` : ", check the status for more information"}`);
}

/** Whether any resource of these kinds has this name (deleted ones still count until they are gone). */
export async function nameTaken(ctx: CliContext, name: string, kinds: ReadonlyArray<"AccessToken" | "Link" | "Secret">): Promise<boolean> {
  for (const kind of kinds) if (await ctx.platform.resources.get(kind, name)) return true;
  return false;
}

/** v1's default link names: `link1`, `link2`, … the first one no Link, Secret or AccessToken uses. */
export async function nextLinkName(ctx: CliContext): Promise<string> {
  for (let n = 1; ; n++) {
    const name = `link${n}`;
    if (!(await nameTaken(ctx, name, ["Link", "Secret", "AccessToken"]))) return name;
  }
}
