/**
 * Typed errors of the encoding layer.
 *
 * @since 0.1.0
 */
import { Data } from "effect"

/**
 * A frame that cannot be decoded: truncated, corrupted, forged or out of bounds. `offset` is the
 * byte offset in the encoded stream where the bad structure starts (the stream header, a chunk
 * header or a chunk payload), so a receiver can log exactly where a transfer went wrong.
 *
 * @since 0.1.0
 */
export class FrameError extends Data.TaggedError("FrameError")<{
  readonly offset: number
  readonly reason: string
}> {
  override get message(): string {
    return `bad frame at byte ${this.offset}: ${this.reason}`
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
