/** `skupper system generate-bundle <name>`: a file that installs a site on another host (docs/bundles.md). */
import path from "node:path";
import { Command } from "commander";
import { bundleType, planBundle, writeBundle, type ResourceSource } from "../../bundle/index.js";
import { InvalidInputError, SkupperError } from "../../common/errors.js";
import { formatBytes, pathExists } from "../../common/files.js";
import { SitePaths, skupperHome } from "../../platform/local/index.js";
import { contextOf, KUBERNETES_INSTALL_COMMAND, optionsOf, resolvePlatform } from "../context.js";
import { print } from "../output.js";

const HELP = `
The bundle holds the app (the compiled skupper with its production dependencies), the site's
resources and an installer. Install it on a Linux host that has Node.js 20 or later:
  tar -xzf <name>.tar.gz && sh <name>/install.sh [-n namespace] [-d dir] [-x] [-h]
  sh <name>.sh [-n namespace] [-d dir] [-x] [-h]            (--type shell-script)
The resources must include a Site; an AccessToken (from "skupper token issue" on another site)
or a Link with its Secret (from "skupper link generate") links the installed site when it starts.
Such credentials make the bundle as sensitive as a password: it is written with mode 0600.`;

export function generateBundleCommand(): Command {
  return new Command("generate-bundle")
    .description("Write a bundle that installs this namespace's site (or the resources of --input) on another Linux host with Node.js 20+")
    .argument("<name>", "the bundle's name: written to <data home>/bundles/<name>.tar.gz (or .sh); a path with a directory (./east, /tmp/east) writes it there instead")
    .option("--type <type>", "tarball (a .tar.gz with install.sh inside) or shell-script (a self-extracting .sh)", "tarball")
    .option("--input <dir>", "bundle the resource files (*.yaml, *.yml, *.json) of this directory instead of the namespace's resources")
    .addHelpText("after", HELP)
    .action(async (name: string, flags: { type?: string; input?: string }, command: Command) => {
      const platform = resolvePlatform(optionsOf(command).platform);
      if (platform === "kubernetes") {
        throw new SkupperError(
          "ERR_UNSUPPORTED",
          `"system generate-bundle" makes bundles that install sites on hosts; it is not available on the kubernetes platform, where you install Skupper with "${KUBERNETES_INSTALL_COMMAND}"`,
        );
      }
      if (platform !== "linux") {
        throw new SkupperError("ERR_PLATFORM", `bundles install sites on the linux platform only for now; run "system generate-bundle" without --platform ${platform}`);
      }
      const type = bundleType(flags.type);
      const ctx = contextOf(command);
      const home = skupperHome();
      const source = await resourceSource(ctx.namespace, ctx.nsFlag, home, flags.input);
      const plan = await planBundle({ name, type, namespace: ctx.namespace, source, home });
      const size = await writeBundle(plan);
      print(`Installation bundle available at: ${plan.file}`);
      print(`Default namespace: ${plan.namespace}`);
      print(`Default platform: linux`);
      print();
      print(`The bundle (${formatBytes(size)}) holds the app, the resources of site "${plan.resources.site.metadata.name}" and its installer; only you can read it (mode 0600).`);
      const { credentials } = plan.resources;
      if (credentials.length > 0) {
        print(`It carries link credentials (${credentials.join(", ")}): whoever has the file can join a site to your network. Keep it as private as a password, and delete it once installed.`);
      }
      if (credentials.some((c) => c.startsWith("AccessToken"))) {
        print("An access token links as many sites as its grant allows redemptions (skupper token issue --redemptions-allowed N): one per installation.");
      }
      const file = path.basename(plan.file);
      print(
        type === "tarball"
          ? `Install it on a host with Node.js 20 or later: tar -xzf ${file} && sh ${plan.name}/install.sh (options: sh ${plan.name}/install.sh -h)`
          : `Install it on a host with Node.js 20 or later: sh ${file} (options: sh ${file} -h)`,
      );
    });
}

async function resourceSource(namespace: string, nsFlag: string, home: string, input: string | undefined): Promise<ResourceSource> {
  if (input !== undefined) {
    if (input.trim() === "") throw new InvalidInputError("--input needs a directory of resource files");
    return { dir: path.resolve(input), label: input };
  }
  const dir = new SitePaths(home, namespace).inputResources;
  if (!(await pathExists(dir))) {
    throw new InvalidInputError(
      `namespace "${namespace}" has no resources to bundle (there is no ${dir}); create its site first ("skupper${nsFlag} site create <name>"), or give a directory of resource files with --input`,
    );
  }
  return { dir, label: `namespace "${namespace}" (${dir})` };
}
