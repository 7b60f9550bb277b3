/**
 * A small POSIX tar (ustar) writer, enough for `skupper debug dump`: regular files and
 * directories, with a PAX extended header for a path that does not fit the ustar name and prefix
 * fields. The archive is built in memory (a dump is a few MiB) and gzipped by the caller.
 */

export interface TarEntry {
  /** Path inside the archive, `/`-separated, relative (no leading `/`, no `..`). */
  path: string;
  /** Absent for a directory. */
  data?: Uint8Array;
  /** Default 0o600 for files, 0o700 for directories. */
  mode?: number;
  /** Seconds since the epoch; default now. */
  mtime?: number;
}

const BLOCK = 512;
const NAME_BYTES = 100;
const PREFIX_BYTES = 155;
/** The largest size the 11 octal digits of the size field hold. */
const MAX_SIZE = 0o77777777777;

export class TarPathError extends Error {}

/** The archive: one header (and PAX header when needed) per entry, data padded to 512 bytes, two empty blocks. */
export function tar(entries: readonly TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  const now = Math.floor(Date.now() / 1000);
  for (const entry of entries) {
    checkPath(entry.path);
    const directory = entry.data === undefined;
    const name = directory && !entry.path.endsWith("/") ? `${entry.path}/` : entry.path;
    const data = entry.data ?? new Uint8Array(0);
    if (data.length > MAX_SIZE) throw new TarPathError(`${entry.path} is too large for a tar entry (${data.length} bytes)`);
    const mtime = entry.mtime ?? now;
    const fields = splitName(name);
    if (!fields) {
      // A PAX header carries the full path; the ustar header keeps a shortened one for old readers.
      const pax = paxRecords({ path: name });
      parts.push(header({ name: shorten(`PaxHeaders/${baseName(name)}`), prefix: "", size: pax.length, mode: 0o600, mtime, type: "x" }), pad(pax));
    }
    const { name: n, prefix } = fields ?? { name: shorten(name), prefix: "" };
    parts.push(header({ name: n, prefix, size: data.length, mode: entry.mode ?? (directory ? 0o700 : 0o600), mtime, type: directory ? "5" : "0" }));
    if (data.length > 0) parts.push(pad(Buffer.from(data.buffer, data.byteOffset, data.byteLength)));
  }
  parts.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(parts);
}

/** The directories of `paths` (each parent, once, in order), for archives that list them. */
export function parentDirectories(paths: readonly string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const p of paths) {
    const parts = p.split("/");
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join("/");
      if (!seen.has(dir)) {
        seen.add(dir);
        out.push(dir);
      }
    }
  }
  return out;
}

function checkPath(path: string): void {
  if (path === "" || path.startsWith("/") || path.split("/").some((part) => part === ".." || part === ".") || path.includes("\0")) {
    throw new TarPathError(`not a relative archive path: ${JSON.stringify(path)}`);
  }
}

/** Name and prefix fields for `name`, or undefined when only a PAX header can hold it. */
function splitName(name: string): { name: string; prefix: string } | undefined {
  if (Buffer.byteLength(name) <= NAME_BYTES) return { name, prefix: "" };
  // Split at a `/` so the prefix holds at most 155 bytes and the rest at most 100.
  for (let i = name.indexOf("/"); i > 0; i = name.indexOf("/", i + 1)) {
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (Buffer.byteLength(prefix) > PREFIX_BYTES) return undefined;
    if (rest !== "" && Buffer.byteLength(rest) <= NAME_BYTES) return { name: rest, prefix };
  }
  return undefined;
}

function baseName(name: string): string {
  const trimmed = name.endsWith("/") ? name.slice(0, -1) : name;
  return trimmed.slice(trimmed.lastIndexOf("/") + 1);
}

/** At most 100 bytes of `name`, cut on a character boundary. */
function shorten(name: string): string {
  let out = name;
  while (Buffer.byteLength(out) > NAME_BYTES) out = out.slice(0, -1);
  return out;
}

/** PAX records: `<length> <key>=<value>\n`, where length counts the whole record. */
function paxRecords(records: Record<string, string>): Buffer {
  let text = "";
  for (const [key, value] of Object.entries(records)) {
    const body = ` ${key}=${value}\n`;
    const bodyBytes = Buffer.byteLength(body);
    let length = bodyBytes + String(bodyBytes).length;
    if (String(length).length + bodyBytes !== length) length = bodyBytes + String(length).length;
    text += `${length}${body}`;
  }
  return Buffer.from(text, "utf8");
}

interface HeaderFields {
  name: string;
  prefix: string;
  size: number;
  mode: number;
  mtime: number;
  type: "0" | "5" | "x";
}

function header(fields: HeaderFields): Buffer {
  const block = Buffer.alloc(BLOCK);
  block.write(fields.name, 0, NAME_BYTES, "utf8");
  octal(block, 100, 8, fields.mode & 0o7777);
  octal(block, 108, 8, 0); // uid
  octal(block, 116, 8, 0); // gid
  octal(block, 124, 12, fields.size);
  octal(block, 136, 12, fields.mtime);
  block.fill(0x20, 148, 156); // the checksum counts its own field as spaces
  block.write(fields.type, 156, 1, "ascii");
  block.write("ustar\0", 257, 6, "ascii");
  block.write("00", 263, 2, "ascii");
  block.write(fields.prefix, 345, PREFIX_BYTES, "utf8");
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8, "ascii");
  return block;
}

/** A zero-padded octal number ending in NUL, filling `width` bytes at `offset`. */
function octal(block: Buffer, offset: number, width: number, value: number): void {
  block.write(`${value.toString(8).padStart(width - 1, "0")}\0`, offset, width, "ascii");
}

function pad(data: Buffer): Buffer {
  const rest = data.length % BLOCK;
  return rest === 0 ? data : Buffer.concat([data, Buffer.alloc(BLOCK - rest)]);
}
