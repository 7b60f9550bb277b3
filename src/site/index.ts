// The site process's start and stop moved to the local platform; these names stay until every
// caller uses `openLocalPlatform(...).runner`.
export { siteProcessPid, startSiteProcess, stopSiteProcess, requireSiteProcess } from "../platform/local/index.js";
export type { StartResult } from "../platform/local/index.js";
