/** Reading the site process's view of the network (runtime/network-status.json). */
import { readFileIfExists } from "../common/files.js";
import type { NetworkStatusFile } from "../controller/index.js";
import type { CliContext } from "./context.js";

export async function readNetworkStatus(ctx: CliContext): Promise<NetworkStatusFile | undefined> {
  const text = await readFileIfExists(ctx.paths.networkStatusFile);
  if (!text) return undefined;
  try {
    return JSON.parse(text) as NetworkStatusFile;
  } catch {
    return undefined;
  }
}
