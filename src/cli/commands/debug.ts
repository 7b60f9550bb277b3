/**
 * `skupper debug dump [file]`: a gzipped tarball of what helps someone else diagnose a site
 * (versions, resources with status, the network view, `system status`, recent logs, metrics),
 * with every key, code and private part of a certificate redacted (docs/troubleshooting.md).
 *
 * As the original, the archive is `<file>-<namespace>-<YYYYMMDDhhmmss>.tar.gz` (file defaults to
 * `skupper-dump`), and an existing file of that name is replaced. Unlike the original, a `.tar.gz`
 * or `.tgz` the user typed is moved to the end rather than left in the middle of the name, the
 * archive is written atomically with mode 0600, and keys and Secret data are never in it.
 */
import { execFile } from "node:child_process";
import { promises as fs } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Command } from "commander";
import { errorMessage, InvalidInputError, SkupperError } from "../../common/errors.js";
import { writeFileAtomic } from "../../common/files.js";
import { archive, collectDump, DumpLeakError, kubernetesSources, localSources, type DumpSources } from "../../diagnostics/index.js";
import { ContainerSiteRunner } from "../../platform/containers/index.js";
import type { KubernetesPlatform } from "../../platform/kubernetes/index.js";
import { SitePaths, skupperHome } from "../../platform/local/index.js";
import { contextOf, optionsOf, type CliContext, type GlobalOptions } from "../context.js";
import { print } from "../output.js";

const DEFAULT_BASE = "skupper-dump";
/** The CLI itself, to record what `skupper system status` prints. */
const CLI_MAIN = fileURLToPath(new URL("../main.js", import.meta.url));
const SYSTEM_STATUS_TIMEOUT_MS = 30_000;

/** `<base>-<namespace>-<YYYYMMDDhhmmss>.tar.gz`, local time, as the original names it. */
export function dumpFileName(file: string | undefined, namespace: string, now: Date): string {
  const base = (file ?? DEFAULT_BASE).replace(/\.(tar\.gz|tgz)$/, "");
  const p = (n: number) => String(n).padStart(2, "0");
  const stamp = `${now.getFullYear()}${p(now.getMonth() + 1)}${p(now.getDate())}${p(now.getHours())}${p(now.getMinutes())}${p(now.getSeconds())}`;
  return `${base}-${namespace}-${stamp}.tar.gz`;
}

/** Refuses, before anything is collected, a file that cannot be written: its directory must exist. */
async function checkDestination(file: string): Promise<void> {
  const dir = path.dirname(path.resolve(file));
  const stat = await fs.stat(dir).catch(() => undefined);
  if (!stat) throw new SkupperError("ERR_DUMP_FILE", `Unable to save skupper dump details: directory ${dir} does not exist`);
  if (!stat.isDirectory()) throw new SkupperError("ERR_DUMP_FILE", `Unable to save skupper dump details: ${dir} is not a directory`);
  const existing = await fs.lstat(file).catch(() => undefined);
  if (existing?.isDirectory()) throw new SkupperError("ERR_DUMP_FILE", `Unable to save skupper dump details: ${file} is a directory`);
}

function sourcesFor(ctx: CliContext, options: GlobalOptions): DumpSources {
  const common = {
    namespace: ctx.namespace,
    platformName: ctx.platformName,
    platform: ctx.platform,
    systemStatus: () => systemStatus(ctx, options),
  };
  if (ctx.platformName === "kubernetes") {
    const kube = ctx.platform as KubernetesPlatform;
    return kubernetesSources({
      ...common,
      config: kube.workloads.config,
      contextName: kube.contextName,
      pods: async () => (await kube.workloads.routerPods()).map((p) => p.name),
    });
  }
  const runner = ctx.platform.runner;
  return localSources({
    ...common,
    paths: new SitePaths(skupperHome(), ctx.namespace),
    ...(runner instanceof ContainerSiteRunner ? { engineVersion: async () => ({ ...(await runner.client.version()), container: runner.name }) } : {}),
  });
}

/** Runs `skupper system status` for the same namespace and platform; its output, whatever its exit code. */
function systemStatus(ctx: CliContext, options: GlobalOptions): Promise<string> {
  const args = [CLI_MAIN, "system", "status", "-n", ctx.namespace, "--platform", ctx.platformName];
  if (options.kubeconfig) args.push("--kubeconfig", options.kubeconfig);
  if (options.context) args.push("--context", options.context);
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { timeout: SYSTEM_STATUS_TIMEOUT_MS, maxBuffer: 4 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== "number") {
        reject(new Error(`"skupper system status" did not complete: ${error.killed ? `no answer within ${SYSTEM_STATUS_TIMEOUT_MS / 1000} s` : error.message}`));
        return;
      }
      const code = error ? (error.code as number) : 0;
      resolve(`${stdout}${stderr ? `${stdout ? "\n" : ""}${stderr}` : ""}${code !== 0 ? `\n(exit code ${code})\n` : ""}`);
    });
  });
}

export function debugCommand(): Command {
  const debug = new Command("debug").description("Debug site details");
  debug
    .command("dump")
    .argument("[file]", `base name of the archive (default "${DEFAULT_BASE}"): <file>-<namespace>-<YYYYMMDDhhmmss>.tar.gz`)
    .description(
      "Create a tarball containing various files with the site details: versions, resources and their status, network status, system status, recent logs and metrics. Keys, codes and Secret data are redacted.",
    )
    .action(async (file: string | undefined, _flags: unknown, command: Command) => {
      if (file !== undefined && file.trim() === "") throw new InvalidInputError("filename must not be empty");
      const ctx = contextOf(command);
      const now = new Date();
      const out = dumpFileName(file, ctx.namespace, now);
      await checkDestination(out);
      const dump = await collectDump(sourcesFor(ctx, optionsOf(command)), { now });
      let data: Buffer;
      try {
        data = archive(path.basename(out).replace(/\.tar\.gz$/, ""), dump.files, dump.needles, now);
      } catch (err) {
        if (err instanceof DumpLeakError) throw new SkupperError("ERR_DUMP_LEAK", `${err.message}; please report this as a bug`);
        throw err;
      }
      try {
        await writeFileAtomic(out, data, { mode: 0o600 });
      } catch (err) {
        throw new SkupperError("ERR_DUMP_FILE", `Unable to save skupper dump details: ${errorMessage(err)}`);
      }
      if (dump.problems.length > 0) {
        process.stderr.write(`Warning: ${dump.problems.length} part(s) could not be collected; problems.txt in the archive says which and why\n`);
      }
      print(`Skupper dump details written to compressed archive: ${out}`);
    });
  return debug;
}
