/**
 * The hybrid data encoder: what goes on the wire when VM memory pages and disk images move
 * between hosts. One service encodes (on a pool of worker threads) and decodes (inline, it is
 * several times faster than encoding) framed, checksummed HDE streams.
 *
 * @since 0.1.0
 */
import { constants as bufferConstants } from "node:buffer"
import { availableParallelism, totalmem } from "node:os"
import { Chunk, Context, Effect, Layer, type Scope, Stream } from "effect"
import { EncodeError, FrameError, LimitError } from "./HdeError.js"
import { type CompressionSettings, effectiveLevel } from "./HdeSettings.js"
import { type Estimates, initialEstimates } from "./internal/adaptive.js"
import { Decoder } from "./internal/decoder.js"
import { DeltaCache, type DeltaCacheStats } from "./internal/deltaCache.js"
import { type DecodeLimits, FrameFault, LimitFault } from "./internal/format.js"
import type { PageStats } from "./internal/pages.js"
import * as Pool from "./internal/pool.js"
import {
  type Counters,
  type DeltaUse,
  emptyCounters,
  encodeStream,
  type NextBase,
  type Shared,
  type TransferReport,
} from "./internal/transfer.js"

export type {
  /**
   * Whether a transfer was encoded against a base version, and if not, why (`reason`).
   *
   * @since 0.2.0
   * @category models
   */
  DeltaUse,
  /**
   * Whether a transfer's version became its object's next base, and if not, why.
   *
   * @since 0.2.0
   * @category models
   */
  NextBase,
  /**
   * What one encoded transfer did about deltas (`encodeTransfer`'s `report`).
   *
   * @since 0.2.0
   * @category models
   */
  TransferReport,
}

/**
 * Options beyond the settings file: mostly for tests, benchmarks and receivers with tight memory.
 *
 * @since 0.1.0
 */
export interface Options {
  /** Page size for zero/duplicate/delta elimination, a power of two (default 4096). */
  readonly pageSize?: number
  /** How far back (bytes) a duplicate page may point; the decoder keeps this much (default 64 MiB). */
  readonly dedupWindow?: number
  /** Zero, duplicate and delta page elimination (default true). */
  readonly pages?: boolean
  /** Link speed in bytes per second for adaptive mode until `setLinkSpeed` (default 125e6, 1 Gbit/s). */
  readonly linkBps?: number
  /** Chunks in flight per transfer (default 2 per worker): bounds memory and applies back-pressure. */
  readonly inflight?: number
  /** Largest chunk size a decoder accepts from a peer (default: the configured `chunk_size`). */
  readonly maxChunkSize?: number
  /** Largest dedup window (bytes) a decoder accepts and so keeps (default: `dedupWindow`, at least 64 MiB). */
  readonly maxDedupWindow?: number
  /** Most bytes a transfer without its own `maxSize` may decode to (default 16 GiB). */
  readonly maxTotalSize?: number
  /**
   * Output budget of a transfer without its own `maxSize`: at most this many bytes out per byte
   * received, plus one chunk (and, for a delta, the base version's size). Default 4096.
   */
  readonly maxRatio?: number
  /**
   * Largest version of one object kept as a delta base, on each end (default a quarter of the
   * host's memory). `delta_cache_size` bounds what the cache holds of many objects; one object
   * larger than that (a guest's RAM) is still kept, alone, up to this size, so that its next
   * transfer is a delta.
   */
  readonly maxBaseSize?: number
  /** Worker entry override (defaults to the sibling worker file; see README). */
  readonly worker?: Pool.WorkerSpec
}

/**
 * Per-transfer options. `objectId` names the object (e.g. a VM's memory) so that its next
 * transfer can be delta-encoded against this one; both ends must use the same id.
 *
 * @since 0.1.0
 */
export interface TransferOptions {
  readonly objectId?: string
  /**
   * Decoding: the size the receiver expects, e.g. the VM's memory size from the migration's
   * negotiation. The stream fails with `LimitError` before any chunk that would exceed it is
   * decompressed. Without it, the service's `maxTotalSize` and `maxRatio` apply.
   */
  readonly maxSize?: number
  /** Decoding: output bytes per received byte (see `Options.maxRatio`); default unlimited with `maxSize`. */
  readonly maxRatio?: number
  /** Encoding: gets the transfer's report (delta used or why not) once its end frame is out. */
  readonly report?: (report: TransferReport) => Effect.Effect<void>
}

/**
 * An encoded object and what its transfer did about deltas.
 *
 * @since 0.2.0
 * @category models
 */
export interface Encoded {
  readonly bytes: Buffer
  readonly report: TransferReport
}

/**
 * Counters since the service started.
 *
 * @since 0.1.0
 */
export interface Stats {
  readonly transfers: number
  readonly chunks: number
  readonly bytesIn: number
  readonly bytesOut: number
  /** Pages by how they were sent: zero, duplicate, same as base, XBZRLE delta, literal. */
  readonly pages: PageStats
  /** Chunks per codec ("none", "lz4", "zstd3", ...; "unchanged": equal to the delta base, sent as tags). */
  readonly codecs: Readonly<Record<string, number>>
  /** Sender-side cache of last versions (hits/misses are base lookups per transfer). */
  readonly deltaCache: DeltaCacheStats
  /** Receiver-side cache of last decoded versions. */
  readonly receiveCache: DeltaCacheStats
  readonly workers: number
  readonly linkBps: number
  /** Adaptive mode's learned per-codec speed (bytes/s per worker) and gain over lz4. */
  readonly estimates: Estimates
}

/**
 * @since 0.1.0
 */
export interface Hde {
  /** Encodes a whole object into one HDE stream. */
  readonly encode: (data: Uint8Array, options?: TransferOptions) => Effect.Effect<Buffer, EncodeError>
  /**
   * `encode`, with the transfer's report: whether it is a delta and, when not, a `reason`
   * (`FirstTransfer`, `Evicted`, `BaseTooLarge`, ...), and whether it is kept as the next base.
   * Delta off for a named object is also logged (warning when a base was lost, info the first time).
   */
  readonly encodeTransfer: (data: Uint8Array, options?: TransferOptions) => Effect.Effect<Encoded, EncodeError>
  /** Decodes a whole HDE stream; fails with the offset of the first bad byte. */
  readonly decode: (stream: Uint8Array, options?: TransferOptions) => Effect.Effect<Buffer, FrameError | LimitError>
  /** Encodes a byte stream (any chunking) into HDE frames, in order, with bounded memory. */
  readonly encodeStream: (
    options?: TransferOptions,
  ) => <E, R>(self: Stream.Stream<Uint8Array, E, R>) => Stream.Stream<Uint8Array, E | EncodeError, R>
  /** Decodes an HDE byte stream (any chunking) back to the original bytes, chunk by chunk. */
  readonly decodeStream: (
    options?: TransferOptions,
  ) => <E, R>(self: Stream.Stream<Uint8Array, E, R>) => Stream.Stream<Uint8Array, E | FrameError | LimitError, R>
  /** Current link speed for adaptive mode (from the transport's measurements). */
  readonly setLinkSpeed: (bytesPerSecond: number) => Effect.Effect<void>
  readonly stats: Effect.Effect<Stats>
}

/**
 * @since 0.1.0
 */
export const Hde = Context.GenericTag<Hde>("@novacron/dwcp-hde/Hde")

const MiB = 1024 * 1024

const GiB = 1024 * MiB

const toDecodeError = (e: unknown): FrameError | LimitError =>
  e instanceof LimitFault
    ? new LimitError({ limit: e.limit, value: e.value, max: e.max, offset: e.offset, chunk: e.chunk, reason: e.reason })
    : e instanceof FrameFault
      ? new FrameError({ protocol: "hde", reason: e.kind, offset: e.offset, detail: e.reason })
      : new FrameError({
          protocol: "hde",
          reason: "Malformed",
          offset: -1,
          detail: `decoder failure: ${e instanceof Error ? e.message : String(e)}`,
        })

/**
 * Builds the service in the current scope (its worker threads end with the scope).
 *
 * @since 0.1.0
 */
export const make = (
  settings: CompressionSettings,
  options: Options = {},
): Effect.Effect<Hde, EncodeError, Scope.Scope> =>
  Effect.gen(function* () {
    const pageSize = options.pageSize ?? 4096
    const pageShift = Math.log2(pageSize)
    if (!Number.isInteger(pageShift) || pageShift < 9 || pageShift > 16)
      return yield* new EncodeError({ reason: `page size ${pageSize} is not a power of two in 512..65536` })
    const workers = settings.workers === 0 ? availableParallelism() : settings.workers
    const pool = yield* Pool.make(workers, options.worker)
    const maxBaseSize = options.maxBaseSize ?? Math.floor(totalmem() / 4)
    const newCache = () =>
      settings.enable_delta ? new DeltaCache(settings.delta_cache_size, maxBaseSize) : new DeltaCache(0)
    const counters: Counters = emptyCounters()
    const shared: Shared = {
      pool,
      config: {
        algorithm: settings.algorithm,
        level: effectiveLevel(settings),
        chunkSize: settings.chunk_size,
        pageShift,
        pages: options.pages ?? true,
        delta: settings.enable_delta,
        dedupWindowPages: Math.floor((options.dedupWindow ?? 64 * MiB) / pageSize),
        inflight: Math.max(1, options.inflight ?? 2 * workers),
      },
      cache: newCache(),
      estimates: initialEstimates(effectiveLevel(settings)),
      linkBps: options.linkBps ?? 125e6,
      counters,
    }
    const receiveCache = newCache()
    const maxChunkSize = options.maxChunkSize ?? settings.chunk_size
    const maxDedupWindow = options.maxDedupWindow ?? Math.max(options.dedupWindow ?? 0, 64 * MiB)
    /** A transfer's limits; `ceiling` caps its size where the result must fit in one Buffer. */
    const limitsOf = (o: TransferOptions | undefined, ceiling: number): DecodeLimits => ({
      maxChunkSize,
      maxDedupWindow,
      maxSize: Math.min(o?.maxSize ?? options.maxTotalSize ?? 16 * GiB, ceiling),
      maxRatio: o?.maxRatio ?? (o?.maxSize === undefined ? (options.maxRatio ?? 4096) : Number.POSITIVE_INFINITY),
    })

    const decodeWith =
      (o: TransferOptions | undefined, ceiling: number) =>
      <E, R>(self: Stream.Stream<Uint8Array, E, R>) =>
        Stream.suspend(() => {
          const d = new Decoder({ limits: limitsOf(o, ceiling), objectId: o?.objectId, cache: receiveCache })
          return self.pipe(
            Stream.mapConcatEffect((bytes) =>
              Effect.try({ try: () => d.push(bytes) as Array<Uint8Array>, catch: toDecodeError }),
            ),
            Stream.concat(
              Stream.fromEffect(Effect.try({ try: () => d.finish(), catch: toDecodeError })).pipe(Stream.drain),
            ),
          )
        })
    const encodeStreamFn: Hde["encodeStream"] = (o) => encodeStream(shared, o?.objectId, o?.report)
    const decodeStreamFn: Hde["decodeStream"] = (o) => decodeWith(o, Number.POSITIVE_INFINITY)

    const collect = <E>(s: Stream.Stream<Uint8Array, E>) =>
      Stream.runCollect(s).pipe(Effect.map((c) => Buffer.concat(Chunk.toReadonlyArray(c))))

    return Hde.of({
      encode: (data, o) => collect(encodeStreamFn(o)(Stream.make(data))),
      encodeTransfer: (data, o) =>
        Effect.suspend(() => {
          let report: TransferReport | undefined
          const keep = (r: TransferReport) =>
            Effect.zipRight(
              Effect.sync(() => (report = r)),
              o?.report?.(r) ?? Effect.void,
            )
          return collect(encodeStream(shared, o?.objectId, keep)(Stream.make(data))).pipe(
            Effect.flatMap((bytes) =>
              report === undefined
                ? new EncodeError({ reason: "the transfer ended without its report" })
                : Effect.succeed({ bytes, report }),
            ),
          )
        }),
      // One Buffer holds the result: a stream that would not fit fails with LimitError, not a defect.
      decode: (data, o) => collect(decodeWith(o, bufferConstants.MAX_LENGTH)(Stream.make(data))),
      encodeStream: encodeStreamFn,
      decodeStream: decodeStreamFn,
      setLinkSpeed: (bps) =>
        Effect.sync(() => {
          if (Number.isFinite(bps) && bps > 0) shared.linkBps = bps
        }),
      stats: Effect.sync(() => ({
        transfers: counters.transfers,
        chunks: counters.chunks,
        bytesIn: counters.bytesIn,
        bytesOut: counters.bytesOut,
        pages: { ...counters.pages },
        codecs: { ...counters.codecs },
        deltaCache: shared.cache.stats(),
        receiveCache: receiveCache.stats(),
        workers,
        linkBps: shared.linkBps,
        estimates: structuredClone(shared.estimates),
      })),
    })
  })

/**
 * The service as a layer; its worker threads stop when the layer is released.
 *
 * @since 0.1.0
 */
export const layer = (settings: CompressionSettings, options?: Options): Layer.Layer<Hde, EncodeError> =>
  Layer.scoped(Hde, make(settings, options))
