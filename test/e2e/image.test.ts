/**
 * The image of the controller and the site pods (deploy/image/Containerfile), built into the
 * test cluster's dockerd as the Kubernetes e2e tests use it: it runs the app, as a non-root
 * user, with nothing but the app's production dependencies. Skips, saying why, when no docker
 * engine answers (see test/helpers/kube-image.ts).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, test } from "node:test";
import { ROOT } from "../helpers/cli.js";
import { docker, dockerUnavailable, ensureSkupperImage, testDockerHost } from "../helpers/kube-image.js";

const dockerHost = await testDockerHost();
const unavailable = await dockerUnavailable(dockerHost);
const built = unavailable ? { skip: unavailable } : await ensureSkupperImage({ dockerHost });
const skip = "skip" in built ? built.skip : false;
const image = "image" in built ? built.image : "";
const packageVersion = (JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as { version: string }).version;

/** `docker run --rm` of the image with these arguments after it; asserts it exits 0 and returns its stdout. */
async function runImage(args: string[], options: { entrypoint?: string } = {}): Promise<string> {
  const entrypoint = options.entrypoint ? ["--entrypoint", options.entrypoint] : [];
  const result = await docker(["run", "--rm", "--network", "none", ...entrypoint, image, ...args], { dockerHost });
  assert.equal(result.code, 0, `docker run ${args.join(" ")} failed: ${result.stderr}`);
  return result.stdout;
}

describe("the skupper image", { skip }, () => {
  test("prints the package version", async () => {
    assert.equal((await runImage(["/app/dist/src/cli/main.js", "version"])).trim(), packageVersion);
  });

  test("runs as the skupper user (uid and gid 65532) with a writable /tmp and its home", async () => {
    const script = [
      "const fs = require('node:fs');",
      "fs.writeFileSync('/tmp/probe', 'x');",
      "console.log(JSON.stringify({ uid: process.getuid(), gid: process.getgid(), home: require('node:os').homedir(), cwd: process.cwd() }));",
    ].join(" ");
    const identity = JSON.parse(await runImage(["-e", script], { entrypoint: "/usr/bin/node" })) as Record<string, unknown>;
    assert.deepEqual(identity, { uid: 65532, gid: 65532, home: "/home/skupper", cwd: "/app" });
  });

  test("shows the CLI's help when run without arguments", async () => {
    assert.match(await runImage([]), /Usage: skupper/);
  });

  test("holds the app's production dependencies only, and they load", async () => {
    const script = [
      "const fs = await import('node:fs');",
      "await import('/app/dist/src/platform/kubernetes/index.js');",
      "const paths = ['/usr/lib/node_modules/npm', '/app/node_modules/typescript', '/app/node_modules/fast-check', '/app/node_modules/@types', '/app/dist/test', '/app/dist/bench'];",
      "console.log(JSON.stringify(paths.filter((p) => fs.existsSync(p))));",
    ].join(" ");
    assert.deepEqual(JSON.parse(await runImage(["--input-type=module", "-e", script])), []);
  });

  test("has the OCI labels of the package", async () => {
    const result = await docker(["image", "inspect", "--format", "{{json .Config.Labels}}", image], { dockerHost });
    assert.equal(result.code, 0, result.stderr);
    const labels = JSON.parse(result.stdout) as Record<string, string>;
    assert.equal(labels["org.opencontainers.image.title"], "skupper-ts");
    assert.equal(labels["org.opencontainers.image.version"], packageVersion);
  });
});
