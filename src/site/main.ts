/**
 * The site process: one per namespace. On the local platform (the default) it runs in the
 * background and owns `runtime/`: the site CA and certificates, the router (links, listeners,
 * connectors), the grant server and status. With `--platform podman|docker` it is the same
 * process in a container, the namespace directory mounted at its own path. With `--platform kubernetes` it runs in the site's
 * pod (or, for development, anywhere with a kubeconfig) on the namespace's API objects.
 */
import { parseArgs } from "node:util";
import { removeStaleTempFiles } from "../common/files.js";
import { logger } from "../common/log.js";
import { exitOnSignals } from "../common/shutdown.js";
import { version } from "../common/version.js";
import { acquirePidFile, AlreadyRunningError, DEFAULT_NAMESPACE, openLocalSiteHost, releasePidFile, skupperHome } from "../platform/local/index.js";
import { runSite } from "./run.js";

const log = logger("site");

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      platform: { type: "string", default: "linux" },
      home: { type: "string" },
      namespace: { type: "string" },
      kubeconfig: { type: "string" },
      context: { type: "string" },
    },
    strict: true,
  });
  if (values.platform === "kubernetes") return runOnKubernetes(values);
  if (values.platform !== "linux" && values.platform !== "podman" && values.platform !== "docker") {
    throw new Error(`the site process runs on the linux, podman, docker or kubernetes platform, not "${values.platform}"`);
  }
  // In a container (podman, docker) the namespace directory is mounted at the same path, so the
  // site is the local one; only its pid is of the container's pid namespace: it goes in a pid file
  // of its own, which host tools never read as a host pid, and host pids are not visible here.
  const inContainer = values.platform !== "linux";
  const host = openLocalSiteHost({ home: values.home ?? skupperHome(), namespace: values.namespace ?? DEFAULT_NAMESPACE });
  const { paths } = host;
  const pidFile = inContainer ? paths.containerPidFile : paths.pidFile;
  await host.prepare();
  try {
    await acquirePidFile(pidFile);
  } catch (err) {
    if (err instanceof AlreadyRunningError) {
      log.error(err.message);
      process.exit(3);
    }
    throw err;
  }
  // Only now, holding the pid file, so no other site process cleans up at the same time; temp
  // files of live writers (a CLI command writing right now) are left alone.
  const removed = await removeStaleTempFiles(paths.root, Date.now(), { pidsVisible: !inContainer });
  if (removed.length > 0) log.info(`removed ${removed.length} temporary file(s) left by processes that ended while writing`);
  let site: { stop(): Promise<void> } | undefined;
  exitOnSignals(log, async () => {
    try {
      await site?.stop();
      await host.close();
    } finally {
      await releasePidFile(pidFile);
    }
  });
  process.on("uncaughtException", (err) => {
    log.error(`unexpected failure: ${err.stack ?? err.message}`);
    void releasePidFile(pidFile).finally(() => process.exit(1));
  });
  log.info(`site process ${process.pid} starting for namespace "${host.namespace}" (version ${version()})`);
  try {
    site = await runSite(host, { version: version() });
  } catch (err) {
    // Give up the namespace at once, so a `system start` after fixing the cause need not wait.
    await releasePidFile(pidFile);
    throw err;
  }
  log.info("site process ready");
}

/**
 * In the site's pod: no pid file or runtime directory; the Deployment keeps one pod running.
 * The platform is loaded here only: its client would add 27 MB to every local site's heap.
 */
async function runOnKubernetes(values: { namespace?: string; kubeconfig?: string; context?: string }): Promise<void> {
  const { openKubernetesSiteHost } = await import("../platform/kubernetes/index.js");
  const host = openKubernetesSiteHost({
    ...(values.namespace ? { namespace: values.namespace } : {}),
    ...(values.kubeconfig ? { kubeconfig: values.kubeconfig } : {}),
    ...(values.context ? { context: values.context } : {}),
  });
  let site: { stop(): Promise<void> } | undefined;
  exitOnSignals(log, async () => {
    await site?.stop();
  });
  log.info(`site process ${process.pid} starting for Kubernetes namespace "${host.namespace}" (version ${version()})`);
  site = await runSite(host, { version: version() });
  log.info("site process ready");
}

main().catch((err: Error) => {
  log.error(err.stack ?? err.message);
  process.exit(1);
});
