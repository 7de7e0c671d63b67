/**
 * What can go wrong talking QMP to a QEMU process: each case a distinct tag naming the socket.
 *
 * @since 0.1.0
 */
import { Data } from "effect"

/**
 * The socket could not be opened (missing, refused, permission).
 *
 * @since 0.1.0
 * @category errors
 */
export class QmpConnectFailed extends Data.TaggedError("QmpConnectFailed")<{
  readonly socket: string
  readonly reason: string
}> {
  override get message() {
    return `qmp ${this.socket}: connect failed: ${this.reason}`
  }
}

/**
 * No answer in time: the greeting, the capabilities handshake or a command.
 *
 * @since 0.1.0
 * @category errors
 */
export class QmpTimeout extends Data.TaggedError("QmpTimeout")<{
  readonly socket: string
  /** The command, or `greeting` for the handshake. */
  readonly command: string
  readonly timeoutMs: number
}> {
  override get message() {
    return `qmp ${this.socket}: no answer to ${this.command} within ${this.timeoutMs} ms`
  }
}

/**
 * The peer broke the protocol: a line that is not JSON, not a QMP message, or longer than the bound.
 * The connection is closed when this happens.
 *
 * @since 0.1.0
 * @category errors
 */
export class QmpProtocolError extends Data.TaggedError("QmpProtocolError")<{
  readonly socket: string
  readonly detail: string
}> {
  override get message() {
    return `qmp ${this.socket}: protocol error: ${this.detail}`
  }
}

/**
 * QEMU answered the command with an error (`{"error": {"class", "desc"}}`).
 *
 * @since 0.1.0
 * @category errors
 */
export class QmpCommandFailed extends Data.TaggedError("QmpCommandFailed")<{
  readonly socket: string
  readonly command: string
  readonly class: string
  readonly desc: string
}> {
  override get message() {
    return `qmp ${this.socket}: ${this.command} failed: ${this.class}: ${this.desc}`
  }
}

/**
 * The connection closed (QEMU exited, or the client's scope ended) before the answer came.
 *
 * @since 0.1.0
 * @category errors
 */
export class QmpClosed extends Data.TaggedError("QmpClosed")<{
  readonly socket: string
  readonly detail: string
}> {
  override get message() {
    return `qmp ${this.socket}: connection closed: ${this.detail}`
  }
}

/**
 * Any QMP failure.
 *
 * @since 0.1.0
 * @category errors
 */
export type QmpError = QmpConnectFailed | QmpTimeout | QmpProtocolError | QmpCommandFailed | QmpClosed
