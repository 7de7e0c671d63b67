/**
 * Typed failures of a transfer.
 *
 * @since 0.1.0
 */
import { WireError } from "@novacron/wire"
import { Data } from "effect"

/**
 * A transfer that did not complete.
 *
 * - `connect`: no stream could be opened (after the reconnect attempts).
 * - `gave-up`: the transfer was cut off more often than `maxReconnects` allows.
 * - `hash-mismatch`: the receiver's digest differs from the sender's (both named in the message).
 * - `remote`: the receiver refused the transfer.
 * - `source`: the source could not be read.
 * - `aborted`: interrupted by the caller.
 *
 * @since 0.1.0
 */
export class TransferError extends Data.TaggedError("TransferError")<{
  readonly reason: "connect" | "gave-up" | "hash-mismatch" | "remote" | "source" | "aborted"
  readonly message: string
  /** Bytes acknowledged by the receiver when it failed. */
  readonly acknowledged: number
}> {}

/**
 * A peer broke the protocol (a well-formed frame that makes no sense where it arrived). The
 * connection is closed; `offset` is where the frame starts in that connection's byte stream.
 *
 * @since 0.1.0
 */
export class ProtocolError extends Data.TaggedError("ProtocolError")<{
  readonly offset: number
  readonly message: string
}> {}

/**
 * The receiver could not listen: the wire module's one `ListenError` (`address`, `port`, `reason`).
 *
 * @since 0.1.0
 */
export const ListenError = WireError.ListenError

/**
 * @since 0.1.0
 */
export type ListenError = WireError.ListenError
