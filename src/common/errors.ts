/**
 * Typed errors with stable codes. Callers branch on `code`, never on message text;
 * the CLI turns any SkupperError into its message and `exitCode`.
 */

export type ExitCode = 1 | 2;

export class SkupperError extends Error {
  readonly code: string;
  readonly exitCode: ExitCode;

  constructor(code: string, message: string, exitCode: ExitCode = 1, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.exitCode = exitCode;
  }
}

/** The user asked for something malformed: exit code 2. */
export class InvalidInputError extends SkupperError {
  constructor(message: string, code = "ERR_INVALID_INPUT") {
    super(code, message, 2);
  }
}

/** A resource file or document failed validation. `problems` name the file and field. */
export class ValidationError extends SkupperError {
  readonly problems: string[];
  constructor(problems: string[]) {
    super("ERR_VALIDATION", problems.join("\n"), 2);
    this.problems = problems;
  }
}

export class NotFoundError extends SkupperError {
  constructor(message: string) {
    super("ERR_NOT_FOUND", message, 1);
  }
}

export class AlreadyExistsError extends SkupperError {
  constructor(message: string) {
    super("ERR_ALREADY_EXISTS", message, 1);
  }
}

/** A write based on a version of a resource that is no longer the stored one. */
export class ConflictError extends SkupperError {
  constructor(message: string) {
    super("ERR_CONFLICT", message, 1);
  }
}

export class TimeoutError extends SkupperError {
  constructor(message: string) {
    super("ERR_TIMEOUT", message, 1);
  }
}

/** Anything that needs the site process while it is not running. */
export class SiteNotRunningError extends SkupperError {
  constructor(message: string) {
    super("ERR_SITE_NOT_RUNNING", message, 1);
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
