// One transfer's encoding pipeline. Chunks are analysed and encoded on workers concurrently;
// the only sequential step is duplicate-page resolution (a map lookup per page, and a memcmp per
// candidate: fingerprints only nominate), taken in chunk order by a turn counter.
import { Effect, Queue, Stream, Take } from "effect"
import type { EncodeError } from "../HdeError.js"
import { type Estimates, learn } from "./adaptive.js"
import { digestOf } from "./chunk.js"
import { compress } from "./codec.js"
import { concatFingerprints, type DeltaCache, sliceVersion, type Version } from "./deltaCache.js"
import {
  CHUNK_FLAG_DELTA,
  CHUNK_FLAG_PAGED,
  Codec,
  writeChunkHeader,
  writeEndFrame,
  writeStreamHeader,
} from "./format.js"
import { addStats, emptyStats, type PageStats, Tag } from "./pages.js"
import type { Outcome, Pool } from "./pool.js"

export interface EncoderConfig {
  readonly algorithm: "adaptive" | "zstd" | "lz4" | "none"
  readonly level: number
  readonly chunkSize: number
  readonly pageShift: number
  readonly pages: boolean
  readonly delta: boolean
  readonly dedupWindowPages: number
  readonly inflight: number
}

/** Mutable per-service state shared by transfers: learned codec estimates, link speed, counters. */
export interface Shared {
  readonly pool: Pool
  readonly config: EncoderConfig
  readonly cache: DeltaCache
  readonly estimates: Estimates
  linkBps: number
  readonly counters: Counters
}

/** Whether a transfer was encoded against a base version, and if not, why. */
export type DeltaUse =
  | { readonly _tag: "Delta"; readonly baseSize: number }
  | {
      readonly _tag: "NoDelta"
      /**
       * `Disabled`: `enable_delta` is off. `NoObjectId`: the transfer named no object.
       * `FirstTransfer`: no earlier version of the object passed through this service.
       * `Evicted`: the last version was pushed out of the cache by other objects.
       * `BaseTooLarge`: the last version was larger than the cache keeps (`ceiling`).
       */
      readonly reason: "Disabled" | "NoObjectId" | "FirstTransfer" | "Evicted" | "BaseTooLarge"
      readonly detail: string
    }

/** Whether this version became the base of the object's next transfer, and if not, why. */
export type NextBase =
  | { readonly _tag: "Kept"; readonly size: number }
  | {
      readonly _tag: "NotKept"
      readonly reason: "Disabled" | "NoObjectId" | "TooLarge"
      readonly detail: string
    }

/** What one encoded transfer did about deltas; also what its log lines say. */
export interface TransferReport {
  readonly objectId: string | undefined
  readonly delta: DeltaUse
  readonly nextBase: NextBase
  readonly bytesIn: number
  readonly bytesOut: number
}

const MiB = 1024 * 1024
const mib = (n: number) => `${(n / MiB).toFixed(n < MiB ? 2 : 0)} MiB`

/** The base lookup of a transfer: the version, or why there is none. */
const lookupBase = (
  config: EncoderConfig,
  cache: DeltaCache,
  objectId: string | undefined,
): { readonly base: Version | undefined; readonly use: DeltaUse } => {
  if (!config.delta)
    return { base: undefined, use: { _tag: "NoDelta", reason: "Disabled", detail: "enable_delta is false" } }
  if (objectId === undefined)
    return { base: undefined, use: { _tag: "NoDelta", reason: "NoObjectId", detail: "the transfer names no objectId" } }
  const base = cache.lookup(objectId)
  if (base !== undefined) return { base, use: { _tag: "Delta", baseSize: base.size } }
  const miss = cache.missOf(objectId)
  const detail =
    miss.reason === "BaseTooLarge"
      ? `the previous version (at least ${mib(miss.size)}) was larger than the delta cache keeps (${mib(miss.ceiling)})`
      : miss.reason === "Evicted"
        ? `the previous version was evicted by other objects (delta_cache_size ${mib(cache.capacity)})`
        : "no earlier version of this object was sent"
  return { base: undefined, use: { _tag: "NoDelta", reason: miss.reason, detail } }
}

export interface Counters {
  transfers: number
  chunks: number
  bytesIn: number
  bytesOut: number
  readonly pages: PageStats
  readonly codecs: Record<string, number>
}

export const emptyCounters = (): Counters => ({
  transfers: 0,
  chunks: 0,
  bytesIn: 0,
  bytesOut: 0,
  pages: emptyStats(),
  codecs: {},
})

/** Cuts a byte stream into chunks of exactly `size` bytes (the last may be shorter). */
export const rechunk = <E, R>(input: Stream.Stream<Uint8Array, E, R>, size: number): Stream.Stream<Buffer, E, R> =>
  Stream.suspend(() => {
    let parts: Array<Uint8Array> = []
    let length = 0
    const cut = (bytes: Uint8Array): Array<Buffer> => {
      const out: Array<Buffer> = []
      let rest = bytes
      while (length + rest.length >= size) {
        if (length === 0) {
          // A whole chunk inside one input element: no copy here (the pool copies it once).
          out.push(Buffer.from(rest.buffer, rest.byteOffset, size))
          rest = rest.subarray(size)
          continue
        }
        const need = size - length
        parts.push(rest.subarray(0, need))
        out.push(Buffer.concat(parts, size))
        rest = rest.subarray(need)
        parts = []
        length = 0
      }
      if (rest.length > 0) {
        parts.push(rest)
        length += rest.length
      }
      return out
    }
    return input.pipe(
      Stream.mapConcat(cut),
      Stream.concat(Stream.suspend(() => (length > 0 ? Stream.make(Buffer.concat(parts, length)) : Stream.empty))),
    )
  })

/** A chunk whose every page equals the base: its tags, which zstd shrinks to a dozen bytes. */
const sameFrame = (seq: number, size: number, pageSize: number): Buffer => {
  const tags = Buffer.alloc(Math.ceil(size / pageSize), Tag.same)
  const packed = compress(Codec.zstd, 1, tags)
  const inner = packed.length < tags.length ? packed : tags
  const header = writeChunkHeader(
    {
      codec: inner === tags ? Codec.none : Codec.zstd,
      flags: CHUNK_FLAG_PAGED | CHUNK_FLAG_DELTA,
      level: 0,
      seq,
      originalSize: size,
      innerSize: tags.length,
    },
    inner,
  )
  return Buffer.concat([header, inner])
}

/** One chunk's frame to come: settled by the pipeline's callback, awaited by the stream. */
class Ticket {
  private outcome: Outcome<Uint8Array> | undefined
  private waiter: ((r: Outcome<Uint8Array>) => void) | undefined
  cancel: () => void = () => {}

  settle(r: Outcome<Uint8Array>): void {
    this.outcome = r
    this.waiter?.(r)
  }

  readonly result: Effect.Effect<Uint8Array, EncodeError> = Effect.async((resume) => {
    const k = (r: Outcome<Uint8Array>) => resume(r.ok ? Effect.succeed(r.value) : Effect.fail(r.error))
    if (this.outcome !== undefined) k(this.outcome)
    else this.waiter = k
  })
}

const codecKey = (codec: number, level: number): string => (codec === 1 ? `zstd${level}` : codec === 2 ? "lz4" : "none")

export const encodeStream =
  (
    shared: Shared,
    objectId: string | undefined,
    onReport: (report: TransferReport) => Effect.Effect<void> = () => Effect.void,
  ) =>
  <E, R>(input: Stream.Stream<Uint8Array, E, R>): Stream.Stream<Uint8Array, E | EncodeError, R> =>
    Stream.suspend(() => {
      const { pool, config, cache, counters } = shared
      const pageSize = 2 ** config.pageShift
      const pagesPerChunk = Math.ceil(config.chunkSize / pageSize)
      const window = config.dedupWindowPages
      const { base, use } = lookupBase(config, cache, objectId)
      // Pages of the base by content, for pages that moved; only when both cut pages alike.
      const baseIndex = base?.pageSize === pageSize ? cache.pageIndex(base) : undefined
      const seen = new Map<number, number>()
      // Pages in `seen`, oldest first, as two arrays (an object per page was garbage to collect).
      let orderPages: Array<number> = []
      let orderFps: Array<number> = []
      let orderHead = 0
      // This transfer's chunks still inside the dedup window, to confirm a duplicate byte for byte.
      const recent = new Map<number, Buffer>()
      const digests: Array<Uint8Array> = []
      const fingerprints: Array<Int32Array> = []
      const kept: Array<Buffer> = []
      let keptBytes = 0
      let keptCount = 0
      let bytes = 0
      // Duplicate resolution runs in chunk order: a chunk whose analysis is back waits in
      // `ready` until every earlier chunk has had its turn.
      const ready = new Map<number, () => void>()
      let turn = 0
      const advance = () => {
        for (let step = ready.get(turn); step !== undefined; step = ready.get(turn)) {
          ready.delete(turn++)
          step()
        }
      }
      counters.transfers++

      const pageOf = (g: number): Buffer | undefined => {
        const c = recent.get(Math.floor(g / pagesPerChunk))
        const at = (g % pagesPerChunk) * pageSize
        return c?.subarray(at, at + pageSize)
      }
      const samePage = (a: Uint8Array | undefined, b: Uint8Array): boolean =>
        a !== undefined && a.length === b.length && Buffer.compare(a, b) === 0

      /** Per page of chunk `i`: an identical earlier page of this transfer, or one elsewhere in the base. */
      const resolve = (fps: Int32Array, i: number, chunk: Buffer) => {
        const firstPage = i * pagesPerChunk
        const dupRefs = new Int32Array(fps.length).fill(-1)
        const baseRefs = new Int32Array(fps.length).fill(-1)
        if (!config.pages) return { dupRefs, baseRefs }
        recent.set(i, chunk)
        for (let p = 0; p < fps.length; p++) {
          const fp = fps[p] ?? -1
          if (fp < 0) continue
          const g = firstPage + p
          const page = chunk.subarray(p * pageSize, (p + 1) * pageSize)
          const prev = window > 0 ? seen.get(fp) : undefined
          if (prev !== undefined && g - prev <= window && samePage(pageOf(prev), page)) {
            dupRefs[p] = prev
            continue
          }
          if (window > 0 && (prev === undefined || g - prev > window)) {
            seen.set(fp, g)
            orderPages.push(g)
            orderFps.push(fp)
          }
          // Unchanged in place is the worker's "same"; a match elsewhere in the base is a move.
          if (base !== undefined && baseIndex !== undefined && base.fingerprints[g] !== fp) {
            const from = baseIndex.get(fp)
            if (from !== undefined && samePage(sliceVersion(base, from * pageSize, pageSize), page)) baseRefs[p] = from
          }
        }
        // Forget pages that fell out of the window (the decoder drops them too).
        const horizon = firstPage + fps.length - window
        while (orderHead < orderPages.length && (orderPages[orderHead] ?? 0) < horizon) {
          const fp = orderFps[orderHead] ?? -1
          if (seen.get(fp) === orderPages[orderHead]) seen.delete(fp)
          orderHead++
        }
        if (orderHead > 4096 && orderHead * 2 > orderPages.length) {
          orderPages = orderPages.slice(orderHead)
          orderFps = orderFps.slice(orderHead)
          orderHead = 0
        }
        for (const c of recent.keys()) if ((c + 1) * pagesPerChunk <= horizon) recent.delete(c)
        return { dupRefs, baseRefs }
      }

      const account = (bytesIn: number, frame: Uint8Array) => {
        counters.chunks++
        counters.bytesIn += bytesIn
        counters.bytesOut += frame.length
      }

      /** Encodes chunk `i`; `done` gets its frame. Returns a canceller (interruption). */
      const submit = (chunk: Buffer, i: number, done: (r: Outcome<Uint8Array>) => void): (() => void) => {
        // Unchanged since the base (most of a VM's memory between two transfers): a frame of
        // "same" tags built here, no worker, no hashing (the digest comes from the cache).
        const old = base?.chunkSize === config.chunkSize && base.pageSize === pageSize ? base.chunks[i] : undefined
        const oldDigest = base?.chunkDigests[i]
        const unchanged = config.pages && old !== undefined && oldDigest !== undefined && old.equals(chunk)
        if (objectId !== undefined && config.delta && cache.fits(keptBytes + chunk.length)) {
          // Cached chunks are never written to, so an unchanged one is shared, not copied.
          kept[i] = unchanged && old !== undefined ? old : Buffer.from(chunk)
          keptBytes += chunk.length
          keptCount++
        }
        if (unchanged && oldDigest !== undefined) {
          const firstPage = i * pagesPerChunk
          ready.set(i, () => {
            digests[i] = oldDigest
            fingerprints[i] = base?.fingerprints.subarray(firstPage, firstPage + pagesPerChunk) ?? new Int32Array(0)
          })
          advance()
          const frame = sameFrame(i, chunk.length, pageSize)
          account(chunk.length, frame)
          counters.codecs.unchanged = (counters.codecs.unchanged ?? 0) + 1
          counters.pages.same += Math.ceil(chunk.length / pageSize)
          queueMicrotask(() => done({ ok: true, value: frame }))
          return () => {}
        }
        let cancelled = false
        const job = pool.analyse(pool.copyIn(chunk), pageSize, (a) => {
          if (cancelled) return
          if (!a.ok) return done(a)
          ready.set(i, () => {
            const { dupRefs, baseRefs } = resolve(a.value.fingerprints, i, chunk)
            digests[i] = a.value.digest
            fingerprints[i] = a.value.fingerprints
            const baseSlice = base === undefined ? undefined : sliceVersion(base, i * config.chunkSize, chunk.length)
            const req = {
              seq: i,
              pageSize,
              pages: config.pages,
              dupRefs,
              baseRefs,
              base: baseSlice === undefined ? undefined : pool.copyIn(baseSlice),
              algorithm: config.algorithm,
              level: config.level,
              linkBps: shared.linkBps,
              workers: pool.size,
              estimates: shared.estimates,
            }
            pool.encode(job, req, (e) => {
              if (cancelled) return
              if (!e.ok) return done(e)
              const r = e.value
              if (config.algorithm === "adaptive" && r.codec !== 0)
                learn(
                  shared.estimates,
                  { codec: r.codec, level: r.level },
                  {
                    bytes: r.innerSize,
                    nanos: r.nanos,
                    ratio: r.innerSize / (r.frame.length - 24),
                    sampleRatio: r.sampleRatio,
                  },
                )
              account(chunk.length, r.frame)
              const k = codecKey(r.codec, r.level)
              counters.codecs[k] = (counters.codecs[k] ?? 0) + 1
              addStats(counters.pages, r.stats)
              done({ ok: true, value: r.frame })
            })
          })
          advance()
        })
        return () => {
          cancelled = true
          ready.delete(i)
          pool.drop(job)
        }
      }

      // Chunks in flight, in order: a producer fiber submits up to `inflight` of them; the
      // stream emits each frame as soon as it and all earlier ones are done. (Stream.mapEffect
      // with concurrency costs about 0.3 ms of main-thread CPU per element here, two races and a
      // fork each: a third of the encoder's CPU at 1 MiB chunks.)
      const encoded = <E, R>(chunks: Stream.Stream<Buffer, E, R>): Stream.Stream<Uint8Array, E | EncodeError, R> =>
        Stream.unwrapScoped(
          Effect.gen(function* () {
            const window = yield* Effect.makeSemaphore(config.inflight)
            const tickets = yield* Queue.unbounded<Take.Take<Ticket, E>>()
            const live = new Set<Ticket>()
            yield* Effect.addFinalizer(() =>
              Effect.sync(() => {
                for (const t of live) t.cancel()
              }),
            )
            let i = 0
            yield* chunks.pipe(
              Stream.runForEach((c) =>
                Effect.zipRight(
                  window.take(1),
                  Effect.suspend(() => {
                    bytes += c.length
                    const t = new Ticket()
                    live.add(t)
                    t.cancel = submit(c, i++, (r) => t.settle(r))
                    return Queue.offer(tickets, Take.of(t))
                  }),
                ),
              ),
              Effect.matchCauseEffect({
                onFailure: (cause) => Queue.offer(tickets, Take.failCause(cause)),
                onSuccess: () => Queue.offer(tickets, Take.end),
              }),
              Effect.forkScoped,
            )
            return Stream.fromQueue(tickets).pipe(
              Stream.flattenTake,
              Stream.mapEffect((t) =>
                t.result.pipe(
                  Effect.ensuring(
                    Effect.zipRight(
                      Effect.sync(() => live.delete(t)),
                      window.release(1),
                    ),
                  ),
                ),
              ),
            )
          }),
        )

      let bytesOut = 0
      let nextBase: NextBase =
        objectId === undefined
          ? { _tag: "NotKept", reason: "NoObjectId", detail: "the transfer names no objectId" }
          : { _tag: "NotKept", reason: "Disabled", detail: "enable_delta is false" }
      const end = Effect.sync(() => {
        const digest = digestOf(Buffer.concat(digests))
        if (objectId !== undefined && config.delta) {
          if (keptCount === digests.length) {
            cache.put(objectId, {
              digest,
              chunks: kept,
              size: keptBytes,
              chunkSize: config.chunkSize,
              chunkDigests: digests,
              pageSize,
              fingerprints: concatFingerprints(fingerprints),
            })
            nextBase = { _tag: "Kept", size: keptBytes }
          } else {
            cache.refuse(objectId, bytes)
            nextBase = {
              _tag: "NotKept",
              reason: "TooLarge",
              detail: `${mib(bytes)} is over the delta cache's largest version (${mib(cache.ceiling)}): the next transfer goes without delta`,
            }
          }
        }
        return writeEndFrame({ chunkCount: digests.length, totalSize: bytes, digest }) as Uint8Array
      })
      // Delta off where it was asked for: a log line now, and the report at the end.
      const annotations = { objectId: objectId ?? "", reason: use._tag === "NoDelta" ? use.reason : "" }
      const started =
        use._tag === "NoDelta" && use.reason !== "NoObjectId" && use.reason !== "Disabled"
          ? (use.reason === "FirstTransfer" ? Effect.logInfo : Effect.logWarning)(
              `hde: delta not used for ${objectId}: ${use.detail}`,
            ).pipe(Effect.annotateLogs(annotations))
          : Effect.void
      const finished = Effect.suspend(() =>
        Effect.zipRight(
          nextBase._tag === "NotKept" && nextBase.reason === "TooLarge"
            ? Effect.logWarning(`hde: ${objectId} not kept as a delta base: ${nextBase.detail}`).pipe(
                Effect.annotateLogs({ objectId: objectId ?? "", reason: nextBase.reason }),
              )
            : Effect.void,
          onReport({ objectId, delta: use, nextBase, bytesIn: bytes, bytesOut }),
        ),
      )

      const header = writeStreamHeader({
        pageShift: config.pageShift,
        maxChunkSize: config.chunkSize,
        dedupWindowPages: config.pages ? window : 0,
        baseDigest: base?.digest,
      })
      counters.bytesOut += header.length
      return Stream.fromEffect(started).pipe(
        Stream.drain,
        Stream.concat(Stream.make(header as Uint8Array)),
        Stream.concat(encoded(rechunk(input, config.chunkSize))),
        Stream.tap((frame) => Effect.sync(() => (bytesOut += frame.length))),
        Stream.concat(
          Stream.fromEffect(end).pipe(
            Stream.tap((e) =>
              Effect.sync(() => {
                counters.bytesOut += e.length
                bytesOut += e.length
              }),
            ),
          ),
        ),
        Stream.concat(Stream.fromEffect(finished).pipe(Stream.drain)),
      )
    })
