/**
 * Typed failures of the network component.
 *
 * @since 0.1.0
 */
import { WireError } from "@novacron/wire"
import { Data } from "effect"

/**
 * Why a byte stream is not a valid frame sequence: the wire module's one error (`reason`, `offset`
 * of the offending field in the connection's byte stream, `detail`).
 *
 * @since 0.1.0
 */
export const FrameError = WireError.FrameError

/**
 * @since 0.1.0
 */
export type FrameError = WireError.FrameError

/**
 * The listener could not be started: the wire module's one error (`address`, `port`, `reason`).
 *
 * @since 0.1.0
 */
export const ListenError = WireError.ListenError

/**
 * @since 0.1.0
 */
export type ListenError = WireError.ListenError

/**
 * A peer could not be reached or refused us. `retryable` is false when retrying cannot help
 * (authentication or certificate refused).
 *
 * @since 0.1.0
 */
export class DialError extends Data.TaggedError("DialError")<{
  readonly peer: string
  readonly reason: string
  readonly retryable: boolean
  readonly cause?: unknown
}> {
  override get message() {
    return `cannot connect to ${this.peer}: ${this.reason}`
  }
}

/**
 * The connection is closed.
 *
 * @since 0.1.0
 */
export class ConnectionClosed extends Data.TaggedError("ConnectionClosed")<{
  readonly connection: number
  readonly reason: string
}> {
  override get message() {
    return `connection ${this.connection} closed: ${this.reason}`
  }
}

/**
 * The settings cannot work together (e.g. mutual TLS without TLS).
 *
 * @since 0.1.0
 */
export class NetworkSettingsError extends Data.TaggedError("NetworkSettingsError")<{
  readonly reason: string
}> {
  override get message() {
    return this.reason
  }
}
