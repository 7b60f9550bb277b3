/**
 * The Pending/Ready/Error model (src/api/status.ts): the first required condition that is absent
 * or not True decides the aggregate status and message.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  aggregate,
  conditionOf,
  ConditionType,
  failed,
  pending,
  ready,
  removeCondition,
  requiredConditions,
  setCondition,
  toCondition,
  withAggregate,
  type CommonStatus,
  type Condition,
} from "../../src/api/index.js";

const T0 = "2025-01-01T00:00:00Z";
const T1 = "2025-01-01T00:01:00Z";
const T2 = "2025-01-01T00:02:00Z";

function conditions(...entries: Array<[string, ReturnType<typeof ready>]>): Condition[] {
  return entries.reduce<Condition[]>((list, [type, state]) => setCondition(list, type, state, T0), []);
}

describe("aggregate", () => {
  const required = ["Configured", "Running", "Resolved"] as const;

  test("all required conditions True → Ready OK", () => {
    const list = conditions(["Configured", ready()], ["Running", ready()], ["Resolved", ready()]);
    assert.deepEqual(aggregate(list, required), { status: "Ready", message: "OK" });
  });

  test("no conditions at all → Pending 'Not <first required>'", () => {
    assert.deepEqual(aggregate(undefined, required), { status: "Pending", message: "Not Configured" });
    assert.deepEqual(aggregate([], required), { status: "Pending", message: "Not Configured" });
  });

  test("a missing condition later in the order → Pending naming that condition", () => {
    const list = conditions(["Configured", ready()], ["Resolved", ready()]);
    assert.deepEqual(aggregate(list, required), { status: "Pending", message: "Not Running" });
  });

  test("a False condition with reason Error → Error with its message", () => {
    const list = conditions(["Configured", ready()], ["Running", failed("port 8080 is in use")], ["Resolved", ready()]);
    assert.deepEqual(aggregate(list, required), { status: "Error", message: "port 8080 is in use" });
  });

  test("a False condition with reason Pending → Pending with its message", () => {
    const list = conditions(["Configured", ready()], ["Running", pending("starting")]);
    assert.deepEqual(aggregate(list, required), { status: "Pending", message: "starting" });
  });

  test("order decides: the first failing condition wins over later errors", () => {
    const list = conditions(["Configured", pending("waiting for site")], ["Running", failed("crashed")]);
    assert.deepEqual(aggregate(list, required), { status: "Pending", message: "waiting for site" });
    const reversed = conditions(["Configured", failed("bad spec")], ["Running", pending("starting")]);
    assert.deepEqual(aggregate(reversed, required), { status: "Error", message: "bad spec" });
  });

  test("conditions that are not required do not matter", () => {
    const list = conditions(["Configured", ready()], ["Running", ready()], ["Resolved", ready()], ["Other", failed("ignored")]);
    assert.equal(aggregate(list, required).status, "Ready");
  });

  test("Unknown status counts as not ready", () => {
    const list: Condition[] = [{ type: "Configured", status: "Unknown", reason: "Pending", message: "unknown yet", lastTransitionTime: T0 }];
    assert.deepEqual(aggregate(list, ["Configured"]), { status: "Pending", message: "unknown yet" });
  });
});

describe("conditions", () => {
  test("toCondition maps states to status, reason and message", () => {
    assert.deepEqual(toCondition("Running", ready(), T0, 3), { type: "Running", status: "True", reason: "Ready", message: "OK", lastTransitionTime: T0, observedGeneration: 3 });
    assert.deepEqual(toCondition("Running", pending("soon"), T0), { type: "Running", status: "False", reason: "Pending", message: "soon", lastTransitionTime: T0 });
    assert.deepEqual(toCondition("Running", failed("no"), T0), { type: "Running", status: "False", reason: "Error", message: "no", lastTransitionTime: T0 });
  });

  test("setCondition replaces in place and does not modify its input", () => {
    const original = conditions(["Configured", ready()], ["Running", pending("starting")]);
    const copy = structuredClone(original);
    const next = setCondition(original, "Running", ready(), T1);
    assert.deepEqual(original, copy);
    assert.deepEqual(next.map((c) => c.type), ["Configured", "Running"]);
    assert.equal(conditionOf(next, "Running")?.status, "True");
  });

  test("the transition time moves only when True/False flips", () => {
    let list = setCondition(undefined, "Running", pending("starting"), T0);
    list = setCondition(list, "Running", failed("crashed"), T1); // False → False: time kept, message updated
    assert.equal(conditionOf(list, "Running")?.lastTransitionTime, T0);
    assert.equal(conditionOf(list, "Running")?.message, "crashed");
    assert.equal(conditionOf(list, "Running")?.reason, "Error");
    list = setCondition(list, "Running", ready(), T2); // False → True: time moves
    assert.equal(conditionOf(list, "Running")?.lastTransitionTime, T2);
  });

  test("removeCondition", () => {
    const list = conditions(["Configured", ready()], ["Running", ready()]);
    assert.deepEqual(removeCondition(list, "Configured").map((c) => c.type), ["Running"]);
    assert.deepEqual(removeCondition(undefined, "Configured"), []);
  });
});

describe("withAggregate", () => {
  test("writes status, message and a Ready condition matching the aggregate", () => {
    const input: CommonStatus = { conditions: conditions(["Configured", ready()], ["Operational", failed("TLS: unknown CA")]) };
    const out = withAggregate(input, requiredConditions("Link"), T1);
    assert.equal(out.status, "Error");
    assert.equal(out.message, "TLS: unknown CA");
    const readyCondition = conditionOf(out.conditions, ConditionType.Ready);
    assert.deepEqual(
      readyCondition && { status: readyCondition.status, reason: readyCondition.reason, message: readyCondition.message },
      { status: "False", reason: "Error", message: "TLS: unknown CA" },
    );
    assert.equal(out.conditions?.filter((c) => c.type === "Ready").length, 1);
    assert.equal(input.conditions?.some((c) => c.type === "Ready"), false, "the input is not modified");
  });

  test("the Ready condition keeps its transition time while its value is unchanged, and moves when it flips", () => {
    const required = requiredConditions("AccessToken");
    const first = withAggregate<CommonStatus>({ conditions: conditions(["Redeemed", pending("redeeming")]) }, required, T0);
    assert.equal(first.status, "Pending");
    const second = withAggregate({ ...first, conditions: setCondition(first.conditions, "Redeemed", failed("expired"), T1) }, required, T1);
    assert.equal(second.status, "Error");
    assert.equal(conditionOf(second.conditions, "Ready")?.lastTransitionTime, T0, "False → False keeps the time");
    const third = withAggregate({ ...second, conditions: setCondition(second.conditions, "Redeemed", ready(), T2) }, required, T2);
    assert.equal(third.status, "Ready");
    assert.equal(third.message, "OK");
    assert.equal(conditionOf(third.conditions, "Ready")?.lastTransitionTime, T2);
  });

  test("writeReadyCondition=false leaves the conditions alone", () => {
    const input: CommonStatus = { conditions: conditions(["Redeemed", ready()]) };
    const out = withAggregate(input, requiredConditions("AccessToken"), T1, false);
    assert.equal(out.status, "Ready");
    assert.deepEqual(out.conditions, input.conditions);
  });
});

describe("requiredConditions", () => {
  test("per kind, in order", () => {
    assert.deepEqual(requiredConditions("Site"), ["Configured", "Running"]);
    assert.deepEqual(requiredConditions("Site", { linkAccess: true }), ["Configured", "Running", "Resolved"]);
    assert.deepEqual(requiredConditions("Link"), ["Configured", "Operational"]);
    assert.deepEqual(requiredConditions("Listener"), ["Configured", "Matched"]);
    assert.deepEqual(requiredConditions("Connector"), ["Configured", "Matched"]);
    assert.deepEqual(requiredConditions("RouterAccess"), ["Configured", "Resolved"]);
    assert.deepEqual(requiredConditions("AccessGrant"), ["Processed", "Resolved"]);
    assert.deepEqual(requiredConditions("AccessToken"), ["Redeemed"]);
    assert.deepEqual(requiredConditions("Secret"), []);
  });

  test("a Site with link access is Pending until Resolved", () => {
    const list = conditions(["Configured", ready()], ["Running", ready()]);
    assert.equal(aggregate(list, requiredConditions("Site")).status, "Ready");
    assert.deepEqual(aggregate(list, requiredConditions("Site", { linkAccess: true })), { status: "Pending", message: "Not Resolved" });
  });
});
