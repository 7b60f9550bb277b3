/**
 * The benchmark in smoke mode: every measurement runs and yields a figure. Nothing here judges
 * speed; that is what `npm run bench` and docs/performance.md are for.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import path from "node:path";
import { test } from "node:test";
import { ROOT } from "../helpers/cli.js";

test("npm run bench -- --smoke --json measures skupper-ts beside direct TCP (and stunnel where installed)", async () => {
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, [path.join(ROOT, "dist", "bench", "run.js"), "--smoke", "--json"], { timeout: 180_000, maxBuffer: 8 * 1024 * 1024 }, (error, out, err) =>
      error ? reject(new Error(`bench failed: ${error.message}\n${err}`)) : resolve(String(out)),
    );
  });
  const results = JSON.parse(stdout);
  const targets = ["direct", "skupper", ...(results.notes.some((n: string) => n.startsWith("stunnel4 is not installed")) ? [] : ["stunnel"])];
  const throughput = !results.notes.some((n: string) => n.startsWith("iperf3 is not installed"));
  for (const target of targets) {
    assert.ok(results.requestResponse[target].perSecond > 0, `${target}: request/response rate`);
    assert.ok(results.requestResponse[target].p99Us >= results.requestResponse[target].p50Us, `${target}: p99 ≥ p50`);
    assert.ok(results.connections[target].perSecond > 0, `${target}: new connections`);
    assert.equal(results.connections[target].failed, 0, `${target}: no connection failed`);
    if (throughput) {
      assert.ok(results.throughput1[target] > 0, `${target}: single-stream throughput`);
      assert.ok(results.throughput8[target] > 0, `${target}: 8-stream throughput`);
      if (target !== "direct") {
        // The tunnel's processes carried the traffic, so they used CPU, and each thread shown belongs to one of them.
        for (const cpu of [results.cpu1[target], results.cpu8[target]]) {
          assert.ok(cpu.cores > 0 && cpu.gbitPerCore > 0, `${target}: tunnel CPU and Gbit/s per core`);
        }
        // Per thread only for threads still alive at the end: stunnel's end with their connections.
        if (target === "skupper") {
          assert.ok(results.cpu8[target].threads.length > 0, `${target}: per-thread CPU at 8 streams`);
          for (const thread of results.cpu8[target].threads) assert.match(thread.process, /^(listener|connector) site$/);
        }
      }
    }
  }
  assert.equal(results.idleMemory.connections, 200);
  assert.ok(results.linkReadyMs > 0);
});
