/**
 * Turning YAML/JSON text into validated resources and back. Every problem names the source
 * (file or "-"), the document, the resource and the field.
 */
import YAML from "yaml";
import type { z } from "zod";
import { ValidationError } from "../common/errors.js";
import { KINDS, SCHEMAS, type Kind } from "./schemas.js";
import type { Resource, ResourceByKind } from "./types.js";

/** A document that parsed as YAML but is not a resource we accept, and why. */
export interface RejectedDocument {
  /** Its position in the text, from 1. */
  index: number;
  /** Its kind and name, when it gives them (a name that is not a string is not one). */
  kind?: string;
  name?: string;
  /** What is wrong, each naming the source, the document and the resource, as in `problems`. */
  problems: string[];
}

export interface ParseResult {
  resources: Resource[];
  /** Every problem, each naming the source: the text's own (`fileProblems`), then each rejected document's. */
  problems: string[];
  /**
   * Problems of the text as a whole: too large, or not YAML (a syntax error, a duplicate key, an
   * alias bomb in any document). A caller that applies resources applies none while there are any.
   */
  fileProblems: string[];
  /** Documents that are YAML but not a valid resource (wrong fields, an unknown kind), in order. */
  rejected: RejectedDocument[];
}

/** The most one resource (one YAML document) may take, as a Kubernetes Secret or ConfigMap. */
export const MAX_RESOURCE_BYTES = 1024 * 1024;
/** The most one file (or standard input) may hold, as the Kubernetes API server's request limit. */
export const MAX_FILE_BYTES = 3 * 1024 * 1024;

/** Aliases one document may expand: far above what a hand-written resource uses, far below a bomb. */
const MAX_ALIAS_COUNT = 100;

/** A line holding only a document marker (`---` or `...`), which always ends a document in YAML 1.2. */
const DOCUMENT_MARKER = /^(?:---|\.\.\.)(?:[ \t]|$)/m;

function mib(bytes: number): string {
  return `${Number((bytes / (1024 * 1024)).toFixed(1))} MiB`;
}

/**
 * Size problems, found before any parsing: the whole text, then each document (split at its
 * markers, which may only over-estimate a document, never under-estimate it).
 */
function sizeProblems(text: string, source: string): string[] {
  const total = Buffer.byteLength(text);
  if (total > MAX_FILE_BYTES) return [`${source}: is ${mib(total)}; a file may hold at most ${mib(MAX_FILE_BYTES)}`];
  if (total <= MAX_RESOURCE_BYTES) return [];
  const parts = text.split(DOCUMENT_MARKER);
  const problems: string[] = [];
  parts.forEach((part, index) => {
    const bytes = Buffer.byteLength(part);
    if (bytes > MAX_RESOURCE_BYTES) {
      const where = parts.length > 1 ? `${source} (near document ${index + 1})` : source;
      problems.push(`${where}: a resource is ${mib(bytes)}; a resource may be at most ${mib(MAX_RESOURCE_BYTES)}`);
    }
  });
  return problems;
}

/**
 * Parses one or more YAML (or JSON) documents. Invalid documents are reported, valid ones returned.
 * Never throws: whatever the text (too large, an alias bomb, deeply nested, binary), the result
 * is resources and problems, each problem naming `source`.
 */
export function parseDocuments(text: string, source: string): ParseResult {
  const resources: Resource[] = [];
  const fileProblems: string[] = sizeProblems(text, source);
  const rejected: RejectedDocument[] = [];
  const result = (): ParseResult => ({ resources, problems: [...fileProblems, ...rejected.flatMap((r) => r.problems)], fileProblems, rejected });
  if (fileProblems.length > 0) return result();
  let docs: YAML.Document.Parsed[];
  const lines = new YAML.LineCounter();
  try {
    // Duplicate keys are checked below in linear time; the library's own check is quadratic.
    docs = YAML.parseAllDocuments(text, { prettyErrors: true, uniqueKeys: false, lineCounter: lines, logLevel: "error" }) as YAML.Document.Parsed[];
  } catch (err) {
    fileProblems.push(`${source}: not valid YAML: ${firstLine(err)}`);
    return result();
  }
  if (!Array.isArray(docs)) docs = [docs];
  const multiple = docs.length > 1;
  docs.forEach((doc, index) => {
    const where = multiple ? `${source} (document ${index + 1})` : source;
    try {
      if (doc.errors.length > 0) {
        fileProblems.push(`${where}: not valid YAML: ${firstLine(doc.errors[0])}`);
        return;
      }
      const duplicate = duplicateKey(doc, lines);
      if (duplicate) {
        fileProblems.push(`${where}: not valid YAML: ${duplicate}`);
        return;
      }
      const value: unknown = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
      if (value === null || value === undefined) return; // empty document between separators
      const validated = validateResource(value, where);
      if (validated.ok) resources.push(validated.resource);
      else rejected.push({ index: index + 1, ...identify(value), problems: validated.problems });
    } catch (err) {
      // An alias bomb ("Excessive alias count"), nesting deep enough to exhaust the stack, …
      fileProblems.push(`${where}: not valid YAML: ${firstLine(err)}`);
    }
  });
  return result();
}

/** The kind and name a document gives, if they are strings (for reporting it; never trusted). */
function identify(value: unknown): { kind?: string; name?: string } {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return {};
  const record = value as Record<string, unknown>;
  const metadata = record.metadata;
  const name = typeof metadata === "object" && metadata !== null ? (metadata as Record<string, unknown>).name : undefined;
  return {
    ...(typeof record.kind === "string" ? { kind: shorten(record.kind) } : {}),
    ...(typeof name === "string" ? { name: shorten(name) } : {}),
  };
}

function shorten(text: string): string {
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}

function firstLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split("\n")[0] ?? message;
}

/** The first key that appears twice in one mapping, described with its line, if any. */
function duplicateKey(doc: YAML.Document.Parsed, lines: YAML.LineCounter): string | undefined {
  let found: string | undefined;
  YAML.visit(doc, {
    Map(_key, map) {
      const seen = new Set<string>();
      for (const pair of map.items) {
        const key = YAML.isScalar(pair.key) ? pair.key.value : undefined;
        if (key === undefined || (typeof key === "object" && key !== null)) continue;
        const text = String(key);
        if (seen.has(text)) {
          const offset = YAML.isScalar(pair.key) ? pair.key.range?.[0] : undefined;
          const line = offset !== undefined ? ` (line ${lines.linePos(offset).line})` : "";
          found = `key "${text.length > 60 ? `${text.slice(0, 60)}…` : text}" appears twice in one mapping${line}`;
          return YAML.visit.BREAK;
        }
        seen.add(text);
      }
      return undefined;
    },
  });
  return found;
}

/** Like parseDocuments, but any problem is an error. */
export function parseDocumentsStrict(text: string, source: string): Resource[] {
  const { resources, problems } = parseDocuments(text, source);
  if (problems.length > 0) throw new ValidationError(problems);
  return resources;
}

export type ValidateResult = { ok: true; resource: Resource } | { ok: false; problems: string[] };

export function validateResource(value: unknown, where: string): ValidateResult {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { ok: false, problems: [`${where}: expected a resource (a mapping with apiVersion, kind, metadata), got ${describe(value)}`] };
  }
  const record = value as Record<string, unknown>;
  const kind = record.kind;
  if (typeof kind !== "string") return { ok: false, problems: [`${where}: "kind" is required`] };
  const { name } = identify(value);
  if (!isKind(kind)) {
    const label = name !== undefined ? `${shorten(kind)} "${name}": ` : "";
    const apiVersion = typeof record.apiVersion === "string" ? ` (${shorten(record.apiVersion)})` : "";
    return { ok: false, problems: [`${where}: ${label}kind "${shorten(kind)}"${apiVersion} is not supported (supported kinds: ${KINDS.join(", ")})`] };
  }
  const metadata = record.metadata as Record<string, unknown> | undefined;
  const label = typeof metadata?.name === "string" ? `${kind} "${metadata.name}"` : kind;
  const parsed = (SCHEMAS[kind] as z.ZodType).safeParse(value, { reportInput: true });
  if (parsed.success) return { ok: true, resource: parsed.data as Resource };
  // A value of the wrong type gets one problem: zod still runs length checks on it (e.g. a list
  // given for a string), which would add a second, misleading one.
  const pathOf = (issue: z.core.$ZodIssue) => issue.path.map(String).join(".");
  const wrongType = new Set(parsed.error.issues.filter((i) => i.code === "invalid_type").map(pathOf));
  const issues = parsed.error.issues.filter((i) => i.code === "invalid_type" || !wrongType.has(pathOf(i)));
  return { ok: false, problems: issues.map((issue) => `${where}: ${label}: ${formatIssue(issue)}`) };
}

function formatIssue(issue: z.core.$ZodIssue): string {
  const field = issue.path.map(String).join(".");
  if (issue.code === "unrecognized_keys") {
    const keys = (issue as z.core.$ZodIssueUnrecognizedKeys).keys;
    const where = field ? `${field}: ` : "";
    return `${where}unknown field${keys.length > 1 ? "s" : ""} ${keys.map((k) => `"${k}"`).join(", ")}`;
  }
  if (issue.code === "invalid_type" && (issue as { input?: unknown }).input === undefined) {
    return `${field || "value"}: is required`;
  }
  return `${field || "value"}: ${issue.message}`;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  return typeof value === "string" ? "a string" : typeof value;
}

export function isKind(kind: string): kind is Kind {
  return (KINDS as string[]).includes(kind);
}

export function isKindOf<K extends Kind>(resource: Resource, kind: K): resource is ResourceByKind[K] {
  return resource.kind === kind;
}

/** YAML for a single resource; empty values are dropped, as the original CLI does for -o yaml. */
export function toYaml(value: unknown, options: { sortKeys?: boolean } = {}): string {
  return YAML.stringify(prune(value), { sortMapEntries: options.sortKeys ?? false, lineWidth: 0 });
}

/** Multi-document YAML, each document preceded by `---`. */
export function toYamlDocuments(values: unknown[]): string {
  return values.map((v) => `---\n${toYaml(v)}`).join("");
}

export function toJson(value: unknown): string {
  return JSON.stringify(prune(value), null, 2) + "\n";
}

/**
 * The desired state of a resource as a client writes it: without status and without the metadata
 * a store assigns (namespace, generation, resourceVersion, uid, timestamps).
 */
export function desiredState<R extends { metadata: object }>(resource: R): R {
  const {
    namespace: _namespace,
    generation: _generation,
    resourceVersion: _resourceVersion,
    uid: _uid,
    creationTimestamp: _creationTimestamp,
    deletionTimestamp: _deletionTimestamp,
    ...metadata
  } = resource.metadata as Record<string, unknown>;
  const { status: _status, ...rest } = resource as R & { status?: unknown };
  return { ...rest, metadata } as unknown as R;
}

/** Removes undefined, null, empty strings, empty arrays and empty objects, recursively. */
export function prune(value: unknown): unknown {
  if (Array.isArray(value)) {
    const items = value.map(prune).filter((v) => v !== undefined);
    return items.length > 0 ? items : undefined;
  }
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [key, child] of Object.entries(value)) {
      const pruned = prune(child);
      if (pruned !== undefined) out[key] = pruned;
    }
    return Object.keys(out).length > 0 ? out : undefined;
  }
  if (value === null || value === undefined || value === "") return undefined;
  return value;
}
