/**
 * Go-syntax durations (src/common/duration.ts) and the messages given when one is rejected
 * (resource validation and the CLI's --timeout option).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseDocuments } from "../../src/api/index.js";
import { timeoutOption } from "../../src/cli/output.js";
import { describeDuration, formatDuration, parseDuration } from "../../src/common/duration.js";
import { InvalidInputError } from "../../src/common/errors.js";

describe("parseDuration", () => {
  const accepted: Array<[string, number]> = [
    ["15m", 15 * 60_000],
    ["1h30m", 90 * 60_000],
    ["90s", 90_000],
    ["15m0s", 15 * 60_000],
    ["1h0m0s", 3_600_000],
    ["500ms", 500],
    ["1.5h", 90 * 60_000],
    [".5s", 500],
    ["2h45m30.5s", 2 * 3_600_000 + 45 * 60_000 + 30_500],
    ["1500us", 2], // rounded to whole milliseconds
    ["1500µs", 2],
    ["2000000ns", 2],
    [" 15m ", 15 * 60_000],
    ["0", 0],
    ["+5s", 5000],
    ["-5m", -300_000],
  ];
  for (const [text, ms] of accepted) {
    test(`accepts ${JSON.stringify(text)} as ${ms} ms`, () => assert.equal(parseDuration(text), ms));
  }

  const rejected = ["", "   ", "15", "m", "15x", "15M", "1d", "1h 30m", "1h-30m", "1e3s", "0x10s", ".", "+", "-", "h1", "15m!", "one minute"];
  test(`rejects malformed input: ${rejected.map((t) => JSON.stringify(t)).join(" ")}`, () => {
    for (const text of rejected) assert.equal(parseDuration(text), undefined, `${JSON.stringify(text)} must be rejected`);
  });
});

describe("formatDuration", () => {
  test("formats like Go's time.Duration.String()", () => {
    assert.equal(formatDuration(0), "0s");
    assert.equal(formatDuration(500), "500ms");
    assert.equal(formatDuration(1500), "1.5s");
    assert.equal(formatDuration(90_000), "1m30s");
    assert.equal(formatDuration(15 * 60_000), "15m0s");
    assert.equal(formatDuration(3_600_000), "1h0m0s");
    assert.equal(formatDuration(90 * 60_000), "1h30m0s");
    assert.equal(formatDuration(86_400_000), "24h0m0s");
    assert.equal(formatDuration(-90_000), "-1m30s");
  });

  test("what it formats parses back to the same value", () => {
    for (const ms of [0, 1, 999, 1000, 1500, 59_999, 60_000, 90_000, 15 * 60_000, 3_600_000 + 1, 36 * 3_600_000, -90_000]) {
      assert.equal(parseDuration(formatDuration(ms)), ms, formatDuration(ms));
    }
  });
});

describe("describeDuration", () => {
  test("plain English, at most two units", () => {
    assert.equal(describeDuration(15 * 60_000), "15 minutes");
    assert.equal(describeDuration(3_600_000), "1 hour");
    assert.equal(describeDuration(90 * 60_000), "1 hour 30 minutes");
    assert.equal(describeDuration(45_000), "45 seconds");
    assert.equal(describeDuration(1000), "1 second");
    assert.equal(describeDuration(86_400_000 + 3_600_000 + 60_000), "1 day 1 hour");
    assert.equal(describeDuration(500), "500 milliseconds");
  });

  test("singular millisecond", () => {
    // Regression: used to say "1 milliseconds".
    assert.equal(describeDuration(1), "1 millisecond");
    assert.equal(describeDuration(0), "0 milliseconds");
  });
});

describe("rejections carry clear messages", () => {
  test("an AccessGrant's expirationWindow names the field and gives examples", () => {
    for (const bad of ["15", "soon", "1 hour", "1d"]) {
      const { resources, problems } = parseDocuments(
        `apiVersion: skupper.io/v2alpha1\nkind: AccessGrant\nmetadata: {name: g}\nspec: {expirationWindow: "${bad}"}\n`,
        "grant.yaml",
      );
      assert.equal(resources.length, 0);
      assert.deepEqual(problems, [`grant.yaml: AccessGrant "g": spec.expirationWindow: must be a duration such as 15m, 1h or 90s`]);
    }
  });

  test("--timeout: not a duration, or too short", () => {
    assert.equal(timeoutOption(undefined, 60_000), 60_000);
    assert.equal(timeoutOption("2m", 60_000), 120_000);
    assert.throws(() => timeoutOption("soon", 60_000), (err: unknown) => {
      assert.ok(err instanceof InvalidInputError);
      assert.equal(err.exitCode, 2);
      assert.equal(err.message, `timeout is not valid: "soon" is not a duration (examples: 30s, 2m)`);
      return true;
    });
    assert.throws(() => timeoutOption("5s", 60_000), { message: "timeout is not valid: duration must not be less than 10s; got 5s" });
  });
});
