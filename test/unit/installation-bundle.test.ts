/**
 * Where `system generate-bundle` writes, and what it refuses before writing (src/bundle/):
 * a bare name goes to the data home's bundles/, a path where it says, the type's extension is
 * added once; invalid names, types, missing directories refuse with exit code 2. The installed
 * form of the resources is what the store writes: no namespace, no status, generation 1.
 */
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { parse } from "yaml";
import { bundleType, planBundle, type BundleType } from "../../src/bundle/index.js";
import { SkupperError } from "../../src/common/errors.js";

let root = "";
let input = "";
before(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), "skupper-unit-bundle-"));
  input = path.join(root, "input");
  await fs.mkdir(input);
  await fs.writeFile(
    path.join(input, "site.yaml"),
    "apiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata:\n  name: east\n  namespace: east\n  generation: 7\nspec:\n  linkAccess: default\nstatus:\n  status: Ready\n",
  );
});
after(() => fs.rm(root, { recursive: true, force: true }));

function plan(name: string, type: BundleType = "tarball") {
  return planBundle({ name, type, namespace: "east", source: { dir: input, label: input }, home: path.join(root, "home") });
}

async function refused(promise: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof SkupperError, String(err));
    assert.equal(err.exitCode, 2, err.message);
    assert.match(err.message, message);
    return true;
  });
}

test("a bare name goes to the data home's bundles/, a path where it says; the extension is added once", async () => {
  assert.equal((await plan("east")).file, path.join(root, "home", "bundles", "east.tar.gz"));
  assert.equal((await plan("east.tar.gz")).file, path.join(root, "home", "bundles", "east.tar.gz"));
  assert.equal((await plan("east", "shell-script")).file, path.join(root, "home", "bundles", "east.sh"));
  assert.equal((await plan("east.sh", "shell-script")).name, "east");
  const here = await plan(`${root}/east.v2`);
  assert.deepEqual([here.file, here.name, here.inDataHome], [path.join(root, "east.v2.tar.gz"), "east.v2", false]);
});

test("invalid names, types and directories are refused with exit code 2 before anything is written", async () => {
  await refused(plan("east bundle"), /bundle name "east bundle" is not valid/);
  await refused(plan(".hidden"), /bundle name ".hidden" is not valid/);
  await refused(plan(""), /the bundle needs a name/);
  await refused(plan(`${root}/`), /names a directory/);
  await refused(plan(`${root}/no-such-dir/east`), /no-such-dir does not exist/);
  assert.throws(() => bundleType("zip"), /invalid bundle type "zip"/);
  assert.equal(bundleType(undefined), "tarball");
  await fs.mkdir(path.join(root, "taken.tar.gz"));
  await refused(plan(`${root}/taken`), /is a directory/);
  await assert.rejects(fs.access(path.join(root, "home")), "the data home was not created");
});

test("resources are bundled as the store writes them: no namespace, no status, generation 1", async () => {
  const { resources } = await plan("east");
  assert.deepEqual(
    resources.files.map((f) => f.name),
    ["Site-east.yaml"],
  );
  assert.deepEqual(parse((resources.files[0] as { text: string }).text), {
    apiVersion: "skupper.io/v2alpha1",
    kind: "Site",
    metadata: { name: "east", generation: 1 },
    spec: { linkAccess: "default" },
  });
  assert.deepEqual(resources.credentials, []);
});
