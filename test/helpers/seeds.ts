/** Text of the seed procedures that tests run as written (../shared/seeds/), and a shell to run them in. */
import { execFile } from "node:child_process";
import { CLI, type CliResult } from "./cli.js";

/**
 * Seed 001's shell lines that build an AccessToken file from the status of AccessGrant
 * `grant-west`: `get` is the command that reads it (`kubectl`, or `skupper -n west` on a host),
 * `out` the file written.
 */
export function seed001TokenScript(get: string, out = "token.yaml"): string {
  return `URL="$(${get} get accessgrant grant-west -o template --template '{{ .status.url }}')"
CODE="$(${get} get accessgrant grant-west -o template --template '{{ .status.code }}')"
CA_RAW="$(${get} get accessgrant grant-west -o template --template '{{ .status.ca }}')"
cat > ${out} <<EOF
apiVersion: skupper.io/v2alpha1
kind: AccessToken
metadata:
  name: token-to-west
spec:
  code: "$(printf '%s' "$CODE")"
  ca: |-
$(printf '%s\\n' "$CA_RAW" | sed 's/^/    /')
  url: "$(printf '%s' "$URL")"
EOF`;
}

/** Where seed command lines run: the sites' SKUPPER_HOME and the user's home directory (`~`, `$HOME`). */
export interface SeedUser {
  home: string;
  userHome: string;
}

/**
 * Runs a seed's command lines as written, in bash, as a user working in `namespace` (the seeds'
 * "change to the namespace associated with the site": SKUPPER_NAMESPACE), with `skupper` being
 * this build's CLI and `~`/`$HOME` the user's home. Resolves with the exit code and output of
 * the script; `set -e` ends it at the first command that fails.
 */
export function runSeedLines(lines: string, namespace: string, user: SeedUser, timeoutMs = 120_000): Promise<CliResult> {
  const script = `set -e\nskupper() { "${process.execPath}" "${CLI}" "$@"; }\n${lines}\n`;
  const env = { ...process.env, SKUPPER_HOME: user.home, HOME: user.userHome, SKUPPER_NAMESPACE: namespace, SKUPPER_PLATFORM: "" };
  return new Promise((resolve) => {
    execFile("bash", ["-c", script], { cwd: user.userHome, env, timeout: timeoutMs }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** As runSeedLines, failing with the script's output unless it exits 0; resolves with its stdout. */
export async function seedLinesOk(lines: string, namespace: string, user: SeedUser, timeoutMs?: number): Promise<string> {
  const result = await runSeedLines(lines, namespace, user, timeoutMs);
  if (result.code !== 0) throw new Error(`[${namespace}] ${lines}\nexited ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
  return result.stdout;
}
