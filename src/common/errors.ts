/**
 * Typed errors with stable codes. Callers branch on `code`, never on message text;
 * the CLI turns any SkupperError into its message and `exitCode`.
 */

export type ExitCode = 1 | 2;

/**
 * The codes of validation failures, which exit 2 as in the original CLI: the command cannot be
 * done as asked, given its input and the resources of the namespace (invalid input, a resource
 * that is missing or already there, no site or none running (the original's "no active site"),
 * link access not enabled, an edge site, a site not ready for links, an incoming link deleted
 * here, a token of this very site, Skupper not installed). Every other code is a failure while
 * doing it (a site process that stops meanwhile, a timeout, a refusal, I/O, the cluster's
 * API): exit 1. The one place that decides; a caller
 * passes an exit code only to carry one over (an answer of the site process).
 */
const VALIDATION_CODES: ReadonlySet<string> = new Set([
  "ERR_INVALID_INPUT",
  "ERR_VALIDATION",
  "ERR_NOT_FOUND",
  "ERR_ALREADY_EXISTS",
  "ERR_NO_SITE",
  "ERR_SITE_NOT_RUNNING",
  "ERR_LINK_ACCESS",
  "ERR_EDGE",
  "ERR_SITE_NOT_READY",
  "ERR_INCOMING_LINK",
  "ERR_LINK_TO_SELF",
  "ERR_USER_ISSUER",
  "ERR_PLATFORM",
  "ERR_CRDS_MISSING",
]);

/** The exit code of an error code: 2 for a validation failure, 1 for anything else. */
export function exitCodeOf(code: string): ExitCode {
  return VALIDATION_CODES.has(code) ? 2 : 1;
}

export class SkupperError extends Error {
  readonly code: string;
  readonly exitCode: ExitCode;

  constructor(code: string, message: string, exitCode: ExitCode = exitCodeOf(code), options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.exitCode = exitCode;
  }
}

/** The user asked for something malformed: exit code 2 (whatever its code). */
export class InvalidInputError extends SkupperError {
  constructor(message: string, code = "ERR_INVALID_INPUT") {
    super(code, message, 2);
  }
}

/** A resource file or document failed validation. `problems` name the file and field. */
export class ValidationError extends SkupperError {
  readonly problems: string[];
  constructor(problems: string[]) {
    super("ERR_VALIDATION", problems.join("\n"));
    this.problems = problems;
  }
}

/** A resource the command needs does not exist: a validation failure (exit code 2). */
export class NotFoundError extends SkupperError {
  constructor(message: string) {
    super("ERR_NOT_FOUND", message);
  }
}

/** A resource the command would create exists already: a validation failure (exit code 2). */
export class AlreadyExistsError extends SkupperError {
  constructor(message: string) {
    super("ERR_ALREADY_EXISTS", message);
  }
}

/** A write based on a version of a resource that is no longer the stored one. */
export class ConflictError extends SkupperError {
  constructor(message: string) {
    super("ERR_CONFLICT", message);
  }
}

export class TimeoutError extends SkupperError {
  constructor(message: string) {
    super("ERR_TIMEOUT", message);
  }
}

/** Anything that needs the site process while it is not running: as the original's "no active site", exit code 2. */
export class SiteNotRunningError extends SkupperError {
  constructor(message: string) {
    super("ERR_SITE_NOT_RUNNING", message);
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** The errno-style code of a Node.js system error, if any. */
export function systemErrorCode(err: unknown): string | undefined {
  if (err && typeof err === "object" && "code" in err && typeof (err as { code: unknown }).code === "string") {
    return (err as { code: string }).code;
  }
  return undefined;
}
