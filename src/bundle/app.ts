/**
 * The app a bundle installs: the compiled app with its production dependencies, made by
 * scripts/stage-app.sh exactly as for the container image. A CLI run from a clone stages it; a
 * CLI that is itself a staged app (an installed bundle, the image) copies itself.
 */
import { execFile } from "node:child_process";
import { promises as fs } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { errorMessage, SkupperError } from "../common/errors.js";
import { pathExists } from "../common/files.js";

/** dist/src/bundle/app.js → the root of the clone or of the staged app. */
export const APP_ROOT = fileURLToPath(new URL("../../../", import.meta.url));
/** Written by scripts/stage-app.sh into a staged app. */
const STAGED_MARKER = ".skupper-app";
const STAGE_SCRIPT = path.join("scripts", "stage-app.sh");
const STAGE_TIMEOUT_MS = 300_000;

/** The installer scripts bundles are made from (copied into a staged app as well). */
export function bundleScript(name: "install.sh" | "self-extract.sh"): string {
  return path.join(APP_ROOT, "deploy", "bundle", name);
}

/** Puts the app at `dest`, which must not exist. */
export async function stageApp(dest: string): Promise<void> {
  if (await pathExists(path.join(APP_ROOT, STAGED_MARKER))) {
    await fs.cp(APP_ROOT, dest, { recursive: true, verbatimSymlinks: true });
    return;
  }
  const script = path.join(APP_ROOT, STAGE_SCRIPT);
  if (!(await pathExists(script))) {
    throw new SkupperError(
      "ERR_BUNDLE_APP",
      `cannot make the app for the bundle: ${APP_ROOT} is neither a staged app (no ${STAGED_MARKER}) nor a clone of the project (no ${STAGE_SCRIPT})`,
    );
  }
  await new Promise<void>((resolve, reject) => {
    execFile("bash", [script, dest], { timeout: STAGE_TIMEOUT_MS, maxBuffer: 4 * 1024 * 1024 }, (error, _stdout, stderr) => {
      if (!error) return resolve();
      const detail = String(stderr).trim() || errorMessage(error);
      reject(new SkupperError("ERR_BUNDLE_APP", `cannot make the app for the bundle (${STAGE_SCRIPT}): ${detail}`));
    });
  });
}
