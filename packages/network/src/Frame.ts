/**
 * The framed message protocol used between nodes (cluster and DWCP messages).
 *
 * Header, 14 bytes, big-endian:
 * `magic "NC" (2) | version (1) | type (1) | flags (2) | payload length (4) | CRC-32 (4)`.
 * The CRC-32 covers the first 10 header bytes and the payload, so a damaged type or length is caught
 * too. Oversized lengths are refused as soon as the header arrives, before any payload is buffered.
 *
 * @since 0.1.0
 */
import { crc32 } from "node:zlib"
import { FrameError } from "./NetworkError.js"

/**
 * `"NC"`.
 *
 * @since 0.1.0
 */
export const MAGIC = 0x4e43

/**
 * @since 0.1.0
 */
export const VERSION = 1

/**
 * @since 0.1.0
 */
export const HEADER_BYTES = 14

/**
 * Control frame types (below 16) and the first application type.
 *
 * @since 0.1.0
 */
export const FrameType = {
  /** Client → server, first frame: `{ node_id, token? }` (JSON). */
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
  if (!Number.isInteger(type) || type < 0 || type > 255) throw new RangeError(`frame type ${type} out of range`)
  if (!Number.isInteger(flags) || flags < 0 || flags > 0xffff) throw new RangeError(`frame flags ${flags} out of range`)
  if (payload.byteLength > maxFrameSize) {
    throw new RangeError(`payload of ${payload.byteLength} bytes exceeds max_frame_size ${maxFrameSize}`)
  }
  const out = Buffer.allocUnsafe(HEADER_BYTES + payload.byteLength)
  out.writeUInt16BE(MAGIC, 0)
  out.writeUInt8(VERSION, 2)
  out.writeUInt8(type, 3)
  out.writeUInt16BE(flags, 4)
  out.writeUInt32BE(payload.byteLength, 6)
  out.set(payload, HEADER_BYTES)
  out.writeUInt32BE(crc32(payload, crc32(out.subarray(0, 10))), 10)
  return out
}

/**
 * What one `push` produced: the complete frames, then the error that stopped decoding, if any.
 *
 * @since 0.1.0
 */
export interface DecodeResult {
  readonly frames: ReadonlyArray<Frame>
  readonly error?: FrameError | undefined
}

/**
 * A streaming decoder: feed it chunks as they arrive, in any sizes. After an error it stays failed.
 *
 * @since 0.1.0
 */
export interface Decoder {
  push(chunk: Uint8Array): DecodeResult
  /** The stream ended: an error if a frame was cut off. */
  end(): FrameError | undefined
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
  let limit = maxFrameSize
  let chunks: Array<Buffer> = []
  let buffered = 0
  // Stream offset of the first buffered byte (= start of the frame being decoded).
  let start = 0
  let failed: FrameError | undefined
  // Header of the frame being decoded, once complete.
  let header: { type: number; flags: number; length: number; crc: number; head: Buffer } | undefined

  // Removes n buffered bytes into fresh memory: a frame never aliases (or pins) a socket's read,
  // which the caller may reuse, and a small payload does not keep a 64 KiB read alive.
  const take = (n: number): Buffer => {
    const out = Buffer.allocUnsafe(n)
    let filled = 0
    while (filled < n) {
      const c = chunks[0]!
      const k = Math.min(c.length, n - filled)
      c.copy(out, filled, 0, k)
      filled += k
      if (k === c.length) chunks.shift()
      else chunks[0] = c.subarray(k)
    }
    buffered -= n
    start += n
    return out
  }

  const fail = (error: FrameError) => {
    failed = error
    chunks = []
    buffered = 0
    return error
  }

  return {
    get offset() {
      return start + buffered
    },
    get buffered() {
      return buffered
    },
    get maxFrameSize() {
      return limit
    },
    set maxFrameSize(n: number) {
      limit = n
    },
    push(chunk) {
      if (failed !== undefined) return { frames: [], error: failed }
      if (chunk.byteLength > 0) {
        chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))
        buffered += chunk.byteLength
      }
      const frames: Array<Frame> = []
      for (;;) {
        if (header === undefined) {
          if (buffered < HEADER_BYTES) return { frames }
          const at = start
          const head = take(HEADER_BYTES)
          const magic = head.readUInt16BE(0)
          if (magic !== MAGIC) {
            return {
              frames,
              error: fail(new FrameError({ reason: "BadMagic", offset: at, detail: `0x${magic.toString(16)}` })),
            }
          }
          const version = head.readUInt8(2)
          if (version !== VERSION) {
            const detail = `version ${version}, expected ${VERSION}`
            return { frames, error: fail(new FrameError({ reason: "UnsupportedVersion", offset: at + 2, detail })) }
          }
          const length = head.readUInt32BE(6)
          if (length > limit) {
            const detail = `payload length ${length} exceeds max_frame_size ${limit}`
            return { frames, error: fail(new FrameError({ reason: "Oversized", offset: at + 6, detail })) }
          }
          header = { type: head.readUInt8(3), flags: head.readUInt16BE(4), length, crc: head.readUInt32BE(10), head }
        }
        if (buffered < header.length) return { frames }
        const payload = take(header.length)
        const actual = crc32(payload, crc32(header.head.subarray(0, 10)))
        if (actual !== header.crc) {
          const at = start - header.length - HEADER_BYTES + 10
          const detail = `checksum 0x${actual.toString(16)}, header says 0x${header.crc.toString(16)}`
          header = undefined
          return { frames, error: fail(new FrameError({ reason: "ChecksumMismatch", offset: at, detail })) }
        }
        frames.push({ type: header.type, flags: header.flags, payload })
        header = undefined
      }
    },
    end() {
      if (failed !== undefined) return failed
      if (header === undefined && buffered === 0) return undefined
      const frameStart = header === undefined ? start : start - HEADER_BYTES
      const detail =
        header === undefined
          ? `stream ended inside a frame header (${buffered} of ${HEADER_BYTES} bytes)`
          : `stream ended inside a payload (${buffered} of ${header.length} bytes)`
      return fail(new FrameError({ reason: "Truncated", offset: frameStart, detail }))
    },
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
