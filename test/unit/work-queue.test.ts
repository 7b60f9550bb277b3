/**
 * The controller's WorkQueue: one key at a time; a waiting key is not queued twice; a key added
 * while it runs runs once more; failures retried with a backoff of their own (reset by a
 * success); `retryAfterMs`; `idle()` and `stop()`.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { WorkQueue, type ReconcileResult } from "../../src/controller/index.js";

interface Deferred {
  promise: Promise<void>;
  resolve(): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** Waits (at most `ms`) until `check` holds. */
async function until(description: string, check: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${description}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Resolves after `ms`, to check that something did NOT happen in that time. */
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Failure {
  key: string;
  message: string;
  delay: number;
  at: number;
}

/** A queue whose `process` is given by the test, recording what ran and what failed. */
function recordingQueue(process: (key: string) => Promise<ReconcileResult> | ReconcileResult, random = () => 0) {
  const ran: Array<{ key: string; at: number }> = [];
  const failures: Failure[] = [];
  const queue = new WorkQueue({
    process: async (key) => {
      ran.push({ key, at: Date.now() });
      return process(key);
    },
    failed: (key, error, delay) => {
      failures.push({ key, message: error.message, delay, at: Date.now() });
    },
    backoff: { initialMs: 20, maxMs: 100, random },
  });
  return { queue, ran, failures, keys: () => ran.map((r) => r.key) };
}

describe("WorkQueue", () => {
  test("a key added while it waits is processed once, in the order keys were first added", async () => {
    const gate = deferred();
    const { queue, keys } = recordingQueue(async (key) => {
      if (key === "first") await gate.promise;
    });
    queue.add("first");
    queue.add("a");
    queue.add("b");
    queue.add("a");
    queue.add("a");
    gate.resolve();
    await queue.idle();
    assert.deepEqual(keys(), ["first", "a", "b"]);
  });

  test("a key added while it is being processed runs once more afterwards (however often it was added)", async () => {
    const gate = deferred();
    let calls = 0;
    const { queue, keys } = recordingQueue(async () => {
      if (++calls === 1) await gate.promise;
    });
    queue.add("a");
    await until("a to start", () => calls === 1);
    queue.add("a");
    queue.add("a");
    gate.resolve();
    await queue.idle();
    assert.deepEqual(keys(), ["a", "a"]);
  });

  test("a failing key is retried with exponential backoff (random injected), and only that key", async () => {
    let failuresLeft = 4;
    const { queue, ran, failures, keys } = recordingQueue(async (key) => {
      if (key === "bad" && failuresLeft-- > 0) throw new Error("disk full");
    });
    queue.add("bad");
    queue.add("good");
    await until("four failures and a success", () => keys().filter((k) => k === "bad").length === 5, 3000);
    await queue.idle();
    // random() = 0: each delay is half of 20, 40, 80, 100 (the maximum) ms.
    assert.deepEqual(failures.map((f) => f.delay), [10, 20, 40, 50]);
    assert.deepEqual(failures.map((f) => f.message), ["disk full", "disk full", "disk full", "disk full"]);
    assert.deepEqual(failures.map((f) => f.key), ["bad", "bad", "bad", "bad"]);
    assert.deepEqual(keys().filter((k) => k === "good"), ["good"]);
    const attempts = ran.filter((r) => r.key === "bad");
    for (let i = 1; i < attempts.length; i++) {
      const waited = (attempts[i]?.at ?? 0) - (failures[i - 1]?.at ?? 0);
      assert.ok(waited >= (failures[i - 1]?.delay ?? 0) - 1, `attempt ${i + 1} came ${waited} ms after failure ${i}, before its delay`);
    }
    assert.equal(queue.failures("bad"), 0);
  });

  test("the jitter takes up to the other half of the step", async () => {
    const { queue, failures } = recordingQueue(async () => {
      throw new Error("no");
    }, () => 0.5);
    queue.add("a");
    await until("two failures", () => failures.length >= 2);
    queue.stop();
    assert.deepEqual(failures.slice(0, 2).map((f) => f.delay), [15, 30]);
  });

  test("a success resets the backoff of its key; each key has its own", async () => {
    let fail = true;
    const { queue, failures } = recordingQueue(async (key) => {
      if (key === "a" && fail) throw new Error("not yet");
      if (key === "b") throw new Error("b fails");
    });
    queue.add("a");
    await until("a to fail twice", () => failures.filter((f) => f.key === "a").length === 2);
    assert.equal(queue.failures("a"), 2);
    queue.add("b");
    await until("b to fail once", () => failures.some((f) => f.key === "b"));
    assert.equal(failures.find((f) => f.key === "b")?.delay, 10, "b starts at the initial delay");
    fail = false;
    await until("a to succeed", () => queue.failures("a") === 0);
    fail = true;
    const before = failures.filter((f) => f.key === "a").length;
    queue.add("a");
    await until("a to fail again", () => failures.filter((f) => f.key === "a").length === before + 1);
    queue.stop();
    assert.deepEqual(failures.filter((f) => f.key === "a").map((f) => f.delay).slice(0, 2), [10, 20]);
    assert.equal(failures.filter((f) => f.key === "a").at(-1)?.delay, 10, "the backoff started over");
  });

  test("a failure is not retried on a timer when the key was added again while it ran: it runs again at once", async () => {
    const gate = deferred();
    let calls = 0;
    const { queue, failures, keys } = recordingQueue(async () => {
      if (++calls === 1) {
        await gate.promise;
        throw new Error("stale");
      }
    });
    queue.add("a");
    await until("a to start", () => calls === 1);
    queue.add("a");
    gate.resolve();
    await queue.idle();
    assert.deepEqual(keys(), ["a", "a"]);
    assert.equal(failures.length, 1);
    assert.deepEqual(queue.delayed, []);
  });

  test("retryAfterMs looks at the key again after the delay; adding it sooner runs it at once and cancels the timer", async () => {
    const results: ReconcileResult[] = [{ retryAfterMs: 40 }, undefined, { retryAfterMs: 10_000 }, undefined];
    const { queue, ran } = recordingQueue(async () => results.shift());
    const start = Date.now();
    queue.add("a");
    await queue.idle();
    assert.deepEqual(queue.delayed, ["a"]);
    await until("a to be looked at again", () => ran.length === 2);
    assert.ok((ran[1]?.at ?? 0) - start >= 39, `looked at again after ${(ran[1]?.at ?? 0) - start} ms`);
    await queue.idle();
    assert.deepEqual(queue.delayed, []);

    queue.add("a");
    await queue.idle();
    assert.deepEqual(queue.delayed, ["a"], "asked to look again in 10 s");
    queue.add("a");
    await queue.idle();
    assert.equal(ran.length, 4);
    assert.deepEqual(queue.delayed, [], "the early add replaced the timer");
  });

  test("idle() resolves when nothing runs or waits, after re-runs too, but not waiting for delayed retries", async () => {
    const { queue, keys, failures } = recordingQueue(async (key) => {
      if (key === "x") throw new Error("later");
    });
    await queue.idle();
    const gate = deferred();
    let idle = false;
    const q2 = recordingQueue(async (key) => {
      if (key === "slow") await gate.promise;
    });
    q2.queue.add("slow");
    q2.queue.add("next");
    const waiting = q2.queue.idle().then(() => (idle = true));
    await pause(20);
    assert.equal(idle, false, "idle() waited for the running key");
    gate.resolve();
    await waiting;
    assert.deepEqual(q2.keys(), ["slow", "next"]);

    queue.add("x");
    await queue.idle();
    assert.deepEqual(keys(), ["x"]);
    assert.equal(failures.length, 1);
    assert.deepEqual(queue.delayed, ["x"], "idle although a retry is pending");
    queue.stop();
  });

  test("stop() cancels delayed retries and ignores later adds", async () => {
    const { queue, keys, failures } = recordingQueue(async () => {
      throw new Error("always");
    });
    queue.add("a");
    await until("a to fail", () => failures.length === 1);
    assert.deepEqual(queue.delayed, ["a"]);
    queue.stop();
    assert.deepEqual(queue.delayed, []);
    queue.add("b");
    queue.addAfter("c", 1);
    await pause(60);
    assert.deepEqual(keys(), ["a"]);
    await queue.idle();
  });

  test("a failure handler that throws does not stop the queue or the retry", async () => {
    let calls = 0;
    const ran: string[] = [];
    const queue = new WorkQueue({
      process: async (key) => {
        ran.push(key);
        if (key === "a" && ++calls === 1) throw new Error("first");
      },
      failed: () => {
        throw new Error("cannot report");
      },
      backoff: { initialMs: 20, maxMs: 100, random: () => 0 },
    });
    queue.add("a");
    queue.add("b");
    await until("a to be retried", () => ran.filter((k) => k === "a").length === 2);
    await queue.idle();
    assert.deepEqual(ran, ["a", "b", "a"]);
    assert.equal(queue.failures("a"), 0);
  });
});
