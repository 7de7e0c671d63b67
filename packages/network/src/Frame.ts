/**
 * The framed message protocol used between nodes (cluster and DWCP messages), on the
 * `@novacron/wire` format with 2 bytes of fields (the flags).
 *
 * Header, 14 bytes, big-endian:
 * `magic "NC" (2) | version (1) | type (1) | payload length (4) | flags (2) | CRC-32 (4)`.
 * The CRC-32 covers the first 10 header bytes and the payload, so a damaged type or length is caught
 * too. Oversized lengths are refused as soon as the header arrives, before any payload is buffered.
 *
 * @since 0.1.0
 */
import { Wire, type WireError } from "@novacron/wire"

/**
 * `"NC"`.
 *
 * @since 0.1.0
 */
export const MAGIC = 0x4e43

/**
 * 2 since the wire module (the flags moved behind the length).
 *
 * @since 0.1.0
 */
export const VERSION = 2

/**
 * @since 0.1.0
 */
export const HEADER_BYTES = 14

/**
 * Where the payload length (u32) is in the header.
 *
 * @since 0.2.0
 */
export const LENGTH_OFFSET = 4

/**
 * The wire format of cluster messages.
 *
 * @since 0.2.0
 * @category constants
 */
export const format: Wire.Format = Wire.format({ protocol: "network", magic: MAGIC, version: VERSION, fieldsSize: 2 })

/**
 * Control frame types (below 16) and the first application type.
 *
 * @since 0.1.0
 */
export const FrameType = {
  /**
   * Client → server, first frame: `{ node_id, token?, traceparent? }` (JSON); `traceparent` is the
   * dialer's span (`@novacron/wire`'s `TraceContext`), so the accept joins its trace.
   */
  Hello: 1,
  /** Server → client: `{ node_id }`; the connection is established. */
  Welcome: 2,
  /** Either side, last frame: `{ reason, message }`; the sender closes. */
  Refused: 3,
  Ping: 4,
  Pong: 5,
  /** Orderly close (e.g. drain on shutdown): `{ reason }`. */
  Goodbye: 6,
  /** Application frames use types from here up to 255. */
  Application: 16,
} as const

/**
 * A decoded frame.
 *
 * @since 0.1.0
 */
export interface Frame {
  readonly type: number
  readonly flags: number
  readonly payload: Uint8Array
}

/**
 * Encodes one frame. Throws a `RangeError` for a type/flags out of range or a payload over `maxFrameSize`.
 *
 * @since 0.1.0
 */
export const encode = (frame: Frame, maxFrameSize = 2 ** 32 - 1): Buffer => {
  const { type, flags, payload } = frame
  if (!Number.isInteger(flags) || flags < 0 || flags > 0xffff) throw new RangeError(`frame flags ${flags} out of range`)
  if (payload.byteLength > maxFrameSize) {
    throw new RangeError(`payload of ${payload.byteLength} bytes exceeds max_frame_size ${maxFrameSize}`)
  }
  return Wire.encode(format, type, payload, (h, at) => h.writeUInt16BE(flags, at))
}

/**
 * What one `push` produced: the complete frames, then the error that stopped decoding, if any.
 *
 * @since 0.1.0
 */
export interface DecodeResult {
  readonly frames: ReadonlyArray<Frame>
  readonly error?: WireError.FrameError | undefined
}

/**
 * A streaming decoder: feed it chunks as they arrive, in any sizes. After an error it stays failed.
 *
 * @since 0.1.0
 */
export interface Decoder {
  push(chunk: Uint8Array): DecodeResult
  /** The stream ended: an error if a frame was cut off. */
  end(): WireError.FrameError | undefined
  /** Bytes received so far. */
  readonly offset: number
  /** Bytes held waiting for the rest of a frame. */
  readonly buffered: number
  /**
   * The largest payload accepted from the next header on. Lowered before a peer is authenticated
   * (a Hello is small), raised once it is.
   */
  maxFrameSize: number
}

/**
 * Creates a decoder refusing payloads over `maxFrameSize` bytes.
 *
 * @since 0.1.0
 */
export const decoder = (maxFrameSize: number): Decoder => {
  // Copies: a frame never aliases (or pins) a socket's read, and a small payload does not keep a
  // 64 KiB read alive while a handler holds it.
  const wire = Wire.decoder(format, { maxPayload: maxFrameSize, copy: true, limitName: "max_frame_size" })
  return {
    get offset() {
      return wire.offset
    },
    get buffered() {
      return wire.buffered
    },
    get maxFrameSize() {
      return wire.maxPayload
    },
    set maxFrameSize(n: number) {
      wire.maxPayload = n
    },
    push(chunk) {
      const { frames, error } = wire.push(chunk)
      return {
        frames: frames.map((f) => ({ type: f.type, flags: f.fields.readUInt16BE(0), payload: f.payload })),
        error,
      }
    },
    end: () => wire.end(),
  }
}

/**
 * Encodes a control payload (JSON).
 *
 * @since 0.1.0
 */
export const json = (type: number, value: unknown): Frame => ({
  type,
  flags: 0,
  payload: Buffer.from(JSON.stringify(value), "utf8"),
})

/**
 * Decodes a JSON control payload; `undefined` when it is not a JSON object.
 *
 * @since 0.1.0
 */
export const parseJson = (payload: Uint8Array): Record<string, unknown> | undefined => {
  try {
    const v: unknown = JSON.parse(Buffer.from(payload).toString("utf8"))
    return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}
