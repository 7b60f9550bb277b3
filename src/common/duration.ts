/**
 * Durations in the Go syntax the original tooling uses ("15m", "1h30m", "15m0s", "500ms").
 */

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/y;

/** Parses a Go-style duration into milliseconds; returns undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  const input = text.trim();
  if (input === "0") return 0;
  if (input === "") return undefined;
  let sign = 1;
  let pos = 0;
  if (input[0] === "-" || input[0] === "+") {
    sign = input[0] === "-" ? -1 : 1;
    pos = 1;
  }
  let total = 0;
  let parts = 0;
  while (pos < input.length) {
    PART.lastIndex = pos;
    const match = PART.exec(input);
    if (!match) return undefined;
    total += Number(match[1]) * (UNIT_MS[match[2] as string] as number);
    pos = PART.lastIndex;
    parts++;
  }
  return parts > 0 ? sign * Math.round(total) : undefined;
}

/** Formats milliseconds the way Go's time.Duration.String() does, e.g. "15m0s", "1h0m0s", "1.5s". */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  const negative = ms < 0;
  let rest = Math.abs(ms);
  let out = "";
  if (rest < 1000) {
    out = `${trimNumber(rest)}ms`;
  } else {
    const hours = Math.floor(rest / 3_600_000);
    rest -= hours * 3_600_000;
    const minutes = Math.floor(rest / 60_000);
    rest -= minutes * 60_000;
    const seconds = rest / 1000;
    if (hours > 0) out += `${hours}h`;
    if (hours > 0 || minutes > 0) out += `${minutes}m`;
    out += `${trimNumber(seconds)}s`;
  }
  return negative ? `-${out}` : out;
}

/** Plain-English duration for messages: "15 minutes", "1 hour", "1 hour 30 minutes", "45 seconds". */
export function describeDuration(ms: number): string {
  const units: Array<[number, string]> = [
    [86_400_000, "day"],
    [3_600_000, "hour"],
    [60_000, "minute"],
    [1000, "second"],
  ];
  const parts: string[] = [];
  let rest = Math.round(ms);
  for (const [size, name] of units) {
    const count = Math.floor(rest / size);
    if (count > 0) {
      parts.push(`${count} ${name}${count === 1 ? "" : "s"}`);
      rest -= count * size;
    }
  }
  if (parts.length === 0) return `${rest} millisecond${rest === 1 ? "" : "s"}`;
  return parts.slice(0, 2).join(" ");
}

function trimNumber(value: number): string {
  return Number.isInteger(value) ? String(value) : String(Number(value.toFixed(9)));
}
