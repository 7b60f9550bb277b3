/**
 * The cluster controller: `node dist/src/operator/main.js [--kubeconfig FILE] [--context NAME]`.
 * In its pod it uses the pod's ServiceAccount (the in-cluster config); elsewhere KUBECONFIG or
 * ~/.kube/config, or the flags. It watches Sites in every namespace, or only in those that
 * SKUPPER_WATCH_NAMESPACES names (comma-separated), and runs each namespace's site from the
 * image SKUPPER_IMAGE (default: the project's image of this version). Stops on SIGTERM or SIGINT.
 */
import { parseArgs } from "node:util";
import { errorMessage, SkupperError } from "../common/errors.js";
import { logger } from "../common/log.js";
import { exitOnSignals } from "../common/shutdown.js";
import { version } from "../common/version.js";
import { kubernetesConfig } from "../platform/kubernetes/index.js";
import { controllerSettings, Operator } from "./index.js";

const log = logger("operator");

const USAGE = `Usage: node dist/src/operator/main.js [--kubeconfig FILE] [--context NAME]

The Skupper cluster controller: runs a site (ServiceAccount, RoleBinding, Deployment
"skupper-router") in each namespace that has a Site.

Options:
  --kubeconfig FILE        kubeconfig to use (default: KUBECONFIG, ~/.kube/config, or in-cluster)
  --context NAME           context of that kubeconfig (default: its current context)
  --watch-timeout SECONDS  ask the API server to end each watch after this long (for tests)
  -h, --help               show this help

Environment:
  SKUPPER_IMAGE             image of the site pods (default: the image of this version)
  SKUPPER_WATCH_NAMESPACES  comma-separated namespaces to watch (default: all)
  SKUPPER_LOG_LEVEL         debug, info, warn or error (default: info)`;

async function main(): Promise<void> {
  let values: { kubeconfig?: string; context?: string; "watch-timeout"?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      options: {
        kubeconfig: { type: "string" },
        context: { type: "string" },
        "watch-timeout": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`${errorMessage(err)}\n\n${USAGE}\n`);
    process.exit(2);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const settings = controllerSettings(process.env, { watchTimeout: values["watch-timeout"] });
  const config = kubernetesConfig({
    ...(values.kubeconfig ? { kubeconfig: values.kubeconfig } : {}),
    ...(values.context ? { context: values.context } : {}),
  });
  const operator = new Operator({ config, ...settings });

  exitOnSignals(log, () => operator.stop());

  const where = settings.namespaces ? `in namespace${settings.namespaces.length > 1 ? "s" : ""} ${settings.namespaces.map((ns) => `"${ns}"`).join(", ")}` : "in all namespaces";
  log.info(`Skupper controller ${version()} watching Sites ${where} (API server ${config.getCurrentCluster()?.server}); site image ${settings.image}`);
  operator.start();
}

main().catch((err: unknown) => {
  log.error(err instanceof SkupperError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(err instanceof SkupperError ? err.exitCode : 1);
});
