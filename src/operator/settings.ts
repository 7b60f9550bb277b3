/** The cluster controller's settings from its environment (and its one flag for tests), checked. */
import { validateNamespace } from "../api/index.js";
import { InvalidInputError } from "../common/errors.js";
import { defaultImage } from "../platform/kubernetes/names.js";

export const IMAGE_ENV = "SKUPPER_IMAGE";
export const WATCH_NAMESPACES_ENV = "SKUPPER_WATCH_NAMESPACES";

export interface ControllerSettings {
  image: string;
  /** Undefined: all namespaces. */
  namespaces?: string[];
  watchTimeoutSeconds?: number;
}

export function controllerSettings(env: NodeJS.ProcessEnv, flags: { watchTimeout?: string | undefined } = {}): ControllerSettings {
  const image = env[IMAGE_ENV]?.trim() || defaultImage();
  if (/\s/.test(image)) throw new InvalidInputError(`${IMAGE_ENV} "${image}" is not an image reference (it contains white space)`);
  const settings: ControllerSettings = { image };
  const namespaces = watchNamespaces(env[WATCH_NAMESPACES_ENV]);
  if (namespaces) settings.namespaces = namespaces;
  if (flags.watchTimeout !== undefined) {
    const seconds = Number(flags.watchTimeout);
    if (!Number.isInteger(seconds) || seconds < 1) throw new InvalidInputError(`--watch-timeout must be a whole number of seconds (at least 1), not "${flags.watchTimeout}"`);
    settings.watchTimeoutSeconds = seconds;
  }
  return settings;
}

/** The namespaces SKUPPER_WATCH_NAMESPACES names, without duplicates; undefined (all) when it names none. */
export function watchNamespaces(value: string | undefined): string[] | undefined {
  const names = [...new Set((value ?? "").split(",").map((name) => name.trim()).filter((name) => name !== ""))];
  if (names.length === 0) return undefined;
  try {
    return names.map(validateNamespace);
  } catch (err) {
    throw new InvalidInputError(`${WATCH_NAMESPACES_ENV}: ${(err as Error).message}`);
  }
}
