/**
 * Typed errors of the encoding layer.
 *
 * @since 0.1.0
 */
import { WireError } from "@novacron/wire"
import { Data } from "effect"

/**
 * A frame that cannot be decoded: truncated, corrupted, forged or out of bounds. The wire module's
 * one `FrameError`: `offset` is the byte in the encoded stream of the offending field (a header
 * field, a chunk payload, the end frame's digest), so a receiver can log exactly where a transfer
 * went wrong; `reason` says what kind of fault, `detail` what exactly.
 *
 * @since 0.1.0
 */
export const FrameError = WireError.FrameError

/**
 * @since 0.1.0
 */
export type FrameError = WireError.FrameError

/**
 * A well-formed stream that asks for more than this receiver allows: a chunk size or dedup window
 * over `maxChunkSize` / `maxDedupWindow` (stream header, `chunk` undefined), or output that would
 * exceed the transfer's `maxSize` or `maxRatio` budget (at chunk `chunk`). Raised before the
 * offending chunk is decompressed. `value` is what the stream declares or would reach and `max`
 * the limit, both in bytes; `offset` is the byte of the field that declares it.
 *
 * @since 0.2.0
 * @category errors
 */
export class LimitError extends Data.TaggedError("LimitError")<{
  readonly limit: "maxChunkSize" | "maxDedupWindow" | "maxSize" | "maxRatio"
  readonly value: number
  readonly max: number
  readonly offset: number
  readonly chunk: number | undefined
  readonly reason: string
}> {
  override get message(): string {
    const where = this.chunk === undefined ? "stream header" : `chunk ${this.chunk}`
    return `decode limit ${this.limit} exceeded at byte ${this.offset} (${where}): ${this.reason}`
  }
}

/**
 * Encoding failed: bad options, or a worker thread died or reported an error.
 *
 * @since 0.1.0
 */
export class EncodeError extends Data.TaggedError("EncodeError")<{
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return `encode failed: ${this.reason}`
  }
}
