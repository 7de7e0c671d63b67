/**
 * The sending end: one logical transfer striped over N TCP (or TLS) connections.
 *
 * Chunks of `chunkSize` bytes are numbered and handed to whichever stream is free, within the
 * receiver's window (its reorder-buffer bound), so the receiver's memory is bounded and a slow
 * consumer slows the sender (back-pressure). Each chunk is acknowledged once the receiver has
 * written it. A stream that closes, errors or holds the oldest unacknowledged chunk longer than
 * `stallTimeout` is dropped and its unacknowledged chunks are re-sent on the others. When every
 * stream is gone the sender reconnects and resumes from the receiver's acknowledged offset.
 * The stream count follows {@link StreamController} between `minStreams` and `maxStreams`.
 *
 * @since 0.1.0
 */
import { createHash, randomBytes } from "node:crypto"
import type * as net from "node:net"
import type * as tls from "node:tls"
import { Effect } from "effect"
import { type Progress, SenderEngine, type SenderEvent, type SendResult } from "./internal/sender.js"
import * as Rdma from "./Rdma.js"
import type { Source } from "./Source.js"
import { TransferError } from "./TransferError.js"
import * as TransportSettings from "./TransportSettings.js"

/**
 * Progress of a transfer: acknowledged bytes, goodput, ETA and live streams.
 *
 * @since 0.1.0
 */
export type { Progress, SenderEvent }

/**
 * What a completed transfer reports. `transport` says what was selected and what carried the bytes.
 *
 * @since 0.1.0
 */
export interface Result extends SendResult {
  readonly transport: Rdma.Selection
}

/**
 * Sender options. Stream bounds, initial count and chunk size default to `settings`
 * (`dwcp.transport`).
 *
 * @since 0.1.0
 */
export interface Options {
  readonly host: string
  readonly port: number
  readonly source: Source
  readonly settings?: TransportSettings.TransportSettings | undefined
  /** TLS client options; omit for plain TCP. */
  readonly tls?: tls.ConnectionOptions | undefined
  /** Defaults to a hash of the source's identity, so sending the same file again resumes it. */
  readonly transferId?: Buffer | undefined
  /** Fixed stream count (disables the controller). */
  readonly streams?: number | undefined
  /** Control epoch in ms (default 2000: long enough to average out one stream's loss recovery). */
  readonly controlInterval?: number | undefined
  /** A stream holding the oldest unacked chunk this long is dropped (default 10 s). */
  readonly stallTimeout?: number | undefined
  readonly connectTimeout?: number | undefined
  /** Full disconnects tolerated before giving up (default 8). */
  readonly maxReconnects?: number | undefined
  readonly reconnectDelay?: number | undefined
  readonly maxFrameSize?: number | undefined
  /** Unacknowledged chunks one stream may hold (default 4): keeps per-stream queues short. */
  readonly chunksPerStream?: number | undefined
  /** Mode for the RDMA/TCP choice (RDMA only in `datacenter`). */
  readonly mode?: "datacenter" | "internet" | "hybrid" | undefined
  /** RDMA probe; defaults to the native addon's. */
  readonly rdmaProbe?: Rdma.Probe | undefined
  /** Bandwidth prediction in bytes/s (e.g. from the PBA package), read each control epoch. */
  readonly predictedBandwidth?: (() => number | undefined) | undefined
  /**
   * Called with every new connection before any frame is sent, e.g. to set the congestion control
   * with `@novacron/dwcp-acp` (`CongestionControl.configure`). A rejection drops that connection.
   */
  readonly onSocket?: ((socket: net.Socket) => void | Promise<void>) | undefined
  /**
   * Awaited before each chunk is written, with its size: a token bucket here (e.g. dwcp-acp's
   * `Pacer`) holds the whole transfer to a rate, such as a share of the link or a PBA allocation.
   */
  readonly pace?: ((bytes: number) => Promise<void>) | undefined
  readonly onProgress?: ((p: Progress) => void) | undefined
  readonly onEvent?: ((e: SenderEvent) => void) | undefined
}

/**
 * A stable 16-byte transfer id from the source's identity.
 *
 * @since 0.1.0
 */
export const transferIdFor = (source: Source): Buffer =>
  createHash("sha256").update(source.identity).digest().subarray(0, 16)

/**
 * A random transfer id.
 *
 * @since 0.1.0
 */
export const randomTransferId = (): Buffer => randomBytes(16)

/**
 * Sends `source` to a receiver. Interrupting the effect closes every stream; the receiver keeps
 * its progress, so sending again with the same transfer id resumes.
 *
 * @since 0.1.0
 */
export const send = (options: Options): Effect.Effect<Result, TransferError> =>
  Effect.suspend(() => {
    const s = options.settings ?? TransportSettings.defaults
    const transport = Rdma.select({
      enableRdma: s.enable_rdma,
      mode: options.mode,
      probe: options.rdmaProbe ?? (s.enable_rdma && options.mode === "datacenter" ? Rdma.probe() : noProbe),
    })
    const fixed = options.streams
    const engine = new SenderEngine({
      host: options.host,
      port: options.port,
      tls: options.tls,
      source: options.source,
      transferId: options.transferId ?? transferIdFor(options.source),
      chunkSize: s.chunk_size,
      minStreams: fixed ?? s.min_streams,
      maxStreams: fixed ?? s.max_streams,
      initialStreams: fixed ?? TransportSettings.clampStreams(s, s.initial_streams),
      adaptive: fixed === undefined,
      controlIntervalMs: options.controlInterval ?? 2000,
      stallTimeoutMs: options.stallTimeout ?? 10_000,
      connectTimeoutMs: options.connectTimeout ?? 5000,
      maxReconnects: options.maxReconnects ?? 8,
      reconnectDelayMs: options.reconnectDelay ?? 200,
      maxFrameSize: options.maxFrameSize ?? 16 * 1024 * 1024,
      chunksPerStream: options.chunksPerStream ?? 4,
      predictedBandwidth: options.predictedBandwidth,
      onSocket: options.onSocket,
      pace: options.pace,
      onProgress: options.onProgress,
      onEvent: options.onEvent,
    })
    return Effect.tryPromise({
      try: (signal) => {
        signal.addEventListener("abort", () => engine.abort())
        return engine.run()
      },
      catch: (e) =>
        e instanceof TransferError
          ? e
          : new TransferError({ reason: "connect", message: (e as Error).message, acknowledged: 0 }),
    }).pipe(Effect.map((r): Result => ({ ...r, transport })))
  })

const noProbe: Rdma.Probe = { loaded: false, compiled: false, devices: [], error: "not probed" }
