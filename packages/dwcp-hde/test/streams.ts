// Synchronous stream builders for decoder tests: the same frames as the service's encoder
// (encodeChunk is the worker's code), without worker threads, so tests stay fast enough to be
// run once per mutant.

import { initialEstimates } from "../src/internal/adaptive.js"
import { analyse, digestOf, encodeChunk } from "../src/internal/chunk.js"
import { concatFingerprints, DeltaCache, sliceVersion, type Version } from "../src/internal/deltaCache.js"
import { writeEndFrame, writeStreamHeader } from "../src/internal/format.js"

export interface SyncOptions {
  readonly chunkSize: number
  readonly pageShift?: number
  readonly algorithm?: "zstd" | "lz4" | "none"
  readonly pages?: boolean
  /** Dedup window in pages (0: no duplicate references). */
  readonly window?: number
  readonly base?: Version
}

/** Encodes `data` into one HDE stream; also returns each frame's offset and the version a receiver keeps. */
export const encodeSync = (data: Buffer, o: SyncOptions) => {
  const pageShift = o.pageShift ?? 12
  const pageSize = 2 ** pageShift
  const window = o.window ?? 0
  const pagesPerChunk = Math.ceil(o.chunkSize / pageSize)
  const seen = new Map<number, number>()
  const frames: Array<Buffer> = []
  const digests: Array<Uint8Array> = []
  const fps: Array<Int32Array> = []
  const chunks: Array<Buffer> = []
  for (let i = 0, at = 0; at < data.length; i++, at += o.chunkSize) {
    const chunk = data.subarray(at, Math.min(data.length, at + o.chunkSize))
    chunks.push(chunk)
    const a = analyse(chunk, pageSize)
    digests.push(a.digest)
    fps.push(a.fingerprints)
    const dupRefs = new Int32Array(a.fingerprints.length).fill(-1)
    for (let p = 0; p < a.fingerprints.length; p++) {
      const fp = a.fingerprints[p] ?? -1
      if (fp < 0 || window === 0) continue
      const g = i * pagesPerChunk + p
      const prev = seen.get(fp)
      if (prev !== undefined && g - prev <= window) dupRefs[p] = prev
      else seen.set(fp, g)
    }
    const base = o.base === undefined ? undefined : sliceVersion(o.base, at, chunk.length)
    frames.push(
      encodeChunk({
        seq: i,
        chunk,
        pageSize,
        pages: o.pages ?? true,
        dupRefs,
        baseRefs: new Int32Array(a.fingerprints.length).fill(-1),
        base,
        algorithm: o.algorithm ?? "zstd",
        level: 1,
        linkBps: 1e8,
        workers: 1,
        estimates: initialEstimates(1),
      }).frame,
    )
  }
  const digest = digestOf(Buffer.concat(digests))
  const header = writeStreamHeader({
    pageShift,
    maxChunkSize: o.chunkSize,
    dedupWindowPages: window,
    baseDigest: o.base?.digest,
  })
  const end = writeEndFrame({ chunkCount: frames.length, totalSize: data.length, digest })
  const offsets: Array<number> = []
  let at = header.length
  for (const f of frames) {
    offsets.push(at)
    at += f.length
  }
  const version: Version = {
    digest,
    chunks,
    size: data.length,
    chunkSize: o.chunkSize,
    chunkDigests: digests,
    pageSize,
    fingerprints: concatFingerprints(fps),
  }
  return { wire: Buffer.concat([header, ...frames, end]), header, frames, end, offsets, endAt: at, version }
}

/** A receive cache holding `version` as `objectId`. */
export const cacheWith = (objectId: string, version: Version, capacity = 1 << 26): DeltaCache => {
  const cache = new DeltaCache(capacity)
  cache.put(objectId, version)
  return cache
}
