/**
 * The Pending/Ready/Error status model: each resource kind has an ordered list of required
 * conditions; the first one that is absent or not True decides the aggregate status and message.
 */
import type { CommonStatus, Condition, StatusType } from "./types.js";

export const ConditionType = {
  Configured: "Configured",
  Resolved: "Resolved",
  Running: "Running",
  Matched: "Matched",
  Processed: "Processed",
  Redeemed: "Redeemed",
  Operational: "Operational",
  Ready: "Ready",
} as const;
export type ConditionTypeName = (typeof ConditionType)[keyof typeof ConditionType];

/** What a reconciler knows about one aspect of a resource. */
export type ConditionState =
  | { kind: "ready" }
  | { kind: "pending"; message: string }
  | { kind: "error"; message: string };

export const ready = (): ConditionState => ({ kind: "ready" });
export const pending = (message: string): ConditionState => ({ kind: "pending", message });
export const failed = (message: string): ConditionState => ({ kind: "error", message });

export function toCondition(type: string, state: ConditionState, now: string, generation?: number): Condition {
  const base = { type, lastTransitionTime: now, ...(generation !== undefined ? { observedGeneration: generation } : {}) };
  switch (state.kind) {
    case "ready":
      return { ...base, status: "True", reason: "Ready", message: "OK" };
    case "pending":
      return { ...base, status: "False", reason: "Pending", message: state.message };
    case "error":
      return { ...base, status: "False", reason: "Error", message: state.message };
  }
}

/**
 * Returns `conditions` with `type` set to `state`. The transition time only moves when the
 * condition's True/False value flips, as in Kubernetes.
 */
export function setCondition(conditions: Condition[] | undefined, type: string, state: ConditionState, now: string): Condition[] {
  const list = conditions ? [...conditions] : [];
  const next = toCondition(type, state, now);
  const index = list.findIndex((c) => c.type === type);
  if (index < 0) {
    list.push(next);
    return list;
  }
  const previous = list[index] as Condition;
  if (previous.status === next.status) next.lastTransitionTime = previous.lastTransitionTime;
  list[index] = next;
  return list;
}

export function removeCondition(conditions: Condition[] | undefined, type: string): Condition[] {
  return (conditions ?? []).filter((c) => c.type !== type);
}

export interface Aggregate {
  status: StatusType;
  message: string;
}

/** Walks `required` in order: absent → Pending "Not <Type>"; False → that condition's reason and message. */
export function aggregate(conditions: Condition[] | undefined, required: readonly string[]): Aggregate {
  for (const type of required) {
    const condition = conditions?.find((c) => c.type === type);
    if (!condition) return { status: "Pending", message: `Not ${type}` };
    if (condition.status !== "True") {
      return { status: condition.reason === "Error" ? "Error" : "Pending", message: condition.message };
    }
  }
  return { status: "Ready", message: "OK" };
}

/**
 * Recomputes status/message and the `Ready` condition of `status` from its conditions.
 * Returns a new object; the input is not modified.
 */
export function withAggregate<T extends CommonStatus>(status: T, required: readonly string[], now: string, writeReadyCondition = true): T {
  const result = aggregate(status.conditions, required);
  let conditions = status.conditions ?? [];
  if (writeReadyCondition) {
    const state: ConditionState =
      result.status === "Ready" ? ready() : result.status === "Error" ? failed(result.message) : pending(result.message);
    conditions = setCondition(removeCondition(conditions, ConditionType.Ready), ConditionType.Ready, state, now);
    const previousReady = status.conditions?.find((c) => c.type === ConditionType.Ready);
    const nextReady = conditions[conditions.length - 1] as Condition;
    if (previousReady && previousReady.status === nextReady.status) nextReady.lastTransitionTime = previousReady.lastTransitionTime;
  }
  return { ...status, status: result.status, message: result.message, conditions };
}

/** Required conditions per kind, in order (see docs/status-model.md). */
export function requiredConditions(kind: string, options: { linkAccess?: boolean } = {}): readonly string[] {
  switch (kind) {
    case "Site":
      return options.linkAccess
        ? [ConditionType.Configured, ConditionType.Running, ConditionType.Resolved]
        : [ConditionType.Configured, ConditionType.Running];
    case "Link":
      return [ConditionType.Configured, ConditionType.Operational];
    case "Listener":
    case "Connector":
    case "AttachedConnectorBinding":
      return [ConditionType.Configured, ConditionType.Matched];
    case "AttachedConnector":
      return [ConditionType.Configured];
    case "MultiKeyListener":
      return [ConditionType.Configured, ConditionType.Operational];
    case "SecuredAccess":
      return [ConditionType.Configured, ConditionType.Resolved];
    case "Certificate":
      // The original writes only a Ready condition; ours says why through Configured.
      return [ConditionType.Configured];
    case "RouterAccess":
      return [ConditionType.Configured, ConditionType.Resolved];
    case "AccessGrant":
      return [ConditionType.Processed, ConditionType.Resolved];
    case "AccessToken":
      return [ConditionType.Redeemed];
    default:
      return [];
  }
}

/** A condition's state, if present. */
export function conditionOf(conditions: Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}
