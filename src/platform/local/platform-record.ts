/**
 * Which platform runs a namespace's site, recorded in `<namespace>/platform.yaml` when its site is
 * created or started (as the original's `internal/platform.yaml`): later commands without
 * `--platform` use it, and a different platform is refused, since a namespace's site cannot move
 * between a host process and a container engine while it exists. Removed with the site's state.
 */
import { readFileSync, statSync } from "node:fs";
import { parse, stringify } from "yaml";
import { InvalidInputError } from "../../common/errors.js";
import { readFileIfExists, removeIfExists, writeFileAtomic } from "../../common/files.js";
import type { PlatformName } from "../types.js";
import type { SitePaths } from "./paths.js";

/** The platforms whose sites live in the local files (a process, or a container on this host). */
export const LOCAL_PLATFORMS = ["linux", "podman", "docker"] as const satisfies readonly PlatformName[];
export type LocalPlatformName = (typeof LOCAL_PLATFORMS)[number];

export interface PlatformRecord {
  platform: LocalPlatformName;
  /** Container platforms: the engine network the site's container joins instead of the host's. */
  network?: string;
}

const MAX_RECORD_BYTES = 64 * 1024;

/** Engine network names as docker and podman accept them. */
const NETWORK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;

export function validateNetworkName(name: string): string {
  if (!NETWORK_NAME.test(name) || name === "host" || name === "none" || name === "bridge") {
    throw new InvalidInputError(
      `container network "${name}" is not valid: give the name of a user-defined network (letters, digits, "_", "." and "-"; not host, bridge or none)`,
    );
  }
  return name;
}

export async function readPlatformRecord(paths: SitePaths): Promise<PlatformRecord | undefined> {
  const text = await readFileIfExists(paths.platformFile, MAX_RECORD_BYTES);
  return text === undefined ? undefined : parsePlatformRecord(text, paths.platformFile);
}

/** The same, synchronously: the CLI chooses its platform before anything else runs. */
export function readPlatformRecordSync(paths: SitePaths): PlatformRecord | undefined {
  let text: string;
  try {
    if (statSync(paths.platformFile).size > MAX_RECORD_BYTES) throw new InvalidInputError(`${paths.platformFile} is too large to be a platform record; fix or remove it`, "ERR_PLATFORM");
    text = readFileSync(paths.platformFile, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  return parsePlatformRecord(text, paths.platformFile);
}

function parsePlatformRecord(text: string, file: string): PlatformRecord {
  let raw: unknown;
  try {
    raw = parse(text);
  } catch {
    raw = undefined;
  }
  const value = raw && typeof raw === "object" ? (raw as Record<string, unknown>) : {};
  const platform = value.platform;
  if (typeof platform !== "string" || !(LOCAL_PLATFORMS as readonly string[]).includes(platform)) {
    throw new InvalidInputError(`${file} does not name a platform (linux, podman or docker); fix or remove it`, "ERR_PLATFORM");
  }
  const network = typeof value.network === "string" && value.network !== "" ? validateNetworkName(value.network) : undefined;
  return { platform: platform as LocalPlatformName, ...(network ? { network } : {}) };
}

export async function writePlatformRecord(paths: SitePaths, record: PlatformRecord): Promise<void> {
  await writeFileAtomic(paths.platformFile, stringify(record), { mode: 0o600 });
}

export async function removePlatformRecord(paths: SitePaths): Promise<void> {
  await removeIfExists(paths.platformFile);
}

/**
 * The platform a command acts through: the recorded one, unless the user asked for another
 * (then refused, in the original's words) or nothing is recorded (then what was asked, or linux).
 */
export function choosePlatform(recorded: PlatformRecord | undefined, asked: LocalPlatformName | undefined): LocalPlatformName {
  if (!recorded) return asked ?? "linux";
  if (asked && asked !== recorded.platform) {
    throw new InvalidInputError(`existing namespace uses "${recorded.platform}" platform and it cannot change to "${asked}"`, "ERR_PLATFORM");
  }
  return recorded.platform;
}
