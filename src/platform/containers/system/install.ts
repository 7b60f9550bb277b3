/**
 * `skupper system install|uninstall` on podman and docker. Install checks what a site container
 * needs (an engine that answers, the image) and makes the little it needs (the data directory;
 * a systemd unit per site where systemd runs, so sites start at boot). There is no system
 * controller container: changes to resources apply live in each site process. Uninstall stops
 * and removes the site containers (with --force) and the units; the sites' files are kept.
 */
import { execFile } from "node:child_process";
import { promises as fs, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { SkupperError } from "../../../common/errors.js";
import { LocalResourceStore, readPlatformRecord, SitePaths, skupperHome } from "../../local/index.js";
import { buildHint, EngineClient, EngineError } from "../engine/client.js";
import { resolveEndpoint, type EngineName } from "../engine/endpoint.js";
import { APPLICATION, APPLICATION_LABEL, NAMESPACE_LABEL, PLATFORM_LABEL, ROOT_LABEL, siteImage, STOP_GRACE_SECONDS } from "../runner/spec.js";

const SYSTEMCTL_TIMEOUT_MS = 10_000;

export interface InstallOptions {
  engine: EngineName;
  reloadType: "manual" | "auto";
  print: (line: string) => void;
  home?: string;
  env?: NodeJS.ProcessEnv;
  /** The CLI's entry point, for the units' ExecStart (default: this process's script). */
  cliMain?: string;
}

export interface UninstallOptions {
  engine: EngineName;
  force: boolean;
  print: (line: string) => void;
  env?: NodeJS.ProcessEnv;
}

/** Whether systemd manages this host: PID 1 is systemd and `systemctl is-system-running` is not offline. */
export async function systemdState(): Promise<{ running: true } | { running: false; why: string }> {
  let init = "";
  try {
    init = readFileSync("/proc/1/comm", "utf8").trim();
  } catch {
    return { running: false, why: "PID 1 cannot be read" };
  }
  if (init !== "systemd") return { running: false, why: `PID 1 is ${init || "unknown"}, not systemd` };
  const state = await new Promise<string>((resolve) => {
    execFile("systemctl", ["is-system-running"], { timeout: SYSTEMCTL_TIMEOUT_MS }, (_err, stdout) => resolve(String(stdout).trim()));
  });
  if (state === "" || state === "offline") return { running: false, why: `"systemctl is-system-running" says ${state || "nothing"}` };
  return { running: true };
}

function unitDirectory(): { dir: string; user: boolean } {
  return process.getuid?.() === 0 ? { dir: "/etc/systemd/system", user: false } : { dir: path.join(os.homedir(), ".config", "systemd", "user"), user: true };
}

function unitName(engine: EngineName, namespace: string): string {
  return `skupper-${engine}-${namespace}.service`;
}

function systemctl(user: boolean, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile("systemctl", [...(user ? ["--user"] : []), ...args], { timeout: SYSTEMCTL_TIMEOUT_MS }, (err, _stdout, stderr) =>
      err ? reject(new SkupperError("ERR_SYSTEMD", `"systemctl ${args.join(" ")}" failed: ${String(stderr).trim() || err.message}`)) : resolve(),
    );
  });
}

/** Namespaces under the data home whose site runs on this engine. */
async function namespacesOf(home: string, engine: EngineName): Promise<string[]> {
  let names: string[] = [];
  try {
    names = await fs.readdir(path.join(home, "namespaces"));
  } catch {
    return [];
  }
  const found: string[] = [];
  for (const name of names.sort()) {
    const record = await readPlatformRecord(new SitePaths(home, name)).catch(() => undefined);
    if (record?.platform === engine) found.push(name);
  }
  return found;
}

export async function installPlatform(options: InstallOptions): Promise<void> {
  const { engine, print } = options;
  const env = options.env ?? process.env;
  const home = options.home ?? skupperHome(env);
  const client = new EngineClient(resolveEndpoint(engine, env));
  const version = await client.version();
  print(`Engine: ${version.product} ${version.version} at ${client.endpoint.socketPath}`);
  const image = siteImage(env);
  const id = await client.imageId(image);
  if (!id) throw new EngineError("ERR_IMAGE_MISSING", `The image ${image} is not on ${client.describe()}. ${buildHint(engine)}`);
  print(`Image: ${image} (${id.replace(/^sha256:/, "").slice(0, 12)})`);
  await fs.mkdir(path.join(home, "namespaces"), { recursive: true, mode: 0o700 });
  print(`Sites are kept in: ${path.join(home, "namespaces")}`);
  if (options.reloadType === "auto") print("Reload type auto: nothing to set up, changes to a site's resources apply live without a reload.");
  const systemd = await systemdState();
  if (!systemd.running) {
    print(`systemd is not running on this host (${systemd.why}): no units are written. Site containers come back after a crash by their restart policy (unless-stopped) while the engine runs; start them after a reboot with "skupper system start".`);
  } else {
    const { dir, user } = unitDirectory();
    await fs.mkdir(dir, { recursive: true });
    const cli = options.cliMain ?? process.argv[1] ?? "skupper";
    for (const namespace of await namespacesOf(home, engine)) {
      const name = unitName(engine, namespace);
      const endpoint = `unix://${client.endpoint.socketPath}`;
      const unit = [
        "[Unit]",
        `Description=Skupper site of namespace ${namespace} (${engine} container)`,
        ...(engine === "docker" ? ["After=docker.service", "Wants=docker.service"] : ["After=podman.socket", "Wants=podman.socket"]),
        "",
        "[Service]",
        "Type=oneshot",
        "RemainAfterExit=yes",
        `Environment=SKUPPER_HOME=${home}`,
        `Environment=CONTAINER_ENDPOINT=${endpoint}`,
        `ExecStart=${process.execPath} ${cli} --platform ${engine} -n ${namespace} system start --wait none`,
        `ExecStop=${process.execPath} ${cli} --platform ${engine} -n ${namespace} system stop`,
        "",
        "[Install]",
        `WantedBy=${user ? "default.target" : "multi-user.target"}`,
        "",
      ].join("\n");
      await fs.writeFile(path.join(dir, name), unit, { mode: 0o644 });
      print(`Unit written: ${path.join(dir, name)}`);
    }
    await systemctl(user, ["daemon-reload"]);
    for (const namespace of await namespacesOf(home, engine)) await systemctl(user, ["enable", unitName(engine, namespace)]);
    if (user) print(`It is recommended to enable lingering for ${os.userInfo().username} ("loginctl enable-linger"), otherwise Skupper may not start on boot.`);
  }
  print(`Platform ${engine} is now configured for Skupper`);
}

export async function uninstallPlatform(options: UninstallOptions): Promise<void> {
  const { engine, print } = options;
  const client = new EngineClient(resolveEndpoint(engine, options.env ?? process.env));
  const active = await client.listContainers({ [APPLICATION_LABEL]: APPLICATION, [PLATFORM_LABEL]: engine }, { runningOnly: true });
  for (const container of active) {
    const namespace = container.labels[NAMESPACE_LABEL] ?? container.name;
    print(`The ${await siteName(container.labels[ROOT_LABEL], namespace)} site is active (namespace ${namespace})`);
  }
  if (active.length > 0 && !options.force) {
    throw new SkupperError("ERR_ACTIVE_SITES", "Uninstallation halted: Active sites detected. Use --force flag to stop and remove active sites", 1);
  }
  for (const container of active) {
    const namespace = container.labels[NAMESPACE_LABEL] ?? container.name;
    print(`Removing active site namespace "${namespace}"`);
    await client.stopContainer(container.name, STOP_GRACE_SECONDS);
    await client.removeContainer(container.name);
    const root = container.labels[ROOT_LABEL];
    if (root) await fs.rm(path.join(root, "runtime", "container-site.pid"), { force: true });
  }
  const systemd = await systemdState();
  if (systemd.running) {
    const { dir, user } = unitDirectory();
    let removed = false;
    for (const file of await fs.readdir(dir).catch(() => [] as string[])) {
      if (!file.startsWith(`skupper-${engine}-`) || !file.endsWith(".service")) continue;
      await systemctl(user, ["disable", file]).catch(() => undefined);
      await fs.rm(path.join(dir, file), { force: true });
      print(`Unit removed: ${path.join(dir, file)}`);
      removed = true;
    }
    if (removed) await systemctl(user, ["daemon-reload"]);
  }
  print(`Platform ${engine} infrastructure for Skupper is now uninstalled`);
}

/** The name of the Site in the namespace directory `root`, else the namespace's. */
async function siteName(root: string | undefined, namespace: string): Promise<string> {
  if (!root) return namespace;
  try {
    const paths = new SitePaths(path.dirname(path.dirname(root)), path.basename(root));
    const sites = await new LocalResourceStore(paths).list("Site");
    return sites[0]?.metadata.name ?? namespace;
  } catch {
    return namespace;
  }
}
