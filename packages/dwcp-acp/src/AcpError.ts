/**
 * Typed failures of the ACP package.
 *
 * @since 0.1.0
 */
import { Data } from "effect"

/**
 * The native addon could not be loaded (not built, or built for another Node ABI).
 *
 * @since 0.1.0
 */
export class AddonUnavailable extends Data.TaggedError("AddonUnavailable")<{
  readonly message: string
}> {}

/**
 * The socket has no file descriptor (not connected yet, destroyed, or not a TCP socket).
 *
 * @since 0.1.0
 */
export class NoSocketFd extends Data.TaggedError("NoSocketFd")<{
  readonly message: string
}> {}

/**
 * A `setsockopt`/`getsockopt` call failed; `code` is the errno name (e.g. `ENOENT`).
 *
 * @since 0.1.0
 */
export class SocketOptionError extends Data.TaggedError("SocketOptionError")<{
  readonly operation: string
  readonly errno: number
  readonly code: string
  readonly message: string
}> {}

/**
 * Reading `/proc/sys/net/ipv4/tcp_available_congestion_control` failed.
 *
 * @since 0.1.0
 */
export class ProcReadError extends Data.TaggedError("ProcReadError")<{
  readonly path: string
  readonly message: string
}> {}

/**
 * Any ACP failure.
 *
 * @since 0.1.0
 */
export type AcpError = AddonUnavailable | NoSocketFd | SocketOptionError | ProcReadError
