/**
 * Failures inside a running site process heal and are visible: a part of the input that cannot
 * be applied shows as an Error on the resources it concerns, and is retried with backoff until it
 * succeeds, without any change to the input.
 */
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import path from "node:path";
import { after, test } from "node:test";
import { eventually, freePort, ok, Sandbox } from "../helpers/cli.js";

const sandbox = await Sandbox.create("site-healing");
const home = sandbox.home();
after(() => sandbox.cleanup());

interface Status {
  status?: string;
  message?: string;
  conditions?: Array<{ type: string; status: string; message?: string }>;
}

async function siteStatus(ns: string, name: string): Promise<Status> {
  const out = await ok(["-n", ns, "get", "site", name, "-o", "json"], { home });
  return (JSON.parse(out) as { status?: Status }).status ?? {};
}

test("a reconcile that fails shows as an Error on the Site and is retried until it succeeds", async () => {
  await ok(["-n", "west", "site", "create", "west"], { home });
  // Where the site keeps its server certificates, put a plain file: issuing them must fail.
  const certs = path.join(home, "namespaces", "west", "runtime", "certs");
  await fs.rm(certs, { recursive: true, force: true });
  await fs.writeFile(certs, "not a directory\n");

  await ok(
    ["-n", "west", "site", "update", "--enable-link-access", "--link-port", String(await freePort()), "--grant-server-port", String(await freePort()), "--wait", "none"],
    { home },
  );

  const failing = await eventually("the Site to show the failure", async () => {
    const status = await siteStatus("west", "west");
    return status.status === "Error" && /configuring link access failed/.test(status.message ?? "") ? status : undefined;
  });
  assert.match(failing.message ?? "", /retrying in \d+ s/);
  const configured = failing.conditions?.find((c) => c.type === "Configured");
  assert.equal(configured?.status, "False");

  // Fix the cause by hand, touching no resource: the retry alone must bring the site to Ready.
  await fs.rm(certs);
  const healed = await eventually("the Site to become Ready after the retry", async () => {
    const status = await siteStatus("west", "west");
    return status.status === "Ready" ? status : undefined;
  }, 40_000);
  assert.equal(healed.message, "OK");
  const token = sandbox.file("west-token.yaml");
  await ok(["-n", "west", "token", "issue", token], { home });
  assert.ok((await fs.stat(token)).size > 0, "link access works once healed");
});
