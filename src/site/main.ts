/**
 * The site process: one per namespace, running in the background. It owns `runtime/`: the site
 * CA and certificates, the router (links, listeners, connectors), the grant server and status.
 */
import { parseArgs } from "node:util";
import { logger } from "../common/log.js";
import { version } from "../common/version.js";
import { SiteController } from "../controller/index.js";
import { removeStaleTempFiles } from "../common/files.js";
import {
  acquirePidFile,
  AlreadyRunningError,
  DEFAULT_NAMESPACE,
  LocalStore,
  OffThreadParser,
  releasePidFile,
  SitePaths,
  skupperHome,
  validateNamespace,
} from "../platform/local/index.js";

const log = logger("site");

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { home: { type: "string" }, namespace: { type: "string" } },
    strict: true,
  });
  const home = values.home ?? skupperHome();
  const namespace = validateNamespace(values.namespace ?? DEFAULT_NAMESPACE);
  const paths = new SitePaths(home, namespace);
  // Input files are parsed in a worker thread: a slow file must not stall links and services.
  const parser = new OffThreadParser();
  const store = new LocalStore(paths, { parse: (text, source) => parser.parse(text, source) });
  await store.ensureDirectories();
  try {
    await acquirePidFile(paths.pidFile);
  } catch (err) {
    if (err instanceof AlreadyRunningError) {
      log.error(err.message);
      process.exit(3);
    }
    throw err;
  }
  // Only now, holding the pid file, so no other site process cleans up at the same time; temp
  // files of live writers (a CLI command writing right now) are left alone.
  const removed = await removeStaleTempFiles(paths.root);
  if (removed.length > 0) log.info(`removed ${removed.length} temporary file(s) left by processes that ended while writing`);
  const controller = new SiteController(store, { version: version() });
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info(`stopping (${signal})`);
    const force = setTimeout(() => process.exit(1), 5000);
    force.unref();
    try {
      await controller.stop();
    } finally {
      await releasePidFile(paths.pidFile);
      process.exit(0);
    }
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("uncaughtException", (err) => {
    log.error(`unexpected failure: ${err.stack ?? err.message}`);
    void releasePidFile(paths.pidFile).finally(() => process.exit(1));
  });
  log.info(`site process ${process.pid} starting for namespace "${namespace}" (version ${version()})`);
  await controller.start();
  log.info("site process ready");
}

main().catch((err: Error) => {
  log.error(err.stack ?? err.message);
  process.exit(1);
});
