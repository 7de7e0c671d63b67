/**
 * Typed failures of the network component.
 *
 * @since 0.1.0
 */
import { Data } from "effect"

/**
 * Why a byte stream is not a valid frame sequence. `offset` is the position in the connection's
 * byte stream of the offending field.
 *
 * @since 0.1.0
 */
export class FrameError extends Data.TaggedError("FrameError")<{
  readonly reason: "BadMagic" | "UnsupportedVersion" | "Oversized" | "ChecksumMismatch" | "Truncated"
  readonly offset: number
  readonly detail: string
}> {
  override get message() {
    return `${this.reason} at byte ${this.offset}: ${this.detail}`
  }
}

/**
 * The listener could not be started.
 *
 * @since 0.1.0
 */
export class ListenError extends Data.TaggedError("ListenError")<{
  readonly address: string
  readonly port: number
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message() {
    return `cannot listen on ${this.address}:${this.port}: ${this.reason}`
  }
}

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
