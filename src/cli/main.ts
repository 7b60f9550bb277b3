/**
 * The `skupper` command. Every failure ends as one sentence and an exit code: 2 for invalid
 * input, 1 for anything that went wrong at run time. Never a stack trace.
 */
import { Command, CommanderError } from "commander";
import { SkupperError, errorMessage } from "../common/errors.js";
import { version } from "../common/version.js";
import { applyCommand, deleteCommand, getCommand } from "./commands/apply.js";
import { connectorCommand, listenerCommand } from "./commands/bindings.js";
import { completionCommand } from "./commands/completion.js";
import { linkCommand } from "./commands/link.js";
import { networkCommand } from "./commands/network.js";
import { revokeAccessCommand } from "./commands/revoke.js";
import { siteCommand } from "./commands/site.js";
import { systemCommand } from "./commands/system.js";
import { tokenCommand } from "./commands/token.js";

function program(): Command {
  const root = new Command("skupper")
    .description("Connect sites into an application network, and reach TCP services across it")
    .version(version(), "-v, --version", "print the version")
    .option("-n, --namespace <name>", "the namespace (site) to act on (default: default; on Kubernetes the context's)", process.env.SKUPPER_NAMESPACE)
    .option("-p, --platform <platform>", "the platform: linux (default) or kubernetes; also from SKUPPER_PLATFORM")
    .option("-c, --context <name>", "Kubernetes: the kubeconfig context (default: its current context)")
    .option("--kubeconfig <file>", "Kubernetes: the kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    .showSuggestionAfterError(true)
    .configureHelp({ sortSubcommands: false });
  root.addCommand(siteCommand());
  root.addCommand(tokenCommand());
  root.addCommand(linkCommand());
  root.addCommand(listenerCommand());
  root.addCommand(connectorCommand());
  root.addCommand(networkCommand());
  root.addCommand(systemCommand());
  root.addCommand(applyCommand());
  root.addCommand(getCommand());
  root.addCommand(deleteCommand());
  root.addCommand(revokeAccessCommand());
  root.addCommand(completionCommand());
  root
    .command("version")
    .description("Print the version")
    .action(() => {
      process.stdout.write(`${version()}\n`);
    });
  applyRecursively(root, (c) => c.exitOverride().configureOutput({ outputError: (text, write) => write(text) }));
  return root;
}

function applyRecursively(command: Command, apply: (c: Command) => void): void {
  apply(command);
  for (const sub of command.commands) applyRecursively(sub, apply);
}

/**
 * Exit code of a Unix tool ended by SIGPIPE (128 + 13), which is what the shell reports for,
 * e.g., `seq 100000 | head -1` under `set -o pipefail`.
 */
export const CLOSED_PIPE_EXIT_CODE = 141;

/**
 * When whoever reads our output goes away (`skupper … | head -1`), end at once and quietly, as
 * Unix tools do: no message, no stack trace. Node.js reports a closed pipe as an 'error' event
 * on the stream, which would otherwise be an uncaught exception.
 */
function endQuietlyWhenOutputCloses(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EPIPE") process.exit(CLOSED_PIPE_EXIT_CODE);
      if (stream === process.stdout) process.stderr.write(`Error: cannot write the output: ${err.message}\n`);
      process.exit(1);
    });
  }
}

export async function main(argv: string[]): Promise<number> {
  try {
    await program().parseAsync(argv, { from: "user" });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; usage mistakes (already printed by commander) exit 2.
      return err.exitCode === 0 || err.code === "commander.helpDisplayed" || err.code === "commander.version" ? 0 : 2;
    }
    if (err instanceof SkupperError) {
      process.stderr.write(`Error: ${err.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(`Error: ${errorMessage(err)}\n`);
    if (process.env.SKUPPER_DEBUG) process.stderr.write(`${(err as Error).stack ?? ""}\n`);
    return 1;
  }
}

endQuietlyWhenOutputCloses();
main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
