/**
 * Turning YAML/JSON text into validated resources and back. Every problem names the source
 * (file or "-"), the document, the resource and the field.
 */
import YAML from "yaml";
import type { z } from "zod";
import { ValidationError } from "../common/errors.js";
import { KINDS, SCHEMAS, type Kind } from "./schemas.js";
import type { Resource, ResourceByKind } from "./types.js";

export interface ParseResult {
  resources: Resource[];
  problems: string[];
}

/** Parses one or more YAML (or JSON) documents. Invalid documents are reported, valid ones returned. */
export function parseDocuments(text: string, source: string): ParseResult {
  const resources: Resource[] = [];
  const problems: string[] = [];
  let docs: YAML.Document.Parsed[];
  try {
    docs = YAML.parseAllDocuments(text, { prettyErrors: true }) as YAML.Document.Parsed[];
  } catch (err) {
    return { resources, problems: [`${source}: not valid YAML: ${(err as Error).message}`] };
  }
  if (!Array.isArray(docs)) docs = [docs];
  const multiple = docs.length > 1;
  docs.forEach((doc, index) => {
    const where = multiple ? `${source} (document ${index + 1})` : source;
    if (doc.errors.length > 0) {
      problems.push(`${where}: not valid YAML: ${doc.errors[0]?.message.split("\n")[0]}`);
      return;
    }
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) return; // empty document between separators
    const result = validateResource(value, where);
    if (result.ok) resources.push(result.resource);
    else problems.push(...result.problems);
  });
  return { resources, problems };
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
  if (!isKind(kind)) {
    return { ok: false, problems: [`${where}: kind "${kind}" is not supported (supported kinds: ${KINDS.join(", ")})`] };
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
