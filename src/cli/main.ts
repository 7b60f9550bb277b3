/**
 * The `skupper` command. Every failure ends as one sentence and an exit code: 2 for invalid
 * input, 1 for anything that went wrong at run time. Never a stack trace.
 */
import { Command, CommanderError, Option } from "commander";
import { SkupperError, errorMessage } from "../common/errors.js";
import { version } from "../common/version.js";
import { applyCommand, deleteCommand, getCommand } from "./commands/apply.js";
import { connectorCommand, listenerCommand } from "./commands/bindings.js";
import { completionCommand } from "./commands/completion.js";
import { debugCommand } from "./commands/debug.js";
import { linkCommand } from "./commands/link.js";
import { networkCommand } from "./commands/network.js";
import { revokeAccessCommand } from "./commands/revoke.js";
import { siteCommand } from "./commands/site.js";
import { statusCommand } from "./commands/status.js";
import { systemCommand } from "./commands/system.js";
import { tokenCommand } from "./commands/token.js";
import { preparePlatform } from "./context.js";
import { withoutMilliseconds } from "./output.js";

/**
 * The global options, as in the original: `-n/--namespace`, `-p/--platform`, `-c/--context` and
 * `--kubeconfig`. No `-v`: the original has a `version` command, not a flag, and `-v` belongs to
 * subcommands (`link status -v`).
 */
const GLOBAL_OPTIONS: ReadonlyArray<{ flags: string; description: string; env?: string }> = [
  { flags: "-n, --namespace <name>", description: "the namespace (site) to act on (default: default; on Kubernetes the context's)", env: "SKUPPER_NAMESPACE" },
  { flags: "-p, --platform <platform>", description: "the platform: linux (default) or kubernetes; also from SKUPPER_PLATFORM" },
  { flags: "-c, --context <name>", description: "Kubernetes: the kubeconfig context (default: its current context)" },
  { flags: "--kubeconfig <file>", description: "Kubernetes: the kubeconfig file (default: $KUBECONFIG, ~/.kube/config)" },
];

function program(): Command {
  const root = new Command("skupper")
    .description("Connect sites into an application network, and reach TCP services across it")
    // Long form only, at the root only: `skupper --version` as most tools have it, while `-v`
    // stays free for subcommands.
    .version(version(), "--version", "print the version (as the version command does)")
    .showSuggestionAfterError(true)
    .configureHelp({ sortSubcommands: false })
    // Before every command's action: contextOf needs its platform loaded.
    .hook("preAction", (_root, command) => preparePlatform(command));
  for (const { flags, description, env } of GLOBAL_OPTIONS) {
    root.option(flags, description, env === undefined ? undefined : process.env[env]);
  }
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
  root.addCommand(statusCommand());
  root.addCommand(debugCommand());
  root.addCommand(completionCommand());
  root
    .command("version")
    .description("Print the version")
    .action(() => {
      process.stdout.write(`${version()}\n`);
    });
  applyRecursively(root, (c) => {
    c.exitOverride().configureOutput({ outputError: (text, write) => write(text) });
    c.configureHelp({ ...c.configureHelp(), showGlobalOptions: true });
    if (c !== root) inheritGlobalOptions(c);
    if (c.commands.length > 0) c.enablePositionalOptions();
  });
  return root;
}

/**
 * Global options are accepted after subcommands too (`skupper site create west -n west`), as in
 * the original, but a subcommand's own option wins: `token create -p <password>` is the
 * password, never the platform. Commander would otherwise let the root read its options
 * anywhere on the line. So each command parses only the options before its subcommand
 * (positional options), and every subcommand gets a hidden copy of each global option whose
 * flags it does not use itself (only the long form when it uses the short one). `contextOf`
 * takes the value given nearest to the command.
 */
function inheritGlobalOptions(command: Command): void {
  const used = new Set(command.options.flatMap((o) => [o.short, o.long].filter((f): f is string => !!f)));
  for (const { flags, description } of GLOBAL_OPTIONS) {
    const global = new Option(flags, description);
    if (global.long && used.has(global.long)) continue;
    const copy = global.short && used.has(global.short) ? new Option(flags.replace(/^-\w, /, ""), description) : global;
    command.addOption(copy.hideHelp());
  }
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
      process.stderr.write(`Error: ${withoutMilliseconds(err.message)}\n`);
      return err.exitCode;
    }
    process.stderr.write(`Error: ${withoutMilliseconds(errorMessage(err))}\n`);
    if (process.env.SKUPPER_DEBUG) process.stderr.write(`${(err as Error).stack ?? ""}\n`);
    return 1;
  }
}

endQuietlyWhenOutputCloses();
main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
