/**
 * The engine client's failures, against a real HTTP server on a Unix socket started here (a
 * socket that is missing, refuses, answers errors, answers unreadable shapes or never answers),
 * the endpoint resolution, and the namespace's platform record.
 */
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { EngineClient, EngineError, resolveEndpoint, siteContainerSpec } from "../../src/platform/containers/index.js";
import { choosePlatform, readPlatformRecord, SitePaths, writePlatformRecord } from "../../src/platform/local/index.js";

let dir: string;
before(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "engine-unit-"));
});
after(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

async function serveOn(name: string, handler: http.RequestListener): Promise<{ socket: string; close: () => Promise<void> }> {
  const socket = path.join(dir, name);
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(socket, () => resolve()));
  return { socket, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

function client(socket: string, timeoutMs?: number): EngineClient {
  return new EngineClient({ engine: "podman", socketPath: socket, source: "CONTAINER_ENDPOINT" }, timeoutMs);
}

async function rejectsWith(promise: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof EngineError, `an EngineError, not ${String(err)}`);
    assert.equal(err.code, code);
    assert.equal(err.exitCode, 1);
    assert.match(err.message, message);
    return true;
  });
}

describe("the engine client", () => {
  test("a missing socket: the socket, that it is missing, and how to start the engine", async () => {
    await rejectsWith(client(path.join(dir, "absent.sock")).ping(), "ERR_ENGINE_UNAVAILABLE", /Cannot reach the podman engine at .*absent\.sock \(CONTAINER_ENDPOINT\): there is no such socket\. Start its API service/);
  });

  test("a socket file nobody accepts on: refused", async () => {
    // Connecting to a path that is not a listening socket (here a plain file) is refused, as for a stale socket.
    const file = path.join(dir, "stale.sock");
    await fs.writeFile(file, "");
    await rejectsWith(client(file).ping(), "ERR_ENGINE_UNAVAILABLE", /stale\.sock \(CONTAINER_ENDPOINT\): nothing accepts connections on it/);
  });

  test("an engine error carries the engine's message", async () => {
    const engine = await serveOn("error.sock", (_req, res) => {
      res.writeHead(500, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ message: "container create: something broke" }));
    });
    try {
      await rejectsWith(client(engine.socket).startContainer("skupper-x"), "ERR_ENGINE", /failed starting container skupper-x: container create: something broke/);
    } finally {
      await engine.close();
    }
  });

  test("a missing image says how to build it", async () => {
    const engine = await serveOn("image.sock", (_req, res) => {
      res.writeHead(404, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ message: "localhost/skupper-ts:0: image not known" }));
    });
    try {
      await rejectsWith(client(engine.socket).createContainer("skupper-x", { Image: "localhost/skupper-ts:0", HostConfig: {} }), "ERR_IMAGE_MISSING", /npm run image -- --engine podman/);
      assert.equal(await client(engine.socket).imageId("localhost/skupper-ts:0"), undefined);
    } finally {
      await engine.close();
    }
  });

  test("an answer of the wrong shape is refused before use", async () => {
    const engine = await serveOn("shape.sock", (_req, res) => {
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ Id: "x", Name: "skupper-x", State: { Status: "running", Running: "yes" }, Config: {} }));
    });
    try {
      await rejectsWith(client(engine.socket).inspectContainer("skupper-x"), "ERR_ENGINE_ANSWER", /State\.Running/);
    } finally {
      await engine.close();
    }
  });

  test("an engine that never answers: a timeout, not a hang", async () => {
    const engine = await serveOn("hang.sock", () => undefined);
    try {
      const started = Date.now();
      await rejectsWith(client(engine.socket, 300).version(), "ERR_ENGINE_TIMEOUT", /did not answer GET \/version within/);
      assert.ok(Date.now() - started < 5_000);
    } finally {
      await engine.close();
    }
  });
});

describe("the engine endpoint", () => {
  test("CONTAINER_ENDPOINT, then DOCKER_HOST for docker, then the default socket", () => {
    assert.equal(resolveEndpoint("podman", { CONTAINER_ENDPOINT: "unix:///a/b.sock" }, 0).socketPath, "/a/b.sock");
    assert.equal(resolveEndpoint("docker", { DOCKER_HOST: "unix:///d.sock" }, 0).socketPath, "/d.sock");
    assert.equal(resolveEndpoint("podman", { DOCKER_HOST: "unix:///d.sock" }, 0).socketPath, "/run/podman/podman.sock");
    assert.equal(resolveEndpoint("podman", { XDG_RUNTIME_DIR: "/run/user/1000" }, 1000).socketPath, "/run/user/1000/podman/podman.sock");
    assert.equal(resolveEndpoint("docker", {}, 0).socketPath, "/var/run/docker.sock");
    assert.throws(() => resolveEndpoint("docker", { CONTAINER_ENDPOINT: "tcp://1.2.3.4:2375" }), /only "unix:\/\/\/path\/to\/engine\.sock" endpoints are supported/);
  });
});

describe("the site container", () => {
  test("host networking, --init, unless-stopped, the user's ids, the namespace mounted at its own path", () => {
    const paths = new SitePaths("/h", "west");
    const spec = siteContainerSpec({ paths, engine: "docker", image: "img", uid: 1000, gid: 1001, env: { SKUPPER_LOG_LEVEL: "debug", SKUPPER_HOME: "/x" } });
    assert.equal(spec.HostConfig.NetworkMode, "host");
    assert.equal(spec.HostConfig.Init, true);
    assert.deepEqual(spec.HostConfig.RestartPolicy, { Name: "unless-stopped" });
    assert.equal(spec.User, "1000:1001");
    assert.deepEqual(spec.HostConfig.Binds, ["/h/namespaces/west:/h/namespaces/west:rw"]);
    assert.equal(spec.HostConfig.PortBindings, undefined, "nothing is published with host networking");
    assert.ok(spec.Env?.includes("SKUPPER_LOG_LEVEL=debug"));
    assert.ok(!spec.Env?.some((e) => e.startsWith("SKUPPER_HOME=")));
    assert.ok(!spec.Cmd?.join(" ").includes("site/main.js"), "the init's command line must not look like a site process");
  });

  test("a named network publishes the given ports", () => {
    const spec = siteContainerSpec({ paths: new SitePaths("/h", "w"), engine: "podman", image: "i", uid: 0, gid: 0, network: "net1", ports: [{ port: 5000, hostIp: "" }, { port: 8080, hostIp: "127.0.0.1" }] });
    assert.equal(spec.HostConfig.NetworkMode, "net1");
    assert.deepEqual(spec.HostConfig.PortBindings?.["8080/tcp"], [{ HostIp: "127.0.0.1", HostPort: "8080" }]);
    assert.deepEqual(spec.HostConfig.PortBindings?.["5000/tcp"], [{ HostIp: "", HostPort: "5000" }]);
  });
});

describe("the namespace's platform record", () => {
  test("is written once, read back, and a different platform is refused in the original's words", async () => {
    const paths = new SitePaths(dir, "rec");
    assert.equal(await readPlatformRecord(paths), undefined);
    assert.equal(choosePlatform(undefined, undefined), "linux");
    assert.equal(choosePlatform(undefined, "docker"), "docker");
    await writePlatformRecord(paths, { platform: "podman", network: "n1" });
    const recorded = await readPlatformRecord(paths);
    assert.deepEqual(recorded, { platform: "podman", network: "n1" });
    assert.equal((await fs.stat(paths.platformFile)).mode & 0o777, 0o600);
    assert.equal(choosePlatform(recorded, undefined), "podman");
    assert.equal(choosePlatform(recorded, "podman"), "podman");
    assert.throws(
      () => choosePlatform(recorded, "docker"),
      (err: Error & { exitCode?: number }) => err.message === 'existing namespace uses "podman" platform and it cannot change to "docker"' && err.exitCode === 2,
    );
  });

  test("a record that names no platform is an error that names the file", async () => {
    const paths = new SitePaths(dir, "bad");
    await fs.mkdir(paths.root, { recursive: true });
    await fs.writeFile(paths.platformFile, "platform: windows\n");
    await assert.rejects(readPlatformRecord(paths), /platform\.yaml does not name a platform/);
  });
});
