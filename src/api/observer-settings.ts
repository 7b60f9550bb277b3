/**
 * The observer port: one HTTP server in the site process for the web console and Prometheus
 * metrics, configured by two Site settings (docs/console.md). Off unless `observer-port` is set;
 * bound to loopback unless `observer-host` says otherwise.
 */
import { isIP } from "node:net";

export const ObserverSetting = {
  port: "observer-port",
  host: "observer-host",
} as const;

export const DEFAULT_OBSERVER_HOST = "127.0.0.1";

/** What the Site asks for: off, or a port and host; problems make it off. */
export type ObserverConfig = { enabled: false; problems: string[] } | { enabled: true; port: number; host: string; problems: [] };

/** The problem with a port value, or undefined if it is a port 1–65535. */
export function observerPortProblem(raw: string): string | undefined {
  const value = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isInteger(value) || value < 1 || value > 65535) {
    return `the observer port must be a port number between 1 and 65535 (got "${raw}")`;
  }
  return undefined;
}

/** The problem with a host value, or undefined if it is an IPv4 or IPv6 address. */
export function observerHostProblem(raw: string): string | undefined {
  if (isIP(unbracket(raw)) === 0) return `the observer host must be an IP address such as 127.0.0.1, 0.0.0.0 or ::1 (got "${raw}")`;
  return undefined;
}

export function observerConfig(settings: Record<string, string> | undefined): ObserverConfig {
  const rawPort = settings?.[ObserverSetting.port];
  const rawHost = settings?.[ObserverSetting.host];
  if (rawPort === undefined || rawPort === "") return { enabled: false, problems: [] };
  const problems = [observerPortProblem(rawPort), rawHost ? observerHostProblem(rawHost) : undefined].filter((p): p is string => !!p);
  if (problems.length > 0) return { enabled: false, problems };
  return { enabled: true, port: Number(rawPort), host: rawHost ? unbracket(rawHost) : DEFAULT_OBSERVER_HOST, problems: [] };
}

/** Whether an address only this machine can reach: 127.0.0.0/8, ::1 (and ::ffff:127.x). */
export function isLoopback(host: string): boolean {
  const h = unbracket(host).toLowerCase();
  if (isIP(h) === 4) return h.startsWith("127.");
  if (h === "::1") return true;
  return h.startsWith("::ffff:127.");
}

function unbracket(host: string): string {
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

/** The URL a browser on this machine (loopback) or elsewhere opens. */
export function observerUrl(host: string, port: number): string {
  const h = host === "0.0.0.0" ? "127.0.0.1" : host === "::" ? "::1" : host;
  return `http://${isIP(h) === 6 ? `[${h}]` : h}:${port}/`;
}
