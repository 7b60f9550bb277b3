/**
 * Builds the web console's bundle (src/console/web → dist/src/console/web): type-checks the
 * front end, bundles it with esbuild (Preact, cytoscape; no CDN, nothing fetched at run time)
 * and copies the page and its style sheet. Run by `npm run build`, `npm test` and `npm run
 * prepare` after tsc; the image copies dist/src, so the bundle goes with it.
 */
import { execFileSync } from "node:child_process";
import { promises as fs } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const SOURCE = path.join(ROOT, "src", "console", "web");
const OUT = path.join(ROOT, "dist", "src", "console", "web");

async function main(): Promise<void> {
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
  execFileSync(process.execPath, [tsc, "-p", path.join(SOURCE, "tsconfig.json")], { stdio: "inherit" });
  await fs.mkdir(OUT, { recursive: true });
  const result = await build({
    entryPoints: [path.join(SOURCE, "main.tsx")],
    outfile: path.join(OUT, "app.js"),
    bundle: true,
    minify: true,
    format: "esm",
    target: ["es2022"],
    jsx: "automatic",
    jsxImportSource: "preact",
    legalComments: "eof",
    metafile: true,
    logLevel: "warning",
  });
  for (const file of ["index.html", "app.css"]) await fs.copyFile(path.join(SOURCE, file), path.join(OUT, file));
  const bytes = Object.values(result.metafile.outputs).reduce((total, output) => total + output.bytes, 0);
  process.stdout.write(`console bundle: ${path.relative(ROOT, OUT)}/app.js, ${Math.round(bytes / 1024)} KiB\n`);
}

main().catch((err: Error) => {
  process.stderr.write(`building the console failed: ${err.message}\n`);
  process.exit(1);
});
