export { runSite } from "./run.js";
export type { RunningSite } from "./run.js";
