/** Output helpers: aligned tables, resources as YAML/JSON, and option validation shared by commands. */
import { parseDuration, formatDuration } from "../common/duration.js";
import { InvalidInputError } from "../common/errors.js";
import { toJson, toYaml } from "../api/index.js";

/** An RFC 3339 timestamp with fractions of a second, as `Date.toISOString` writes them. */
const FRACTIONAL_TIMESTAMP = /\b(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\.\d+(Z|[+-]\d{2}:\d{2})/g;

/**
 * Timestamps as the original (and Kubernetes) print them: to the second
 * (`2025-01-02T03:04:05Z`). The site stores milliseconds; everything the CLI prints, on stdout
 * or as an error, passes through here.
 */
export function withoutMilliseconds(text: string): string {
  return text.replace(FRACTIONAL_TIMESTAMP, "$1$2");
}

export function print(text = ""): void {
  const shown = withoutMilliseconds(text);
  process.stdout.write(shown.endsWith("\n") ? shown : shown + "\n");
}

/** Left-aligned columns separated by at least two spaces, like a tab writer. */
export function table(headers: string[], cells: string[][]): string {
  // Timestamps are shortened before the columns are measured (print would do it after).
  const rows = cells.map((row) => row.map(withoutMilliseconds));
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd((widths[i] as number) + 2)))
      .join("")
      .trimEnd();
  return [line(headers), ...rows.map(line)].join("\n");
}

export type OutputFormat = "yaml" | "json";

export function outputFormat(value: string | undefined): OutputFormat | undefined {
  if (value === undefined) return undefined;
  if (value === "yaml" || value === "json") return value;
  throw new InvalidInputError(`value ${value} not allowed. It should be one of this options: [json yaml]`);
}

export function formatResource(resource: unknown, format: OutputFormat): string {
  return format === "json" ? toJson(resource) : toYaml(resource, { sortKeys: true });
}

export type WaitFor = "ready" | "configured" | "none";

export function waitOption(value: string | undefined, fallback: WaitFor): WaitFor {
  const chosen = value ?? fallback;
  if (chosen === "ready" || chosen === "configured" || chosen === "none") return chosen;
  throw new InvalidInputError(`value ${chosen} not allowed. It should be one of this options: [ready configured none]`);
}

/** `--timeout`: a duration of at least 10 s, as in the original CLI. */
export function timeoutOption(value: string | undefined, fallbackMs: number): number {
  if (value === undefined) return fallbackMs;
  const ms = parseDuration(value);
  if (ms === undefined) throw new InvalidInputError(`timeout is not valid: "${value}" is not a duration (examples: 30s, 2m)`);
  if (ms < 10_000) throw new InvalidInputError(`timeout is not valid: duration must not be less than 10s; got ${formatDuration(ms)}`);
  return ms;
}

export function integerOption(name: string, value: string | undefined, { min, max }: { min?: number; max?: number } = {}): number | undefined {
  if (value === undefined) return undefined;
  if (!/^-?\d+$/.test(value.trim())) throw new InvalidInputError(`${name} is not valid: "${value}" is not an integer`);
  const n = Number(value);
  if (min !== undefined && n < min) throw new InvalidInputError(`${name} is not valid: must be at least ${min}`);
  if (max !== undefined && n > max) throw new InvalidInputError(`${name} is not valid: must be at most ${max}`);
  return n;
}

export function portOption(name: string, value: string | undefined): number | undefined {
  return integerOption(name, value, { min: 1, max: 65535 });
}

/** Parses a boolean flag given as `--flag`, `--flag=true` or `--flag=false`. */
export function booleanOption(name: string, value: string | boolean | undefined): boolean | undefined {
  if (value === undefined || typeof value === "boolean") return value;
  if (value === "true") return true;
  if (value === "false") return false;
  throw new InvalidInputError(`--${name} takes true or false, not "${value}"`);
}

export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), ...value.split(",").map((v) => v.trim()).filter(Boolean)];
}
