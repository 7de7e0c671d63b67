import type { Socket } from "node:net"
import { type Decoder, decoder, encode, type Frame, FrameType, json } from "../Frame.js"

export type LogLevel = "debug" | "info" | "warn" | "error"
export type Log = (level: LogLevel, message: string, annotations: Record<string, unknown>) => void

export interface WireOptions {
  readonly id: number
  readonly side: "inbound" | "outbound"
  readonly maxFrameSize: number
  readonly idleTimeoutMillis: number
  readonly log: Log
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

  constructor(
    readonly socket: Socket,
    readonly options: WireOptions,
  ) {
    this.remote = `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? "?"}`
    this.decoder = decoder(options.maxFrameSize)
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve
    })
    socket.setNoDelay(true)
    if (options.idleTimeoutMillis > 0) socket.setTimeout(options.idleTimeoutMillis)
    socket.on("timeout", () => this.close(`idle timeout (${options.idleTimeoutMillis} ms)`, "info", "idle_timeout"))
    socket.on("data", (chunk: Buffer) => this.receive(chunk))
    socket.on("end", () => {
      const error = this.decoder.end()
      if (error !== undefined) this.close(`malformed stream: ${error.message}`, "warn")
      else this.close("peer closed the connection", "debug")
    })
    socket.on("error", (e) => this.close(`socket error: ${e.message}`, "warn", undefined, true))
    socket.on("close", () => {
      this.closeReason ??= "socket closed"
      this.resolveClosed(this.closeReason)
    })
  }

  get isClosed(): boolean {
    return this.closeReason !== undefined
  }

  private receive(chunk: Buffer) {
    if (this.isClosed) return
    const { frames, error } = this.decoder.push(chunk)
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
    if (error !== undefined) this.close(`malformed frame: ${error.message}`, "warn", undefined, true)
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
   * `destroy`, the socket is torn down at once instead of flushing.
   */
  close(reason: string, level: LogLevel, refusal?: string, destroy = false) {
    if (this.isClosed) return
    this.closeReason = reason
    this.options.log(level, `connection closed: ${reason}`, {
      connection: this.options.id,
      side: this.options.side,
      remote: this.remote,
    })
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
