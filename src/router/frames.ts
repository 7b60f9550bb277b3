/**
 * The link framing (docs/link-protocol.md): a 9-byte header — type (u8), stream id (u32 BE),
 * payload length (u32 BE) — then the payload. Stream 0 carries link control frames.
 */

export const HEADER_SIZE = 9;
export const PROTOCOL_VERSION = 1;

export const FrameType = {
  Hello: 0x01,
  LinkState: 0x02,
  Ping: 0x03,
  Pong: 0x04,
  GoAway: 0x05,
  Traffic: 0x06,
  Open: 0x10,
  Accept: 0x11,
  Data: 0x12,
  Window: 0x13,
  Fin: 0x14,
  Reset: 0x15,
} as const;
export type FrameTypeValue = (typeof FrameType)[keyof typeof FrameType];

/** Largest DATA payload we send; 64 KiB measured best (16 KiB halves throughput). */
export const MAX_DATA_PAYLOAD = 64 * 1024;
/** Largest frame we accept: anything bigger is a protocol error, not a reason to buffer. */
export const MAX_FRAME_PAYLOAD = 4 * 1024 * 1024;
/** Per-stream, per-direction credit a stream starts with. */
export const STREAM_WINDOW = 1024 * 1024;
/**
 * What a stream's window may grow to while its receiver keeps up (see StreamEndpoint.returnCredit):
 * on loopback a single stream needed 4 MiB in flight to match stunnel's throughput.
 */
export const MAX_STREAM_WINDOW = 4 * 1024 * 1024;
/** Credit is returned once this much of the initial window has been consumed (half the current window, as it grows). */
export const WINDOW_UPDATE_THRESHOLD = STREAM_WINDOW / 2;

/** Why a stream was reset; carried in RESET frames and shown in logs. */
export const ResetCode = {
  ProtocolError: 1,
  Unreachable: 2,
  NoConnector: 3,
  BackendFailed: 4,
  LinkLost: 5,
  Cancelled: 6,
  Timeout: 7,
  Removed: 8,
  FlowControl: 9,
} as const;
export type ResetCodeValue = (typeof ResetCode)[keyof typeof ResetCode];

export function encodeHeader(type: number, streamId: number, length: number): Buffer {
  const header = Buffer.allocUnsafe(HEADER_SIZE);
  writeHeader(header, type, streamId, length);
  return header;
}

/** Writes a frame header at the start of `target`. */
export function writeHeader(target: Buffer, type: number, streamId: number, length: number): void {
  target[0] = type;
  target.writeUInt32BE(streamId, 1);
  target.writeUInt32BE(length, 5);
}

export function encodeFrame(type: number, streamId: number, payload?: Buffer): Buffer[] {
  const length = payload ? payload.length : 0;
  const header = encodeHeader(type, streamId, length);
  return payload && length > 0 ? [header, payload] : [header];
}

export interface FrameHandler {
  /** A complete non-DATA frame. */
  onFrame(type: number, streamId: number, payload: Buffer): void;
  /**
   * A piece of a DATA frame's payload. Large frames arrive in several pieces (zero copy: each
   * piece is a view of the received chunk, valid only during the call: copy what is kept).
   */
  onData(streamId: number, piece: Buffer): void;
  onProtocolError(message: string): void;
}

const enum State {
  Header,
  Payload,
  DataPayload,
}

/**
 * Streaming parser: never concatenates leftovers of DATA frames; a header split across chunks is
 * gathered into a 9-byte scratch buffer; control payloads (small) are gathered whole.
 */
export class FrameParser {
  private state = State.Header;
  private readonly header = Buffer.allocUnsafe(HEADER_SIZE);
  private headerFilled = 0;
  private type = 0;
  private streamId = 0;
  private remaining = 0;
  private payloadParts: Buffer[] = [];
  private failed = false;

  constructor(private readonly handler: FrameHandler) {}

  push(chunk: Buffer): void {
    let offset = 0;
    const length = chunk.length;
    while (offset < length && !this.failed) {
      if (this.state === State.Header) {
        if (this.headerFilled === 0 && length - offset >= HEADER_SIZE) {
          this.type = chunk[offset] as number;
          this.streamId = chunk.readUInt32BE(offset + 1);
          this.remaining = chunk.readUInt32BE(offset + 5);
          offset += HEADER_SIZE;
        } else {
          const take = Math.min(HEADER_SIZE - this.headerFilled, length - offset);
          chunk.copy(this.header, this.headerFilled, offset, offset + take);
          this.headerFilled += take;
          offset += take;
          if (this.headerFilled < HEADER_SIZE) return;
          this.headerFilled = 0;
          this.type = this.header[0] as number;
          this.streamId = this.header.readUInt32BE(1);
          this.remaining = this.header.readUInt32BE(5);
        }
        if (this.remaining > MAX_FRAME_PAYLOAD) {
          this.fail(`frame of ${this.remaining} bytes exceeds the limit of ${MAX_FRAME_PAYLOAD}`);
          return;
        }
        if (this.type === FrameType.Data) {
          if (this.remaining === 0) continue;
          this.state = State.DataPayload;
        } else if (this.remaining === 0) {
          this.handler.onFrame(this.type, this.streamId, EMPTY);
          continue;
        } else {
          this.state = State.Payload;
        }
        if (offset === length) return; // the payload starts in the next chunk: no empty piece
      }
      const take = Math.min(this.remaining, length - offset);
      const piece = offset === 0 && take === length ? chunk : chunk.subarray(offset, offset + take);
      offset += take;
      this.remaining -= take;
      if (this.state === State.DataPayload) {
        if (this.remaining === 0) this.state = State.Header;
        this.handler.onData(this.streamId, piece);
      } else {
        // Pieces are views of a read buffer that the next read overwrites: a payload that spans
        // reads is kept as copies.
        this.payloadParts.push(this.remaining === 0 && this.payloadParts.length === 0 ? piece : Buffer.from(piece));
        if (this.remaining === 0) {
          const payload = this.payloadParts.length === 1 ? (this.payloadParts[0] as Buffer) : Buffer.concat(this.payloadParts);
          this.payloadParts = [];
          this.state = State.Header;
          this.handler.onFrame(this.type, this.streamId, payload);
        }
      }
    }
  }

  private fail(message: string): void {
    this.failed = true;
    this.handler.onProtocolError(message);
  }
}

const EMPTY = Buffer.alloc(0);
