/** PEM text compared by content, not by layout. */

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

/** The blocks of a PEM text, each as `<label>:<base64 body without whitespace>`. */
function blocks(pem: string): string[] {
  return [...pem.matchAll(BLOCK)].map((m) => `${m[1]}:${(m[2] ?? "").replace(/\s+/g, "")}`);
}

/**
 * Whether two PEM texts hold the same blocks (labels and bodies, in order), whatever their line
 * breaks, indentation or text around the blocks. Texts without a PEM block are never the same.
 */
export function samePem(a: string, b: string): boolean {
  const left = blocks(a);
  const right = blocks(b);
  return left.length > 0 && left.length === right.length && left.every((block, i) => block === right[i]);
}
