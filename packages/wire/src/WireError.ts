/**
 * The typed failures of every framed protocol: one `FrameError` for bytes that are not a valid frame
 * sequence, one `ListenError` for a listener that could not start.
 *
 * @since 0.1.0
 */
import { Data } from "effect"

/**
 * Why bytes are not a valid frame sequence:
 *
 * - `Truncated`: the stream ended inside a frame (or before a frame the protocol requires).
 * - `TooLarge`: a declared length over the receiver's bound, refused before anything is buffered.
 * - `BadMagic`, `BadVersion`, `BadType`: the header is not this protocol's, not its version, or names
 *   a frame type the protocol does not have.
 * - `BadChecksum`: a CRC-32 or digest differs from the one the sender computed.
 * - `Malformed`: a well-checksummed frame whose fields or payload make no sense (a value out of
 *   range, inconsistent sizes, an undecodable payload, a frame where none may be).
 *
 * @since 0.1.0
 * @category errors
 */
export type FrameErrorReason =
  | "Truncated"
  | "TooLarge"
  | "BadMagic"
  | "BadVersion"
  | "BadType"
  | "BadChecksum"
  | "Malformed"

/**
 * Bytes that are not a valid frame sequence. `offset` is the position, in the connection's (or
 * stream's) bytes, of the offending field; `protocol` names the format (`"network"`, `"amst"`,
 * `"hde"`); `expected` and `actual` are set when there is one right value (a magic, a version, a
 * checksum, a bound). The stream cannot be trusted to be in sync afterwards: close it.
 *
 * @example
 * ```ts
 * import { WireError } from "@novacron/wire"
 *
 * const e = new WireError.FrameError({ protocol: "demo", reason: "BadVersion", offset: 2, detail: "version 9", expected: 1, actual: 9 })
 * console.log(e.message) // "demo frame: BadVersion at byte 2: version 9"
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class FrameError extends Data.TaggedError("FrameError")<{
  readonly protocol: string
  readonly reason: FrameErrorReason
  readonly offset: number
  readonly detail: string
  readonly expected?: number | string | undefined
  readonly actual?: number | string | undefined
}> {
  override get message(): string {
    return `${this.protocol} frame: ${this.reason} at byte ${this.offset}: ${this.detail}`
  }
}

/**
 * A listener could not be started (address in use, not permitted, bad address, or settings that
 * cannot serve it). `reason` says which in words.
 *
 * @since 0.1.0
 * @category errors
 */
export class ListenError extends Data.TaggedError("ListenError")<{
  readonly address: string
  readonly port: number
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return `cannot listen on ${this.address}:${this.port}: ${this.reason}`
  }
}
