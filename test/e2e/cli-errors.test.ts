/**
 * Mistakes a user makes at the command line get a plain message and the right exit code:
 * seed 004's link-access error, invalid resource files, deleting an incoming link.
 */
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import { after, before, test } from "node:test";
import { Sandbox, skupper } from "../helpers/cli.js";
import { LoopbackNetwork } from "../helpers/network.js";

const sandbox = await Sandbox.create("cli-errors");
const network = new LoopbackNetwork(sandbox, sandbox.home());
const run = (ns: string, args: string[]) => skupper(["-n", ns, ...args], { home: network.home });
after(() => sandbox.cleanup());

before(async () => {
  await network.createSite("west", { linkAccess: true });
  await network.createSite("east");
});

test("token issue on a site without link access fails with seed 004's message and hint", async () => {
  const result = await run("east", ["token", "issue", sandbox.file("nope.yaml")]);
  assert.equal(result.code, 2, "a validation failure, as in the original");
  assert.match(result.stderr, /Link access at this site is not currently enabled\.\s+You can use "skupper site update --enable-link-access" to enable it\./);
  await assert.rejects(fs.stat(sandbox.file("nope.yaml")), "no token file is written");
});

test("an invalid resource file is refused with exit code 2, naming the file and the field", async () => {
  const file = sandbox.file("bad-listener.yaml");
  await fs.writeFile(file, "apiVersion: skupper.io/v2alpha1\nkind: Listener\nmetadata:\n  name: web\nspec:\n  routingKey: web\n  port: 8080\n  colour: blue\n");
  const result = await run("east", ["apply", "-f", file]);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /bad-listener\.yaml/);
  assert.match(result.stderr, /colour/);
  assert.doesNotMatch(result.stderr, /\n\s+at /, "no stack trace");
});

test("deleting an incoming link says where it can be deleted", async () => {
  const name = await network.link("east", "west");
  const result = await run("west", ["link", "delete", name]);
  assert.equal(result.code, 2, "a validation failure: there is no outgoing link of that name here");
  assert.match(result.stderr, new RegExp(`Link "${name}" is an incoming link from site "east"; delete it on that site`));
});
