/**
 * Installation bundles (`skupper system generate-bundle`, docs/bundles.md): one file that
 * installs a site on another Linux host that has Node.js but not Skupper. It holds
 * `<name>/install.sh` (deploy/bundle/install.sh with the bundle's values filled in),
 * `<name>/app/` (the app with its production dependencies) and `<name>/resources/` (the site's
 * resources, as the installer copies them into the namespace's input). A tarball is that
 * directory as a `.tar.gz`; a shell script is deploy/bundle/self-extract.sh followed by the
 * tarball, checked against its SHA-256 before it is extracted.
 *
 * Everything is checked before anything is written; the file appears whole (temp file,
 * rename) with mode 0600, as it may carry link credentials.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, promises as fs, constants as fsConstants } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { errorMessage, InvalidInputError, SkupperError } from "../common/errors.js";
import { tempFileName } from "../common/files.js";
import { version } from "../common/version.js";
import { bundleScript, stageApp } from "./app.js";
import { readBundleResources, type BundleResources, type ResourceSource } from "./resources.js";

export { readBundleResources, type BundleResources, type ResourceSource } from "./resources.js";

export const BUNDLE_TYPES = ["tarball", "shell-script"] as const;
export type BundleType = (typeof BUNDLE_TYPES)[number];

const EXTENSIONS: Record<BundleType, string> = { tarball: ".tar.gz", "shell-script": ".sh" };
const BUNDLE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const VERSION = /^[0-9A-Za-z.+-]{1,64}$/;
const FILE_MODE = 0o600;
const DIR_MODE = 0o700;
const TAR_TIMEOUT_MS = 300_000;

export function bundleType(value: string | undefined): BundleType {
  const type = value ?? "tarball";
  if (!(BUNDLE_TYPES as readonly string[]).includes(type)) {
    throw new InvalidInputError(`invalid bundle type "${type}": use --type tarball (a .tar.gz with install.sh inside) or --type shell-script (a self-extracting .sh)`);
  }
  return type as BundleType;
}

export interface BundleRequest {
  /** A name (the bundle goes to `<home>/bundles/`) or a path with a directory part. */
  name: string;
  type: BundleType;
  namespace: string;
  /** Where the resources come from. */
  source: ResourceSource;
  /** The data home (`$SKUPPER_HOME`): bundles of a bare name go to its `bundles/`. */
  home: string;
}

export interface BundlePlan {
  /** The name of the bundle, and of its top directory. */
  name: string;
  type: BundleType;
  namespace: string;
  /** The file to write. */
  file: string;
  /** Whether `file`'s directory is `<home>/bundles/`, created if missing. */
  inDataHome: boolean;
  resources: BundleResources;
}

/** Checks everything about the bundle asked for, writing nothing. */
export async function planBundle(request: BundleRequest): Promise<BundlePlan> {
  const extension = EXTENSIONS[request.type];
  const { name: given } = request;
  if (given.trim() === "") throw new InvalidInputError("the bundle needs a name: skupper system generate-bundle <name>");
  if (given.endsWith("/")) throw new InvalidInputError(`"${given}" names a directory; give the bundle's file name, e.g. ${given}my-site`);
  const asPath = given.includes("/");
  let name = asPath ? path.basename(given) : given;
  if (name.endsWith(extension) && name.length > extension.length) name = name.slice(0, -extension.length);
  if (!BUNDLE_NAME.test(name)) {
    throw new InvalidInputError(
      `bundle name "${name}" is not valid: use letters, digits, '.', '_' and '-', starting with a letter or digit (at most 100 characters)`,
    );
  }
  const dir = asPath ? path.resolve(path.dirname(given)) : path.join(request.home, "bundles");
  if (asPath) await requireDirectory(dir);
  const file = path.join(dir, `${name}${extension}`);
  await requireWritableTarget(file);
  const resources = await readBundleResources(request.source, request.namespace);
  return { name, type: request.type, namespace: request.namespace, file, inDataHome: !asPath, resources };
}

async function requireDirectory(dir: string): Promise<void> {
  let stat;
  try {
    stat = await fs.stat(dir);
  } catch {
    throw new InvalidInputError(`directory ${dir} does not exist; create it, or give a bundle name without a directory to write it to the data home's bundles/`);
  }
  if (!stat.isDirectory()) throw new InvalidInputError(`${dir} is not a directory`);
}

async function requireWritableTarget(file: string): Promise<void> {
  try {
    if ((await fs.lstat(file)).isDirectory()) throw new InvalidInputError(`${file} is a directory; give the bundle another name`);
  } catch (err) {
    if (err instanceof SkupperError) throw err;
  }
}

/** Writes the bundle; resolves with its size in bytes. */
export async function writeBundle(plan: BundlePlan): Promise<number> {
  const work = await fs.mkdtemp(path.join(os.tmpdir(), "skupper-bundle-"));
  try {
    const root = path.join(work, plan.name);
    await fs.mkdir(path.join(root, "resources"), { recursive: true, mode: DIR_MODE });
    await stageApp(path.join(root, "app"));
    for (const { name, text } of plan.resources.files) {
      await fs.writeFile(path.join(root, "resources", name), text, { mode: FILE_MODE, flag: "wx" });
    }
    await fs.writeFile(path.join(root, "install.sh"), await installer(plan), { mode: 0o755 });
    if (plan.inDataHome) await fs.mkdir(path.dirname(plan.file), { recursive: true, mode: DIR_MODE });
    if (plan.type === "tarball") {
      return await writeOutput(plan.file, async (out) => tar(work, plan.name, out.fd));
    }
    const payload = path.join(work, "payload.tar.gz");
    const handle = await fs.open(payload, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, FILE_MODE);
    try {
      await tar(work, plan.name, handle.fd);
    } finally {
      await handle.close();
    }
    const header = await selfExtractHeader(plan, await sha256(payload));
    return await writeOutput(plan.file, async (out) => {
      await out.write(header);
      for await (const chunk of createReadStream(payload)) await out.write(chunk as Buffer);
    });
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

/** Fills in the values of a script of deploy/bundle, refusing any it has no value for. */
async function fillIn(script: "install.sh" | "self-extract.sh", values: Record<string, string>): Promise<string> {
  let text = await fs.readFile(bundleScript(script), "utf8");
  for (const [key, value] of Object.entries(values)) {
    // Values are checked names, versions and hex digits: nothing that needs quoting in sh.
    if (!/^[A-Za-z0-9._+-]*$/.test(value)) throw new SkupperError("ERR_BUNDLE", `cannot put "${value}" into ${script}`);
    text = text.replaceAll(`@${key}@`, value);
  }
  const left = /@[A-Z_]+@/.exec(text);
  if (left) throw new SkupperError("ERR_BUNDLE", `${bundleScript(script)} has a value ${left[0]} the bundle does not fill in`);
  return text;
}

function installer(plan: BundlePlan): Promise<string> {
  const v = version();
  return fillIn("install.sh", {
    BUNDLE_NAME: plan.name,
    BUNDLE_SITE: plan.resources.site.metadata.name,
    BUNDLE_NAMESPACE: plan.namespace,
    BUNDLE_VERSION: VERSION.test(v) ? v : "unknown",
  });
}

/** The script before the payload; its last line is the marker, and the payload starts on the next one. */
async function selfExtractHeader(plan: BundlePlan, payloadSha256: string): Promise<string> {
  const template = await fs.readFile(bundleScript("self-extract.sh"), "utf8");
  if (!template.endsWith("\n")) throw new SkupperError("ERR_BUNDLE", `${bundleScript("self-extract.sh")} must end with its marker line`);
  const lines = template.split("\n").length - 1;
  return fillIn("self-extract.sh", { BUNDLE_NAME: plan.name, PAYLOAD_LINE: String(lines + 1), PAYLOAD_SHA256: payloadSha256 });
}

/**
 * Writes `file` through `write` into a temp file of mode 0600 next to it, then renames it: the
 * bundle appears whole or not at all. Returns its size.
 */
async function writeOutput(file: string, write: (out: FileHandle) => Promise<void>): Promise<number> {
  const temp = tempFileName(file);
  let handle;
  try {
    handle = await fs.open(temp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, FILE_MODE);
  } catch (err) {
    throw new SkupperError("ERR_IO", `cannot write the bundle in ${path.dirname(file)}: ${errorMessage(err)}`);
  }
  try {
    await write(handle);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await fs.rename(temp, file);
    return (await fs.stat(file)).size;
  } catch (err) {
    await handle?.close();
    await fs.rm(temp, { force: true });
    if (err instanceof SkupperError) throw err;
    throw new SkupperError("ERR_IO", `cannot write the bundle ${file}: ${errorMessage(err)}`);
  }
}

/** `tar -czf - <name>` in `dir`, written to `fd`. */
function tar(dir: string, name: string, fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("tar", ["-C", dir, "-czf", "-", name], { stdio: ["ignore", fd, "pipe"], timeout: TAR_TIMEOUT_MS });
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => {
      if (stderr.length < 4096) stderr += chunk.toString();
    });
    child.once("error", (err) => {
      const missing = (err as NodeJS.ErrnoException).code === "ENOENT";
      reject(new SkupperError("ERR_BUNDLE", missing ? "tar is not installed; it is needed to make the bundle" : `tar failed: ${errorMessage(err)}`));
    });
    child.once("close", (code, signal) => {
      if (code === 0) resolve();
      else reject(new SkupperError("ERR_BUNDLE", `tar failed (${signal ?? `exit code ${code}`}): ${stderr.trim()}`));
    });
  });
}

async function sha256(file: string): Promise<string> {
  const hash = createHash("sha256");
  await pipeline(createReadStream(file), hash);
  return hash.digest("hex");
}
