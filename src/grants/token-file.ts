/**
 * Reading a token file (what `skupper token issue` writes): exactly one AccessToken, validated.
 * Whatever the text, the result is a token or a ValidationError / InvalidInputError whose
 * message says what is wrong and where; never another kind of exception.
 */
import { parseDocuments, type AccessToken, type Resource } from "../api/index.js";
import { InvalidInputError, ValidationError } from "../common/errors.js";

/** Token files are a few KiB; anything far larger is not one. */
export const MAX_TOKEN_FILE_BYTES = 1024 * 1024;

/** The resources of a token file, or a ValidationError with every problem, hostile YAML included. */
export function parseTokenDocuments(text: string, source: string): Resource[] {
  let parsed: ReturnType<typeof parseDocuments>;
  try {
    parsed = parseDocuments(text, source);
  } catch (err) {
    // The YAML library throws, rather than reports, an alias to an anchor that is not set, an
    // alias count that "indicates a resource exhaustion attack", and nesting deeper than the stack.
    if (err instanceof ReferenceError || err instanceof RangeError) throw new ValidationError([`${source}: not valid YAML: ${err.message}`]);
    throw err;
  }
  if (parsed.problems.length > 0) throw new ValidationError(parsed.problems);
  return parsed.resources;
}

export function parseAccessTokenFile(text: string, source: string): AccessToken {
  if (Buffer.byteLength(text) > MAX_TOKEN_FILE_BYTES) {
    throw new InvalidInputError(`${source}: a token file is a few KiB; this one is over ${MAX_TOKEN_FILE_BYTES} bytes, so it is not a token file`);
  }
  const resources = parseTokenDocuments(text, source);
  const tokens = resources.filter((r): r is AccessToken => r.kind === "AccessToken");
  if (tokens.length !== 1 || resources.length !== 1) {
    throw new InvalidInputError(`${source}: a token file must hold exactly one AccessToken (found ${resources.map((r) => r.kind).join(", ") || "nothing"})`);
  }
  return tokens[0] as AccessToken;
}
