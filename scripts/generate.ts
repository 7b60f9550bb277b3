/**
 * `npm run generate`: writes the files generated from the source (today the Kubernetes CRDs),
 * so that they are committed and reviewed with the change that altered them.
 */
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { CRDS_FILE, crdsYaml } from "../src/api/crds.js";

/** This file runs as dist/scripts/generate.js: the repository is two levels up. */
const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const target = join(root, CRDS_FILE);
writeFileSync(target, crdsYaml());
console.log(`wrote ${CRDS_FILE}`);
