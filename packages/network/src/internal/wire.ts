import type { Socket } from "node:net"
import { type Decoder, decoder, encode, type Frame, FrameType, json } from "../Frame.js"

export type LogLevel = "debug" | "info" | "warn" | "error"
export type Log = (level: LogLevel, message: string, annotations: Record<string, unknown>) => void

/** Bytes held by connections that are not authenticated yet, across all of them, and the bound. */
export interface PreAuthBudget {
  used: number
  readonly limit: number
}

export interface WireOptions {
  readonly id: number
  readonly side: "inbound" | "outbound"
  /** Once authenticated. */
  readonly maxFrameSize: number
  /** Before authentication: a Hello, Welcome or Refused is small, so a big frame is an attack. */
  readonly preAuthMaxFrameSize: number
  readonly preAuthBudget?: PreAuthBudget | undefined
  readonly idleTimeoutMillis: number
  readonly log: Log
  /** Told why an unauthenticated connection was closed (a bounded label), for metrics. */
  readonly onPreAuthClose?: ((label: string) => void) | undefined
  /** `host:port` of the other end, when known better than the socket says (it forgets once destroyed). */
  readonly remote?: string | undefined
}

/** How long a closing socket may take to flush before it is destroyed. */
const LINGER_MILLIS = 2_000

/**
 * A socket speaking frames: decodes what arrives (closing on the first malformed byte), encodes what
 * is sent, closes on idleness, and records why it closed. Never throws into the event loop.
 */
export class Wire {
  readonly remote: string
  readonly decoder: Decoder
  onFrame: (frame: Frame) => void = () => {}
  closeReason: string | undefined
  readonly closed: Promise<string>
  private resolveClosed!: (reason: string) => void
  private authenticatedYet = false
  /** This connection's share of the pre-authentication budget. */
  private held = 0

  constructor(
    readonly socket: Socket,
    readonly options: WireOptions,
  ) {
    this.remote = options.remote ?? `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? "?"}`
    this.decoder = decoder(options.preAuthMaxFrameSize)
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve
    })
    socket.setNoDelay(true)
    if (options.idleTimeoutMillis > 0) socket.setTimeout(options.idleTimeoutMillis)
    socket.on("timeout", () => this.close(`idle timeout (${options.idleTimeoutMillis} ms)`, "info", "idle_timeout"))
    socket.on("data", (chunk: Buffer) => this.receive(chunk))
    socket.on("end", () => {
      const error = this.decoder.end()
      if (error !== undefined) this.close(`malformed stream: ${error.message}`, "warn", undefined, false, "protocol")
      else if (this.decoder.offset === 0 && !this.authenticatedYet) {
        // Connect-and-close is how reachability probes (the environment detector's included) look.
        this.close("probe: connected and closed without sending a byte", "debug", undefined, false, "probe")
      } else this.close("peer closed the connection", "debug")
    })
    socket.on("error", (e) => this.close(`socket error: ${e.message}`, "warn", undefined, true))
    socket.on("close", () => {
      this.closeReason ??= "socket closed"
      this.release()
      this.resolveClosed(this.closeReason)
    })
  }

  get isClosed(): boolean {
    return this.closeReason !== undefined
  }

  get authenticated(): boolean {
    return this.authenticatedYet
  }

  /** The peer is authenticated: full-size frames from now on, and its bytes leave the pre-auth budget. */
  authenticate() {
    this.authenticatedYet = true
    this.decoder.maxFrameSize = this.options.maxFrameSize
    this.release()
  }

  private release() {
    if (this.options.preAuthBudget !== undefined) this.options.preAuthBudget.used -= this.held
    this.held = 0
  }

  private receive(chunk: Buffer) {
    if (this.isClosed) return
    const { frames, error } = this.decoder.push(chunk)
    const budget = this.options.preAuthBudget
    if (budget !== undefined && !this.authenticatedYet) {
      budget.used += this.decoder.buffered - this.held
      this.held = this.decoder.buffered
      if (budget.used > budget.limit) {
        const detail = `${budget.used} bytes held by unauthenticated connections, bound ${budget.limit}`
        this.close(`pre-authentication memory bound reached (${detail})`, "warn", "busy", false, "pre_auth_memory")
        return
      }
    }
    for (const frame of frames) {
      if (this.isClosed) return
      try {
        this.onFrame(frame)
      } catch (e) {
        this.close(`frame handler failed: ${e instanceof Error ? e.message : String(e)}`, "error", undefined, true)
        return
      }
    }
    // Malformed input: no reply, the stream can no longer be trusted to be in sync.
    if (error !== undefined) {
      const when = this.authenticatedYet ? "" : " (before authentication)"
      this.close(`malformed frame${when}: ${error.message}`, "warn", undefined, true, "protocol")
    }
  }

  /** Writes a frame; resolves when the kernel has it, rejects if the connection is closed. */
  send(frame: Frame): Promise<void> {
    if (this.isClosed) return Promise.reject(new Error(this.closeReason))
    const bytes = encode(frame, this.options.maxFrameSize)
    return new Promise((resolve, reject) => {
      this.socket.write(bytes, (e) => (e ? reject(e) : resolve()))
    })
  }

  /**
   * Closes once, logging why. With `refusal`, a Refused frame carrying it is sent first; with
   * `destroy`, the socket is torn down at once instead of flushing. `label` (default `refusal`)
   * is what an unauthenticated connection's close counts as in the metrics.
   */
  close(reason: string, level: LogLevel, refusal?: string, destroy = false, label = refusal) {
    if (this.isClosed) return
    this.closeReason = reason
    // Nothing more is read: its pre-authentication bytes no longer count.
    this.release()
    this.options.log(level, `connection closed: ${reason}`, {
      connection: this.options.id,
      side: this.options.side,
      remote: this.remote,
    })
    if (!this.authenticatedYet && label !== undefined) this.options.onPreAuthClose?.(label)
    if (destroy || this.socket.destroyed) {
      this.socket.destroy()
      return
    }
    try {
      if (refusal !== undefined) {
        this.socket.end(encode(json(FrameType.Refused, { reason: refusal, message: reason })))
      } else {
        this.socket.end()
      }
    } catch {
      this.socket.destroy()
      return
    }
    setTimeout(() => this.socket.destroy(), LINGER_MILLIS).unref()
  }

  /** Sends Goodbye and closes (orderly shutdown). */
  goodbye(reason: string, level: LogLevel = "debug") {
    if (this.isClosed) return
    try {
      this.socket.write(encode(json(FrameType.Goodbye, { reason })))
    } catch {
      // Closing anyway.
    }
    this.close(reason, level)
  }
}
