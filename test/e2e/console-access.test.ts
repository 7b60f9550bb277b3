/**
 * Who may use the observer port of a real site process: on loopback anyone on this machine, on
 * any other address only with the credential the site made (which survives a restart); bad flag
 * values are refused with exit code 2; the port is started, rebound and stopped live.
 */
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import http from "node:http";
import { after, before, describe, test } from "node:test";
import { eventually, freePort, Sandbox, skupper } from "../helpers/cli.js";
import { LoopbackNetwork } from "../helpers/network.js";

async function status(url: string, init: RequestInit = {}): Promise<number> {
  try {
    return (await fetch(url, { ...init, redirect: "manual" })).status;
  } catch {
    return 0;
  }
}

describe("the observer port of a site process", () => {
  let sandbox: Sandbox;
  let network: LoopbackNetwork;

  before(async () => {
    sandbox = await Sandbox.create("console-access");
    network = new LoopbackNetwork(sandbox, sandbox.home());
    await network.createSite("solo");
  });

  after(async () => {
    await sandbox.cleanup();
  });

  test("bad --observer-port and --observer-host values exit 2 with a sentence", async () => {
    for (const args of [["--observer-port", "0"], ["--observer-port", "65536"], ["--observer-port", "http"], ["--observer-host", "example.com"], ["--observer-host", "300.1.1.1"]]) {
      const result = await skupper(["-n", "solo", "site", "update", ...args], { home: network.home });
      assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
      assert.match(result.stderr, /observer (port|host) must be/);
    }
    const create = await skupper(["-n", "other", "site", "create", "other", "--observer-port", "-1"], { home: network.home });
    assert.equal(create.code, 2, create.stderr);
  });

  test("off by default; on loopback once set, without a credential; /metrics in Prometheus format", async () => {
    const off = await skupper(["-n", "solo", "network", "console"], { home: network.home });
    assert.equal(off.code, 1);
    assert.match(off.stderr, /--observer-port/);
    const port = await freePort();
    await network.run("solo", ["site", "update", "--observer-port", String(port)]);
    const printed = await network.run("solo", ["network", "console"]);
    assert.match(printed, new RegExp(`Console: http://127\\.0\\.0\\.1:${port}/`));
    assert.doesNotMatch(printed, /Credential:/);
    const base = `http://127.0.0.1:${port}`;
    await eventually("the console to answer", async () => (await status(`${base}/healthz`)) === 200, 5_000);
    assert.equal(await status(`${base}/api/network`), 200);
    const metrics = await fetch(`${base}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(metrics.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    assert.match(await metrics.text(), /^# TYPE skupper_connections_opened_total counter$/m);
    // DNS rebinding: a page whose name resolves to 127.0.0.1 is not served.
    // (node:http, since fetch does not let a caller set Host)
    const rebound = await new Promise<number>((resolve, reject) => {
      http.get({ host: "127.0.0.1", port, path: "/api/network", headers: { host: `attacker.example:${port}` } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on("error", reject);
    });
    assert.equal(rebound, 421);
  });

  test("on a non-loopback address every route needs the credential, which survives a restart", async () => {
    const oldPort = Number(/:(\d+)\//.exec(await network.run("solo", ["network", "console"]))?.[1]);
    const port = await freePort();
    await network.run("solo", ["site", "update", "--observer-host", "0.0.0.0", "--observer-port", String(port)]);
    const printed = await network.run("solo", ["network", "console"]);
    const credential = /Credential: (\S+)/.exec(printed)?.[1];
    assert.ok(credential && credential.length >= 40, printed);
    const base = `http://127.0.0.1:${port}`;
    await eventually("the rebound port to answer", async () => (await status(`${base}/healthz`)) !== 0, 5_000);
    assert.equal(await status(`http://127.0.0.1:${oldPort}/healthz`), 0, "the old port is closed");
    for (const route of ["/", "/api/network", "/api/events", "/metrics", "/healthz"]) {
      assert.equal(await status(`${base}${route}`), 401, `${route} without the credential`);
      assert.equal(await status(`${base}${route}`, { headers: { authorization: "Bearer wrong" } }), 401, `${route} with a wrong credential`);
    }
    const bearer = { authorization: `Bearer ${credential}` };
    assert.equal(await status(`${base}/api/network`, { headers: bearer }), 200);
    assert.equal(await status(`${base}/healthz`, { headers: bearer }), 200);
    // A browser: ?token= once gives an HttpOnly, SameSite=Strict cookie and leaves the address bar.
    const signIn = await fetch(`${base}/?token=${encodeURIComponent(credential)}`, { redirect: "manual" });
    assert.equal(signIn.status, 303);
    assert.equal(signIn.headers.get("location"), "/");
    const cookie = signIn.headers.get("set-cookie") ?? "";
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    assert.equal(await status(`${base}/api/network`, { headers: { cookie: cookie.split(";")[0] as string } }), 200);
    // The login form.
    const form = await fetch(`${base}/login`, { method: "POST", body: new URLSearchParams({ token: credential }), redirect: "manual" });
    assert.equal(form.status, 303);
    const wrong = await fetch(`${base}/login`, { method: "POST", body: new URLSearchParams({ token: "nope" }), redirect: "manual" });
    assert.equal(wrong.status, 401);
    // Bodies are limited.
    assert.equal(await status(`${base}/login`, { method: "POST", body: "token=" + "x".repeat(10_000) }), 413);

    // The credential is kept (0600) and is the same after a restart.
    const file = `${network.home}/namespaces/solo/runtime/observer-credential`;
    assert.equal((await fs.stat(file)).mode & 0o777, 0o600);
    await network.run("solo", ["system", "stop"]);
    await network.run("solo", ["system", "start"]);
    await eventually("the console after the restart", async () => (await status(`${base}/api/network`, { headers: bearer })) === 200, 15_000, 100);
    assert.equal(/Credential: (\S+)/.exec(await network.run("solo", ["network", "console"]))?.[1], credential);
  });

  test("removing the port turns the console off live", async () => {
    const port = Number(/:(\d+)\//.exec(await network.run("solo", ["network", "console"]))?.[1]);
    await network.run("solo", ["site", "update", "--observer-port", ""]);
    await eventually("the port to close", async () => (await status(`http://127.0.0.1:${port}/healthz`)) === 0, 5_000);
    const off = await skupper(["-n", "solo", "network", "console"], { home: network.home });
    assert.equal(off.code, 1);
  });
});
