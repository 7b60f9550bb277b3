/**
 * The web console in a real headless browser (Debian's chromium driven by playwright-core): three
 * real site processes on loopback, the console of one of them opened. It shows the three sites
 * and their links, the connection count of a listener moves while clients hold connections, and
 * a link whose far site stops is shown down within 3 s. Screenshots are kept under
 * test-artifacts/console/ (the path is printed).
 *
 * Skipped, with a message, when /usr/bin/chromium is not installed.
 */
import assert from "node:assert/strict";
import { existsSync, promises as fs } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { eventually, freePort, ROOT, Sandbox } from "../helpers/cli.js";
import { connect, LoopbackNetwork, serve, type Backend } from "../helpers/network.js";

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = path.join(ROOT, "test-artifacts", "console");
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install chromium); the browser test of the console is skipped`;

describe("the web console in a headless browser", { skip }, () => {
  let sandbox: Sandbox;
  let network: LoopbackNetwork;
  let browser: BrowserContext;
  let userDataDir: string;
  let page: Page;
  let consoleUrl: string;
  let backend: Backend;
  let listenerPort: number;
  const held: net.Socket[] = [];

  async function screenshot(name: string): Promise<void> {
    const file = path.join(ARTIFACTS, `${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
  }

  before(async () => {
    await fs.mkdir(ARTIFACTS, { recursive: true });
    process.stdout.write(`# console screenshots: ${ARTIFACTS}\n`);
    sandbox = await Sandbox.create("console");
    network = new LoopbackNetwork(sandbox, sandbox.home());
    const port = await freePort();
    await network.createSite("west", { linkAccess: true });
    await network.run("west", ["site", "update", "--observer-port", String(port)]);
    await network.createSite("east", { linkAccess: true });
    await network.createSite("north");
    await network.link("west", "east");
    await network.link("north", "west");
    await network.link("north", "east");
    backend = await serve((socket) => socket.pipe(socket));
    listenerPort = await freePort();
    await network.run("north", ["connector", "create", "echo", String(backend.port), "--host", "127.0.0.1"]);
    await network.run("west", ["listener", "create", "echo", String(listenerPort), "--wait", "ready"]);

    const printed = await network.run("west", ["network", "console"]);
    consoleUrl = /Console: (\S+)/.exec(printed)?.[1] ?? "";
    assert.equal(consoleUrl, `http://127.0.0.1:${port}/`, printed);
    assert.match(printed, /No credential needed/);

    userDataDir = await fs.mkdtemp(path.join(os.tmpdir(), "skupper-console-chromium-"));
    browser = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
      viewport: { width: 1280, height: 1000 },
    });
    page = browser.pages()[0] ?? (await browser.newPage());
    const problems: string[] = [];
    page.on("pageerror", (err) => problems.push(err.message));
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(message.text());
    });
    await page.goto(consoleUrl);
    await page.getByTestId("connection").filter({ hasText: "Live" }).waitFor({ timeout: 10_000 });
    assert.deepEqual(problems, [], "no script errors and no CSP violations");
  });

  after(async () => {
    for (const socket of held) socket.destroy();
    await browser?.close();
    if (userDataDir) await fs.rm(userDataDir, { recursive: true, force: true });
    await backend?.close();
    await sandbox?.cleanup();
  });

  test("shows the three sites and the three links between them, up, with their RTT", async () => {
    for (const site of ["west", "east", "north"]) await page.getByTestId(`site-${site}`).waitFor({ timeout: 10_000 });
    await eventually("three links up", async () => (await page.getByTestId("summary").textContent())?.includes("3 sites · 3 of 3 links up"), 10_000, 100);
    for (const key of ["west--east", "north--west"]) {
      assert.equal(await page.getByTestId(`link-state-${key}`).textContent(), "up");
    }
    // The link between the two other sites is known from the network, with its RTT once measured.
    const remote = page.locator('[data-testid^="link-"][data-state="up"]');
    assert.equal(await remote.count(), 3);
    await eventually("an RTT on this site's outgoing link", async () => /ms$/.test((await page.getByTestId("link-rtt-west--east").textContent()) ?? ""), 15_000, 200);
    assert.equal(await page.locator("canvas").count() > 0, true, "the graph is drawn");
    await page.getByTestId("link-select-west--east").click();
    assert.equal(await page.getByTestId("link-detail-state").textContent(), "up");
    await screenshot("1-topology");
  });

  test("traffic through a listener moves the numbers without a reload", async () => {
    const count = page.getByTestId("listener-connections-echo");
    assert.equal(await count.textContent(), "0");
    for (let i = 0; i < 3; i++) {
      const socket = await connect(listenerPort);
      socket.write("hello");
      held.push(socket);
    }
    const started = Date.now();
    await eventually("the listener's connection count to reach 3", async () => (await count.textContent()) === "3", 5_000, 100);
    process.stdout.write(`# connection count shown after ${Date.now() - started} ms\n`);
    assert.match((await page.getByTestId("service-echo").textContent()) ?? "", /north/, "the connector's site is shown");
    // Each client sent "hello": the listener's bytes move, and north's summary reaches west.
    await eventually("the listener's bytes to show what the clients sent", async () => /15 B out/.test((await page.getByTestId("service-echo").textContent()) ?? ""), 5_000, 100);
    const flow = page.getByTestId("traffic-echo-west-north");
    await flow.waitFor({ timeout: 15_000 });
    assert.match((await flow.textContent()) ?? "", /3/, "the traffic table counts the three connections");
    await screenshot("2-traffic");
    for (const socket of held.splice(0)) socket.destroy();
    await eventually("the count to fall back to 0", async () => (await count.textContent()) === "0", 5_000, 100);
  });

  test("a link whose far site stops is shown down within 3 s, with the reason", async () => {
    const state = page.getByTestId("link-state-west--east");
    assert.equal(await state.textContent(), "up");
    await page.getByTestId("link-select-west--east").click();
    const stopped = Date.now();
    await network.run("east", ["system", "stop"]);
    await page.locator('[data-testid="link-west--east"][data-state="down"]').waitFor({ timeout: 10_000 });
    const elapsed = Date.now() - stopped;
    process.stdout.write(`# link shown down ${elapsed} ms after "system stop" began\n`);
    await screenshot("3-link-down");
    assert.ok(elapsed < 3000, `the link was shown down after ${elapsed} ms`);
    assert.notEqual(await state.textContent(), "up");
    assert.notEqual(await page.getByTestId("link-detail-message").textContent(), "–", "the detail says why");
  });
});
