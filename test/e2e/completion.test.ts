/**
 * `skupper completion bash|zsh|fish`: scripts made from the command tree. The bash script is
 * loaded into a real bash and its completion function called as bash would call it.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promises as fs } from "node:fs";
import { after, test } from "node:test";
import { ok, Sandbox, skupper } from "../helpers/cli.js";

const sandbox = await Sandbox.create("completion");
after(() => sandbox.cleanup());
const home = sandbox.home();

/** The top-level commands as `skupper --help` lists them. */
async function topLevelCommands(): Promise<string[]> {
  const help = await ok(["--help"], { home });
  const section = help.slice(help.indexOf("Commands:\n") + "Commands:\n".length);
  return [...section.matchAll(/^ {2}([a-z][a-z-]*)/gm)].map((m) => m[1] as string);
}

function bash(script: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile("bash", ["--norc", "--noprofile", "-c", script], { timeout: 20_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`bash failed: ${error.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** What the bash completion offers for the words typed so far (the last one being completed). */
async function completeInBash(scriptFile: string, typed: string[]): Promise<string[]> {
  const words = typed.map((w) => `'${w}'`).join(" ");
  const out = await bash(
    `source '${scriptFile}'; COMP_WORDS=(${words}); COMP_CWORD=${typed.length - 1}; COMPREPLY=(); _skupper; printf '%s\\n' "\${COMPREPLY[@]}"`,
  );
  return out.split("\n").filter(Boolean);
}

test("the bash script, sourced in bash, registers _skupper and completes commands, subcommands and flags", async () => {
  const scriptFile = sandbox.file("skupper.bash");
  await fs.writeFile(scriptFile, await ok(["completion", "bash"], { home }));

  assert.equal((await bash(`source '${scriptFile}'; complete -p skupper`)).trim(), "complete -o filenames -F _skupper skupper");
  assert.deepEqual(await completeInBash(scriptFile, ["skupper", "li"]), ["link", "listener"]);
  assert.deepEqual(await completeInBash(scriptFile, ["skupper", "link", "st"]), ["status"]);
  assert.deepEqual(await completeInBash(scriptFile, ["skupper", "-n", "west", "link", "st"]), ["status"], "a global flag and its value are skipped");
  assert.deepEqual(await completeInBash(scriptFile, ["skupper", ""]), await topLevelCommands());
  const flags = await completeInBash(scriptFile, ["skupper", "link", "status", "-"]);
  for (const flag of ["-o", "--output", "-h", "--help", "-n", "--namespace"]) assert.ok(flags.includes(flag), `${flag} in ${flags.join(" ")}`);
  assert.deepEqual(await completeInBash(scriptFile, ["skupper", "token", "issue", "--red"]), ["--redemptions-allowed"]);
});

test("the zsh and fish scripts mention every top-level command", async () => {
  const commands = await topLevelCommands();
  assert.ok(commands.includes("link") && commands.includes("completion"), `commands parsed from --help: ${commands.join(" ")}`);
  const zsh = await ok(["completion", "zsh"], { home });
  assert.match(zsh, /^#compdef skupper\n/);
  for (const command of commands) assert.ok(zsh.includes(`'${command}:`), `zsh offers ${command}`);
  const fish = await ok(["completion", "fish"], { home });
  for (const command of commands) {
    assert.ok(fish.includes(`complete -c skupper -n '__skupper_at \\'skupper\\'' -a '${command}'`), `fish offers ${command}`);
  }
  assert.match(fish, /-n '__skupper_at \\'skupper link status\\'' -s 'o' -l 'output' -r/);
});

test("completion for an unknown shell is refused with exit code 2", async () => {
  const result = await skupper(["completion", "tcsh"], { home });
  assert.equal(result.code, 2);
  assert.equal(result.stdout, "");
  assert.match(result.stderr, /shell "tcsh" is not supported\. It should be one of: bash, zsh, fish/);
});
