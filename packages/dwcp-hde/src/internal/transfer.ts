// One transfer's encoding pipeline. Chunks are analysed and encoded on workers concurrently;
// the only sequential step is duplicate-page resolution (a map lookup per page), taken in
// chunk order through a chain of Deferreds.
import { createHash } from "node:crypto"
import { Deferred, Effect, FiberId, Stream } from "effect"
import type { EncodeError } from "../HdeError.js"
import { type Estimates, learn } from "./adaptive.js"
import { compress } from "./codec.js"
import { type DeltaCache, sliceVersion, type Version } from "./deltaCache.js"
import {
  CHUNK_FLAG_DELTA,
  CHUNK_FLAG_PAGED,
  Codec,
  writeChunkHeader,
  writeEndFrame,
  writeStreamHeader,
} from "./format.js"
import { emptyStats, type PageStats, Tag } from "./pages.js"
import type { Pool } from "./pool.js"

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

/** A copy in its own, uninitialised ArrayBuffer (transferable; `new Uint8Array(src)` would zero it first). */
const own = (u: Uint8Array): Buffer => {
  const b = Buffer.allocUnsafeSlow(u.length)
  b.set(u)
  return b
}

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
      encodedSize: inner.length,
    },
    inner,
  )
  return Buffer.concat([header, inner])
}

const codecKey = (codec: number, level: number): string => (codec === 1 ? `zstd${level}` : codec === 2 ? "lz4" : "none")

export const encodeStream =
  (shared: Shared, objectId: string | undefined) =>
  <E, R>(input: Stream.Stream<Uint8Array, E, R>): Stream.Stream<Uint8Array, E | EncodeError, R> =>
    Stream.suspend(() => {
      const { pool, config, cache, counters } = shared
      const pageSize = 2 ** config.pageShift
      const pagesPerChunk = Math.ceil(config.chunkSize / pageSize)
      const window = config.dedupWindowPages
      const base: Version | undefined = config.delta && objectId !== undefined ? cache.lookup(objectId) : undefined
      const seen = new Map<string, number>()
      const order: Array<{ readonly page: number; readonly fp: string }> = []
      let orderHead = 0
      const digests: Array<Uint8Array> = []
      const kept: Array<Buffer> = []
      let keptBytes = 0
      let bytes = 0
      const turns = new Map<number, Deferred.Deferred<void>>()
      const turn = (i: number) => {
        let d = turns.get(i)
        if (d === undefined) {
          d = Deferred.unsafeMake<void>(FiberId.none)
          turns.set(i, d)
        }
        return d
      }
      counters.transfers++

      const resolve = (fingerprints: ReadonlyArray<string>, firstPage: number): Int32Array => {
        const refs = new Int32Array(fingerprints.length).fill(-1)
        if (window === 0) return refs
        for (let p = 0; p < fingerprints.length; p++) {
          const fp = fingerprints[p]
          if (!fp) continue
          const g = firstPage + p
          const prev = seen.get(fp)
          if (prev !== undefined && g - prev <= window) refs[p] = prev
          else {
            seen.set(fp, g)
            order.push({ page: g, fp })
          }
        }
        // Forget pages that fell out of the window (the decoder drops them too).
        const horizon = firstPage + fingerprints.length - window
        while (orderHead < order.length && (order[orderHead]?.page ?? 0) < horizon) {
          const o = order[orderHead++]
          if (o !== undefined && seen.get(o.fp) === o.page) seen.delete(o.fp)
        }
        if (orderHead > 4096 && orderHead * 2 > order.length) {
          order.splice(0, orderHead)
          orderHead = 0
        }
        return refs
      }

      const encodeChunk = (chunk: Buffer, i: number) =>
        Effect.gen(function* () {
          // Unchanged since the base (most of a VM's memory between two transfers): a frame of
          // "same" tags built here, no worker, no hashing (the digest comes from the cache).
          const old = base?.chunkSize === config.chunkSize ? base.chunks[i] : undefined
          const oldDigest = base?.chunkDigests[i]
          const unchanged = config.pages && old !== undefined && oldDigest !== undefined && old.equals(chunk)
          if (objectId !== undefined && config.delta && keptBytes + chunk.length <= cache.capacity) {
            // Cached chunks are never written to, so an unchanged one is shared, not copied.
            kept.push(unchanged && old !== undefined ? old : Buffer.from(chunk))
            keptBytes += chunk.length
          }
          if (unchanged && oldDigest !== undefined) {
            if (i > 0) yield* Deferred.await(turn(i - 1))
            turns.delete(i - 1)
            digests[i] = oldDigest
            yield* Deferred.succeed(turn(i), undefined)
            const frame = sameFrame(i, chunk.length, pageSize)
            counters.chunks++
            counters.bytesIn += chunk.length
            counters.bytesOut += frame.length
            counters.codecs.unchanged = (counters.codecs.unchanged ?? 0) + 1
            counters.pages.same += Math.ceil(chunk.length / pageSize)
            return frame as Uint8Array
          }
          const { slot, id, analysis } = yield* pool.analyse(own(chunk), pageSize, config.pages && window > 0)
          return yield* Effect.gen(function* () {
            if (i > 0) yield* Deferred.await(turn(i - 1))
            turns.delete(i - 1)
            const refs = resolve(analysis.fingerprints, i * pagesPerChunk)
            digests[i] = analysis.digest
            const baseSlice = base === undefined ? undefined : sliceVersion(base, i * config.chunkSize, chunk.length)
            yield* Deferred.succeed(turn(i), undefined)
            const r = yield* pool.encode(slot, id, {
              seq: i,
              pageSize,
              pages: config.pages,
              dupRefs: refs,
              base: baseSlice === undefined ? undefined : own(baseSlice),
              algorithm: config.algorithm,
              level: config.level,
              linkBps: shared.linkBps,
              workers: pool.size,
              estimates: shared.estimates,
            })
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
            counters.chunks++
            counters.bytesIn += chunk.length
            counters.bytesOut += r.frame.length
            const k = codecKey(r.codec, r.level)
            counters.codecs[k] = (counters.codecs[k] ?? 0) + 1
            for (const f of ["zero", "dup", "same", "delta", "literal"] as const) counters.pages[f] += r.stats[f]
            return r.frame as Uint8Array
          }).pipe(Effect.onInterrupt(() => pool.drop(slot, id)))
        })

      const end = Effect.sync(() => {
        const h = createHash("sha256")
        for (const d of digests) h.update(d)
        const digest = h.digest()
        if (objectId !== undefined && config.delta) {
          if (kept.length === digests.length)
            cache.put(objectId, {
              digest,
              chunks: kept,
              size: keptBytes,
              chunkSize: config.chunkSize,
              chunkDigests: digests,
            })
          else cache.remove(objectId)
        }
        return writeEndFrame({ chunkCount: digests.length, totalSize: bytes, digest }) as Uint8Array
      })
      const header = writeStreamHeader({
        pageShift: config.pageShift,
        maxChunkSize: config.chunkSize,
        dedupWindowPages: config.pages ? window : 0,
        baseDigest: base?.digest,
      })
      counters.bytesOut += header.length
      return Stream.make(header as Uint8Array).pipe(
        Stream.concat(
          rechunk(input, config.chunkSize).pipe(
            Stream.tap((c) => Effect.sync(() => (bytes += c.length))),
            Stream.zipWithIndex,
            Stream.mapEffect(([c, i]) => encodeChunk(c, i), { concurrency: config.inflight }),
          ),
        ),
        Stream.concat(
          Stream.fromEffect(end).pipe(Stream.tap((e) => Effect.sync(() => (counters.bytesOut += e.length)))),
        ),
      )
    })
