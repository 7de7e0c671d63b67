/**
 * The sending end: one logical transfer striped over N TCP (or TLS) connections.
 *
 * Chunks of `chunkSize` bytes are numbered and handed to whichever stream is free, within the
 * receiver's window (its reorder-buffer bound), so the receiver's memory is bounded and a slow
 * consumer slows the sender (back-pressure). Each chunk is acknowledged once the receiver has
 * written it. A stream that closes, errors or holds the oldest unacknowledged chunk longer than
 * `stallTimeout` is dropped and its unacknowledged chunks are re-sent on the others. When every
 * stream is gone the sender reconnects on the `reconnect` Schedule and resumes from the receiver's
 * acknowledged offset. The stream count follows {@link StreamController} between `minStreams` and
 * `maxStreams`.
 *
 * The data path is a Promise/callback engine (`internal/sender.ts`): it handles every chunk, ack
 * and socket event of up to 256 streams, where a fiber per event would cost more than the work.
 * This module is its Effect door: the source, pacing and socket hook are Effects run with the
 * caller's runtime, interruption aborts the engine, and reconnecting is a Schedule.
 *
 * @since 0.1.0
 */
import { createHash, randomBytes } from "node:crypto"
import type * as net from "node:net"
import type * as tls from "node:tls"
import { TraceContext } from "@novacron/wire"
import { Cause, Data, Effect, Exit, Option, Redacted, Runtime, Schedule } from "effect"
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
  /** TLS client options (with `cert`/`key` for a receiver that requires client certificates); omit for plain TCP. */
  readonly tls?: tls.ConnectionOptions | undefined
  /** The receiver's shared token, proven in each HELLO (the token itself is not sent). @since 0.2.0 */
  readonly token?: Redacted.Redacted<string> | undefined
  /** Defaults to a hash of the source's identity, so sending the same file again resumes it. */
  readonly transferId?: Buffer | undefined
  /** Fixed stream count (disables the controller). */
  readonly streams?: number | undefined
  /** Control epoch in ms (default 2000: long enough to average out one stream's loss recovery). */
  readonly controlInterval?: number | undefined
  /** A stream holding the oldest unacked chunk this long is dropped (default 10 s). */
  readonly stallTimeout?: number | undefined
  readonly connectTimeout?: number | undefined
  /** Full disconnects tolerated before giving up (default 8); ignored when `reconnect` is given. */
  readonly maxReconnects?: number | undefined
  /** First reconnect delay in ms, doubling up to 5 s (default 200); ignored when `reconnect` is given. */
  readonly reconnectDelay?: number | undefined
  /**
   * When to reconnect after every stream is lost (its input is the cause); when it ends the send
   * fails with `gave-up` (or `connect` if no stream ever connected).
   *
   * @since 0.2.0
   */
  readonly reconnect?: Schedule.Schedule<unknown, unknown> | undefined
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
   * The span this transfer belongs to, as W3C `traceparent` (`@novacron/wire`'s TraceContext):
   * sent in the HELLO so the receiver's work joins the trace. Default: the current span's.
   *
   * @since 0.2.0
   */
  readonly traceparent?: string | undefined
  /**
   * The end-to-end digest: `xxh3-64` (fast, not collision resistant) or `sha256`. Default: `sha256`
   * over plain TCP with a `token` (the data itself is not authenticated there, so an on-path attacker
   * could choose it), `xxh3-64` under TLS (which authenticates every byte) or without authentication.
   * A token receiver refuses `xxh3-64` over plain TCP.
   *
   * @since 0.3.0
   */
  readonly integrity?: "sha256" | "xxh3-64" | undefined
  /**
   * Run with every new connection before any frame is sent, e.g. to set the congestion control
   * with `@novacron/dwcp-acp` (`CongestionControl.configure`). A failure drops that connection.
   *
   * @since 0.2.0
   */
  readonly onSocket?: ((socket: net.Socket) => Effect.Effect<unknown, unknown>) | undefined
  /**
   * Run before each chunk is written, with its size: a token bucket here (e.g. dwcp-acp's
   * `Pacer.take`) holds the whole transfer to a rate, such as a share of the link or a PBA allocation.
   *
   * @since 0.2.0
   */
  readonly pace?: ((bytes: number) => Effect.Effect<void>) | undefined
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

/** Every stream was lost: reconnect (internal to `send`). */
class Cut extends Data.TaggedError("Cut")<{ readonly cause: string }> {}

/**
 * Sends `source` to a receiver. Interrupting the effect closes every stream; the receiver keeps
 * its progress, so sending again with the same transfer id resumes.
 *
 * @since 0.1.0
 */
export const send = (options: Options): Effect.Effect<Result, TransferError> =>
  Effect.gen(function* () {
    const runtime = yield* Effect.runtime<never>()
    const current = options.traceparent === undefined ? yield* TraceContext.current : Option.none()
    // Runs a hook's Effect for the engine; a failure rejects with the failure itself.
    const run = <A>(effect: Effect.Effect<A, unknown>): Promise<A> =>
      Runtime.runPromiseExit(runtime, effect).then((exit) =>
        Exit.isSuccess(exit) ? exit.value : Promise.reject(asError(Cause.squash(exit.cause))),
      )
    const s = options.settings ?? TransportSettings.defaults
    const transport = Rdma.select({
      enableRdma: s.enable_rdma,
      mode: options.mode,
      probe: options.rdmaProbe ?? (s.enable_rdma && options.mode === "datacenter" ? Rdma.probe() : noProbe),
    })
    const fixed = options.streams
    const { source, onSocket, pace } = options
    const engine = yield* Effect.acquireRelease(
      Effect.sync(
        () =>
          new SenderEngine({
            host: options.host,
            port: options.port,
            tls: options.tls,
            token: options.token === undefined ? undefined : Buffer.from(Redacted.value(options.token)),
            source: {
              name: source.name,
              size: source.size,
              read: (offset, length) => run(source.read(offset, length)),
              readInto: source.readInto && ((offset, target) => run(source.readInto!(offset, target))),
            },
            transferId: options.transferId ?? transferIdFor(source),
            chunkSize: s.chunk_size,
            minStreams: fixed ?? s.min_streams,
            maxStreams: fixed ?? s.max_streams,
            initialStreams: fixed ?? TransportSettings.clampStreams(s, s.initial_streams),
            adaptive: fixed === undefined,
            controlIntervalMs: options.controlInterval ?? 2000,
            stallTimeoutMs: options.stallTimeout ?? 10_000,
            connectTimeoutMs: options.connectTimeout ?? 5000,
            maxFrameSize: options.maxFrameSize ?? 16 * 1024 * 1024,
            chunksPerStream: options.chunksPerStream ?? 4,
            predictedBandwidth: options.predictedBandwidth,
            traceparent: options.traceparent ?? Option.getOrUndefined(current),
            integrity: options.integrity,
            onSocket: onSocket && ((socket) => run(Effect.asVoid(onSocket(socket)))),
            pace: pace && ((bytes) => run(pace(bytes))),
            onProgress: options.onProgress,
            onEvent: options.onEvent,
          }),
      ),
      (engine) => Effect.sync(() => engine.close()),
    )
    const attempt = Effect.tryPromise({
      try: (signal) => {
        signal.addEventListener("abort", () => engine.abort())
        return engine.attempt()
      },
      catch: (e) =>
        e instanceof TransferError
          ? e
          : new TransferError({ reason: "connect", message: asError(e).message, acknowledged: 0 }),
    }).pipe(
      Effect.flatMap((a) => (a._tag === "done" ? Effect.succeed(a.result) : Effect.fail(new Cut({ cause: a.cause })))),
    )
    const result = yield* attempt.pipe(
      Effect.retry({ schedule: options.reconnect ?? defaultReconnect(options), while: (e) => e._tag === "Cut" }),
      Effect.catchTag("Cut", () => Effect.fail(engine.gaveUp())),
    )
    return { ...result, transport } satisfies Result
  }).pipe(Effect.scoped)

/** Exponential back-off from `reconnectDelay` (200 ms), at most 5 s apart, `maxReconnects` (8) times. */
const defaultReconnect = (options: Options): Schedule.Schedule<unknown, unknown> =>
  Schedule.exponential(options.reconnectDelay ?? 200).pipe(
    Schedule.union(Schedule.spaced("5 seconds")),
    Schedule.intersect(Schedule.recurs(options.maxReconnects ?? 8)),
  )

const asError = (e: unknown): Error => (e instanceof Error ? e : new Error(String(e)))

const noProbe: Rdma.Probe = { loaded: false, compiled: false, devices: [], error: "not probed" }
