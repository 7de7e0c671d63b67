/**
 * The one wire format of NovaCron's framed protocols (cluster messages, AMST, HDE). Every frame is a
 * header and `length` payload bytes; all integers big-endian (network order):
 *
 * | bytes | field |
 * | --- | --- |
 * | 0..2 | magic, u16 (one per protocol) |
 * | 2 | version, u8 (one per protocol; a peer of another version is refused: `BadVersion`) |
 * | 3 | frame type, u8 |
 * | 4..8 | payload length, u32 |
 * | 8..8+F | the protocol's own fixed fields (`fieldsSize` = F bytes, may be 0) |
 * | 8+F..12+F | CRC-32 of bytes 0..8+F and the payload |
 *
 * The checksum covers the header too, so a damaged type, length or field is caught. A length over
 * the receiver's bound is refused as soon as the header is in, before any payload is buffered.
 *
 * @since 0.1.0
 */
import { Either } from "effect"
import * as internal from "./internal/codec.js"
import type { FrameError } from "./WireError.js"

/**
 * A protocol's framing: its magic, version, the size of its fixed header fields, and (optionally)
 * which frame types exist, so an unknown one is refused at the header (`BadType`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Format {
  /** Named in errors. */
  readonly protocol: string
  /** u16. */
  readonly magic: number
  /** u8. */
  readonly version: number
  /** Bytes of protocol fields between the length and the checksum. */
  readonly fieldsSize: number
  readonly isType?: ((type: number) => boolean) | undefined
}

/**
 * Checks and returns a format (throws a `RangeError` for a magic, version or size out of range:
 * formats are constants, so this is a programming error).
 *
 * @example
 * ```ts
 * import { Wire } from "@novacron/wire"
 *
 * const Demo = Wire.format({ protocol: "demo", magic: 0x4445, version: 1, fieldsSize: 2 })
 * console.log(Wire.headerSize(Demo)) // 14
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const format = (format: Format): Format => internal.validateFormat(format)

/**
 * Header bytes of a format: 12 plus its fields.
 *
 * @since 0.1.0
 * @category constants
 */
export const headerSize: (format: Format) => number = internal.headerSize

/**
 * Where a protocol's fields start in the header.
 *
 * @since 0.1.0
 * @category constants
 */
export const FIELDS_OFFSET = internal.PREFIX

/**
 * A decoded frame. `fields` and (unless the decoder copies) `payload` may be views of the bytes
 * pushed in: `owned` tells whether the payload is the decoder's own copy, safe to keep or modify.
 *
 * @since 0.1.0
 * @category models
 */
export interface Frame {
  readonly type: number
  /** The protocol's fixed fields (`fieldsSize` bytes). */
  readonly fields: Buffer
  readonly payload: Buffer
  /** Stream offset of the frame's first byte. */
  readonly offset: number
  readonly owned: boolean
}

/**
 * A frame header once received and checked, before its payload is buffered.
 *
 * @since 0.1.0
 * @category models
 */
export interface Header {
  readonly type: number
  readonly fields: Buffer
  readonly length: number
  readonly offset: number
}

/**
 * Encodes a header for `payload`, for a vectored write of `[header, payload]` (the payload is not
 * copied). `writeFields` writes the protocol's fields into the header at `at`; unwritten bytes are
 * zero. Throws a `RangeError` for a type outside 0..255 (a programming error).
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeHeader: (
  format: Format,
  type: number,
  payload: Uint8Array,
  writeFields?: (header: Buffer, at: number) => void,
) => Buffer = internal.encodeHeader

/**
 * Encodes one frame into one buffer (copies the payload once).
 *
 * @example
 * ```ts
 * import { Wire } from "@novacron/wire"
 *
 * const Demo = Wire.format({ protocol: "demo", magic: 0x4445, version: 1, fieldsSize: 0 })
 * const bytes = Wire.encode(Demo, 7, Buffer.from("hi"))
 * console.log(bytes.length) // 14
 * ```
 *
 * @since 0.1.0
 * @category encoding
 */
export const encode: (
  format: Format,
  type: number,
  payload: Uint8Array,
  writeFields?: (header: Buffer, at: number) => void,
) => Buffer = internal.encode

/**
 * @since 0.1.0
 * @category decoding
 */
export interface DecoderOptions {
  /** Largest payload accepted from the next header on (a decoder's `maxPayload` may be raised later). */
  readonly maxPayload: number
  /**
   * Copy every frame out of the pushed chunks. Off (default), a frame within one chunk is a view of
   * it: no copy on the fast path, but the chunk must not be reused and a small frame keeps it alive.
   */
  readonly copy?: boolean | undefined
  /** Checks a header before its payload is buffered; a `FrameError` returned stops the decoder. */
  readonly check?: ((header: Header) => FrameError | undefined) | undefined
  /** How the bound is named in a `TooLarge` error (the setting an operator would change); default "the limit". */
  readonly limitName?: string | undefined
}

/**
 * What one `push` produced: the complete frames, then the error that stopped decoding, if any.
 *
 * @since 0.1.0
 * @category decoding
 */
export interface DecodeResult {
  readonly frames: ReadonlyArray<Frame>
  readonly error?: FrameError | undefined
}

/**
 * A streaming decoder for one connection: push bytes in any pieces, get whole frames. It holds at
 * most one frame (its length checked against `maxPayload` before buffering) plus unread bytes, and
 * after the first error it stays failed.
 *
 * Either `push(chunk)` (all frames it completes, and the error) or `write(chunk)` then `next()` one
 * frame at a time (throws the `FrameError`), for a protocol whose bound depends on the frame before.
 *
 * @since 0.1.0
 * @category decoding
 */
export interface Decoder {
  push(chunk: Uint8Array): DecodeResult
  write(chunk: Uint8Array): void
  /** The next complete frame, `undefined` for more bytes; throws the `FrameError` that stops the stream. */
  next(): Frame | undefined
  /** The stream ended: a `Truncated` error if it stopped inside a frame. */
  end(): FrameError | undefined
  /** Stops the decoder with a protocol's own error (found in a payload); later calls return it. */
  failWith(error: FrameError): FrameError
  /** Largest payload accepted from the next header on. */
  maxPayload: number
  /** Bytes received so far. */
  readonly offset: number
  /** Stream offset where the next (or partly received) frame starts. */
  readonly position: number
  /** Bytes held waiting to form frames. */
  readonly buffered: number
  readonly error: FrameError | undefined
  readonly format: Format
}

/**
 * Creates a streaming decoder.
 *
 * @example
 * ```ts
 * import { Wire } from "@novacron/wire"
 *
 * const Demo = Wire.format({ protocol: "demo", magic: 0x4445, version: 1, fieldsSize: 0 })
 * const d = Wire.decoder(Demo, { maxPayload: 1024 })
 * const bytes = Wire.encode(Demo, 7, Buffer.from("hi"))
 * const first = d.push(bytes.subarray(0, 5))
 * const rest = d.push(bytes.subarray(5))
 * console.log(first.frames.length, rest.frames[0]?.payload.toString()) // 0 "hi"
 * ```
 *
 * @since 0.1.0
 * @category decoding
 */
export const decoder = (format: Format, options: DecoderOptions): Decoder => new internal.Decoder(format, options)

/**
 * Decodes a whole buffer of frames: every frame, or the first `FrameError` (a cut-off last frame
 * is `Truncated`). Frames are views of `bytes` unless `copy`.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeAll = (
  format: Format,
  bytes: Uint8Array,
  options: DecoderOptions,
): Either.Either<ReadonlyArray<Frame>, FrameError> => {
  const d = decoder(format, options)
  const { frames, error } = d.push(bytes)
  const failure = error ?? d.end()
  return failure === undefined ? Either.right(frames) : Either.left(failure)
}
