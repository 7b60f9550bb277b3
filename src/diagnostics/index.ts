/** `skupper debug dump`: collecting a site's diagnostics, redacting them, and archiving them (docs/troubleshooting.md). */
export { archive, collectDump, DumpLeakError, needlesOf, type Dump, type DumpFile, type DumpOptions, type DumpSources, type KnownSecret } from "./dump.js";
export {
  certificateSummary,
  findLeaks,
  LAST_APPLIED,
  MIN_SECRET_LENGTH,
  redact,
  redactText,
  REDACTED,
  REDACTED_PRIVATE_KEY,
  REDACTED_SECRET,
  REDACTION_RULES,
  SECRET_KEYS,
  secretNeedles,
  secretsIn,
  TEXT_RULES,
  type Leak,
  type RedactionRule,
} from "./redact.js";
export { describeCertificate, kubernetesSources, localSources, LOG_TAIL_BYTES, OBSERVER_HOST_SETTING, OBSERVER_PORT_SETTING, secretsUnder } from "./sources.js";
export { parentDirectories, tar, TarPathError, type TarEntry } from "./tar.js";
