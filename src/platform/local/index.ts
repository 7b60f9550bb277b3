export * from "./paths.js";
export * from "./files.js";
export { INLINE_PARSE_MAX_BYTES, OffThreadParser } from "./parse-worker.js";
export { acquirePidFile, AlreadyRunningError, isSiteProcess, readPid, releasePidFile, runningPid, SITE_PROCESS_MARKER } from "./pidfile.js";
export { requireSiteProcess, siteProcessPid, startSiteProcess, stopSiteProcess, type StartResult } from "./runner.js";
