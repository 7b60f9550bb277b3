/**
 * `npm run generate`: writes the files generated from the source (the Kubernetes CRDs, the
 * install bundle, and the RBAC section of docs/kubernetes.md), so that they are committed and
 * reviewed with the change that altered them.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { CRDS_FILE, crdsYaml } from "../src/api/crds.js";
import { BUNDLE_FILE, bundleYaml, RBAC_DOCS_FILE, withRbacDocs } from "../src/operator/bundle.js";

/** This file runs as dist/scripts/generate.js: the repository is two levels up. */
const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

function write(file: string, text: string): void {
  const target = join(root, file);
  let before: string | undefined;
  try {
    before = readFileSync(target, "utf8");
  } catch {
    before = undefined;
  }
  if (before === text) {
    console.log(`${file} is current`);
    return;
  }
  writeFileSync(target, text);
  console.log(`wrote ${file}`);
}

write(CRDS_FILE, crdsYaml());
write(BUNDLE_FILE, bundleYaml());
write(RBAC_DOCS_FILE, withRbacDocs(readFileSync(join(root, RBAC_DOCS_FILE), "utf8")));
