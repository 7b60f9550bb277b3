/**
 * The podman and docker platforms on real engines (test/helpers/engines.ts starts one of each
 * for this file, and stops it after): sites in containers linked with tokens, a service from a
 * host backend to a host client through them, a container site linked with a linux-platform
 * site, stop/start and a crash of the container keeping links and grant counts, the messages
 * of a wrong endpoint and of a platform change, install and uninstall. Skipped, saying why,
 * where an engine cannot run.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { LocalResourceStore, SitePaths } from "../../src/platform/local/index.js";
import { eventually, freePorts, ok, parseTable, Sandbox, skupper } from "../helpers/cli.js";
import { startEngine, type EngineName, type RunningEngine } from "../helpers/engines.js";
import { exchange, identityBackend, type Backend } from "../helpers/network.js";

const LINK_READY_MS = 60_000;

for (const engineName of ["podman", "docker"] as EngineName[]) {
  const started = await startEngine(engineName);
  const skip = "skip" in started ? started.skip : false;
  const prefix = engineName === "podman" ? "p" : "d";
  const west = `${prefix}-west`;
  const east = `${prefix}-east`;
  const host = `${prefix}-host`;

  describe(`the ${engineName} platform`, { skip }, () => {
    const engine = started as RunningEngine;
    let sandbox: Sandbox;
    let home: string;
    let backend: Backend;
    let listenerPort: number;
    let tokens = 0;
    const env = () => ({ CONTAINER_ENDPOINT: engine.endpoint });
    const run = (ns: string, args: string[]) => ok(["-n", ns, ...args], { home, env: env() });

    before(async () => {
      sandbox = await Sandbox.create(`containers-${engineName}`);
      home = sandbox.home();
      backend = await identityBackend(`backend-on-host-${engineName}`);
    });

    after(async () => {
      await backend?.close();
      await engine.stop();
      await sandbox?.cleanup();
    });

    async function linkRows(ns: string): Promise<Array<Record<string, string>>> {
      return parseTable(await run(ns, ["link", "status", "-o", "wide"]));
    }

    async function linkReady(from: string, to: string): Promise<Record<string, string>> {
      return eventually(
        `the link ${from} → ${to} to be Ready`,
        async () => (await linkRows(from)).find((r) => r["REMOTE SITE"] === to && r.DIRECTION === "outgoing" && r.STATUS === "Ready"),
        LINK_READY_MS,
        250,
      );
    }

    async function link(from: string, to: string): Promise<void> {
      const file = sandbox.file(`token-${to}-${++tokens}.yaml`);
      await run(to, ["token", "issue", file]);
      await run(from, ["token", "redeem", file]);
      await linkReady(from, to);
    }

    async function grantRedemptions(ns: string): Promise<number[]> {
      const grants = await new LocalResourceStore(new SitePaths(home, ns)).list("AccessGrant");
      return grants.map((g) => g.status?.redemptions ?? 0).sort();
    }

    async function container(ns: string) {
      return engine.client.inspectContainer(`skupper-${ns}`);
    }

    test("two sites in containers, linked with a token, carry a service from a host backend to a host client", async () => {
      const [linkPort, grantPort] = await freePorts(2);
      const created = await run(west, ["--platform", engineName, "site", "create", west, "--enable-link-access", "--link-port", String(linkPort), "--grant-server-port", String(grantPort)]);
      assert.match(created, new RegExp(`Site "${west}" is ready`));
      await run(east, ["--platform", engineName, "site", "create", east]);
      const info = await container(west);
      assert.equal(info?.State.Running, true, "the site runs in the container skupper-<namespace>");
      assert.equal(info?.Config.Labels?.["skupper.io/platform"], engineName);
      await link(east, west);
      listenerPort = (await freePorts(1))[0] as number;
      await run(east, ["connector", "create", "echo", String(backend.port), "--host", "127.0.0.1"]);
      await run(west, ["listener", "create", "echo", String(listenerPort), "--wait", "ready"]);
      const answer = await eventually("the service to answer through the containers", async () => (await exchange(listenerPort, "ping")).toString(), 30_000, 250);
      assert.equal(answer, `backend-on-host-${engineName}ping`);
    });

    test("later commands use the namespace's recorded platform, and another one is refused", async () => {
      const status = await run(west, ["system", "status"]);
      assert.match(status, new RegExp(`Site container: running \\(skupper-${west}\\)`));
      assert.match(status, engineName === "podman" ? /Engine: +Podman Engine/ : /Engine: +Docker/);
      const other = engineName === "podman" ? "docker" : "podman";
      const refused = await skupper(["-n", west, "--platform", other, "system", "status"], { home, env: env() });
      assert.equal(refused.code, 2);
      assert.match(refused.stderr, new RegExp(`existing namespace uses "${engineName}" platform and it cannot change to "${other}"`));
    });

    test("a container site and a linux-platform site link and share the service", async () => {
      await ok(["-n", host, "site", "create", host], { home });
      await link(host, west);
      const port = (await freePorts(1))[0] as number;
      await ok(["-n", host, "listener", "create", "echo", String(port), "--wait", "ready"], { home });
      const answer = await eventually("the service to answer on the linux site", async () => (await exchange(port, "hi")).toString(), 30_000, 250);
      assert.equal(answer, `backend-on-host-${engineName}hi`);
    });

    test("system stop then system start keeps the links and the grant counts", async () => {
      const before = await grantRedemptions(west);
      assert.deepEqual(before, [1, 1], "two tokens of west were redeemed once each");
      const stopped = await run(west, ["system", "stop"]);
      assert.match(stopped, new RegExp(`container skupper-${west}\\) has stopped and is removed`));
      assert.equal(await container(west), undefined, "the container is removed");
      const startedOut = await run(west, ["system", "start"]);
      assert.match(startedOut, new RegExp(`container skupper-${west}, platform ${engineName}`));
      await linkReady(east, west);
      await linkReady(host, west);
      assert.deepEqual(await grantRedemptions(west), before);
      assert.equal((await exchange(listenerPort, "again")).toString(), `backend-on-host-${engineName}again`);
    });

    test("a site container that dies is restarted by the engine, and its links come back Ready", async () => {
      const info = await container(west);
      assert.ok(info?.State.Pid, "the engine reports the container's init pid");
      // A crash, not an engine kill: both engines take `kill` for a user's stop and do not restart.
      process.kill(info.State.Pid, "SIGKILL");
      const restarted = await eventually(
        "the engine to restart the container",
        async () => {
          const now = await container(west);
          return now && now.State.Running && (now.RestartCount ?? 0) >= 1 ? now : undefined;
        },
        30_000,
        200,
      );
      assert.notEqual(restarted.State.Pid, info.State.Pid);
      await linkReady(east, west);
      await linkReady(host, west);
      const answer = await eventually("the service to answer after the restart", async () => (await exchange(listenerPort, "back")).toString(), 30_000, 250);
      assert.equal(answer, `backend-on-host-${engineName}back`);
    });

    test(
      "on a named engine network, a site reaches a backend container by its name and publishes its link port to the host",
      // The test's dockerd runs without a bridge or iptables rules, so as not to disturb the Kubernetes test cluster's.
      { skip: engineName === "docker" ? "the test's dockerd has no bridge networking" : false },
      async () => {
        const network = `skupper-e2e-${process.pid}`;
        const ns = `${prefix}-net`;
        const backendName = `${prefix}-backend-${process.pid}`;
        const [linkPort, grantPort, port] = (await freePorts(3)) as [number, number, number];
        try {
          await run(ns, ["--platform", engineName, "site", "create", ns, "--container-network", network, "--enable-link-access", "--link-port", String(linkPort), "--grant-server-port", String(grantPort)]);
          assert.deepEqual(Object.keys((await container(ns))?.NetworkSettings?.Networks ?? {}), [network], "the site's container is on the named network");
          await engine.client.createContainer(backendName, {
            Image: engine.image,
            Entrypoint: ["/usr/bin/node", "-e", "require('net').createServer((s) => { s.write('in-a-container:'); s.pipe(s); }).listen(9090)"],
            User: "65532:65532",
            HostConfig: { NetworkMode: network, Init: true },
          });
          await engine.client.startContainer(backendName);
          // west, on the host's network, dials the link port the engine publishes on the host.
          await link(west, ns);
          await run(ns, ["connector", "create", "in-container", "9090", "--host", backendName]);
          await run(west, ["listener", "create", "in-container", String(port), "--wait", "ready"]);
          const answer = await eventually("the backend container to answer through the sites", async () => (await exchange(port, "ping")).toString(), 30_000, 250);
          assert.equal(answer, "in-a-container:ping");
        } finally {
          await skupper(["-n", ns, "site", "delete"], { home, env: env() });
          await engine.client.removeContainer(backendName);
          await engine.client.removeNetwork(network);
        }
        assert.equal(await container(ns), undefined, "site delete removed the site's container");
      },
    );

    test("a wrong endpoint says that the engine cannot be reached and how to start it", async () => {
      const result = await skupper(["-n", west, "system", "status"], { home, env: { CONTAINER_ENDPOINT: `unix://${sandbox.file("no-engine.sock")}` } });
      assert.equal(result.code, 1);
      assert.match(result.stderr, new RegExp(`Cannot reach the ${engineName} engine at .*no-engine\\.sock \\(CONTAINER_ENDPOINT\\): there is no such socket`));
      assert.doesNotMatch(result.stderr, /\n\s+at /, "no stack trace");
    });

    test("system install checks the engine and the image; uninstall refuses with active sites and removes them with --force", async () => {
      const installed = await ok(["--platform", engineName, "system", "install", "--reload-type", "auto"], { home, env: env() });
      assert.match(installed, /^Engine: .+ at /m);
      assert.match(installed, new RegExp(`^Image: ${engine.image.replace(/[.]/g, "\\.")} `, "m"));
      assert.match(installed, /systemd is not running on this host|Unit written/);
      assert.match(installed, new RegExp(`Platform ${engineName} is now configured for Skupper`));
      const missingImage = await skupper(["--platform", engineName, "system", "install"], { home, env: { ...env(), SKUPPER_IMAGE: "localhost/no-such-image:1" } });
      assert.equal(missingImage.code, 1);
      assert.match(missingImage.stderr, new RegExp(`npm run image -- --engine ${engineName}`));

      const refused = await skupper(["--platform", engineName, "system", "uninstall"], { home, env: env() });
      assert.equal(refused.code, 1);
      assert.match(refused.stdout, new RegExp(`The ${west} site is active \\(namespace ${west}\\)`));
      assert.match(refused.stdout, new RegExp(`The ${east} site is active \\(namespace ${east}\\)`));
      assert.match(refused.stderr, /Uninstallation halted: Active sites detected\. Use --force flag to stop and remove active sites/);
      assert.equal((await container(west))?.State.Running, true, "nothing was stopped");

      const forced = await ok(["--platform", engineName, "system", "uninstall", "--force"], { home, env: env() });
      assert.match(forced, new RegExp(`Removing active site namespace "${west}"`));
      assert.match(forced, new RegExp(`Platform ${engineName} infrastructure for Skupper is now uninstalled`));
      assert.equal(await container(west), undefined);
      assert.equal(await container(east), undefined);
      assert.match(await run(west, ["system", "status"]), /Site container: not running/);
    });
  });
}
