/**
 * The local platform's CredentialStore: one directory of PEM files (`ca.crt`, `tls.crt`,
 * `tls.key`, mode 0600, directory 0700) per name. CAs (names ending in `-ca`) live in
 * `runtime/issuers/<name>/`, other certificates in `runtime/certs/<name>/`, as they always have
 * (docs/storage.md).
 */
import { promises as fs } from "node:fs";
import { resourceNameProblem } from "../../api/index.js";
import { loadCredentials, saveCredentials, type Credentials } from "../../certs/index.js";
import { InvalidInputError } from "../../common/errors.js";
import type { CredentialStore } from "../types.js";
import type { SitePaths } from "./paths.js";

export class LocalCredentialStore implements CredentialStore {
  constructor(readonly paths: SitePaths) {}

  async load(name: string): Promise<Credentials | undefined> {
    return loadCredentials(this.directory(name));
  }

  async save(name: string, credentials: Credentials): Promise<void> {
    await saveCredentials(this.directory(name), credentials);
  }

  async remove(name: string): Promise<void> {
    await fs.rm(this.directory(name), { recursive: true, force: true });
  }

  /** The directory of `name`, which is checked first so that no name reaches outside its directory. */
  directory(name: string): string {
    const problem = resourceNameProblem(name);
    if (problem) throw new InvalidInputError(`credentials name ${JSON.stringify(String(name).slice(0, 80))} is not valid: ${problem}`);
    return name.endsWith("-ca") ? this.paths.issuer(name) : this.paths.cert(name);
  }
}
