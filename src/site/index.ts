export { siteProcessPid, startSiteProcess, stopSiteProcess, requireSiteProcess } from "./process.js";
export type { StartResult } from "./process.js";
