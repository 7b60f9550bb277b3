/** Reading the site process's view of the network (runtime/network-status.json). */
import { MiB, readTextLimited } from "../common/files.js";
import type { NetworkStatusFile } from "../controller/index.js";
import type { CliContext } from "./context.js";

/** Far above the status of any real network; a larger file is damaged and not read at all. */
const MAX_NETWORK_STATUS_BYTES = 16 * MiB;

export async function readNetworkStatus(ctx: CliContext): Promise<NetworkStatusFile | undefined> {
  let text: string | undefined;
  try {
    text = await readTextLimited(ctx.paths.networkStatusFile, MAX_NETWORK_STATUS_BYTES, { regularOnly: true });
  } catch {
    return undefined;
  }
  if (!text) return undefined;
  try {
    return JSON.parse(text) as NetworkStatusFile;
  } catch {
    return undefined;
  }
}
