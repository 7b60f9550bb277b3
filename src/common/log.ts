/** A small leveled logger: one line per event, ISO timestamp, component name. */

export type LogLevel = "debug" | "info" | "warn" | "error";

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

let threshold: number = ORDER[(process.env.SKUPPER_LOG_LEVEL as LogLevel) ?? "info"] ?? ORDER.info;
let sink: (line: string) => void = (line) => process.stderr.write(line + "\n");

export function setLogSink(write: (line: string) => void): void {
  sink = write;
}

export function setLogLevel(level: LogLevel): void {
  threshold = ORDER[level];
}

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  enabled(level: LogLevel): boolean;
}

export function logger(component: string): Logger {
  const emit = (level: LogLevel, message: string) => {
    if (ORDER[level] < threshold) return;
    sink(`${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${component}: ${message}`);
  };
  return {
    debug: (m) => emit("debug", m),
    info: (m) => emit("info", m),
    warn: (m) => emit("warn", m),
    error: (m) => emit("error", m),
    enabled: (level) => ORDER[level] >= threshold,
  };
}
