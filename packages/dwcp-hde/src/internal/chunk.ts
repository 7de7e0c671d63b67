// The per-chunk work, run on worker threads (or inline): analysis (digest, page fingerprints)
// and encoding (page stream, codec choice, compression, framing).
import { xxh64 } from "@node-rs/xxhash"
import { choose, type Estimates, sampleRatio } from "./adaptive.js"
import { compressToScratch } from "./codec.js"
import {
  CHUNK_FLAG_DELTA,
  CHUNK_FLAG_DICT,
  CHUNK_FLAG_PAGED,
  CHUNK_HEADER_SIZE,
  Codec,
  DIGEST_SIZE,
  writeChunkHeader,
} from "./format.js"
import { addStats, emptyStats, encodePages, isZeroAt, type PageStats, wordsOf } from "./pages.js"

export interface Analysis {
  /** The chunk's digest: XXH64 (little-endian) over its pages' XXH64 digests. */
  readonly digest: Uint8Array
  /**
   * Per page: a fingerprint (the low 30 bits of the page's XXH64) of a full non-zero page, or -1
   * (zero or partial). Fingerprints only nominate candidates; a match is confirmed byte for byte.
   */
  readonly fingerprints: Int32Array
}

// 30 bits in an Int32Array: small integers, which V8 keeps unboxed; 52-bit keys in a Float64Array
// made every Map lookup of the duplicate search hash a heap number (13 % of the main thread's CPU).
// A collision costs at most a missed duplicate, never a wrong one: matches are compared bytewise.
const FINGERPRINT_MASK = 0x3fffffff

const zeroDigests = new Map<number, bigint>()
const zeroDigest = (size: number): bigint => {
  let d = zeroDigests.get(size)
  if (d === undefined) {
    d = xxh64(new Uint8Array(size))
    zeroDigests.set(size, d)
  }
  return d
}

/** An XXH64 value as the 8 little-endian bytes that go on the wire. */
export const digestBytes = (h: bigint): Buffer => {
  // Its own 8-byte buffer: a pooled slice would carry the whole pool across threads.
  const b = Buffer.alloc(DIGEST_SIZE)
  b.writeBigUInt64LE(h)
  return b
}

/** The digest of a sequence of digests: the chunk digest from page digests, the stream's from chunks'. */
export const digestOf = (digests: Uint8Array): Buffer => digestBytes(xxh64(digests))

/**
 * Hashes every page once: the page digests serve duplicate detection and, hashed together, the
 * chunk's digest (a two-level hash list), so the encoder reads each page once and zero pages
 * cost a memcmp. The decoder computes the same thing on what it decoded.
 */
export const analyse = (chunk: Uint8Array, pageSize: number): Analysis => {
  const pages = Math.ceil(chunk.length / pageSize)
  const fingerprints = new Int32Array(pages).fill(-1)
  const digests = Buffer.allocUnsafe(pages * DIGEST_SIZE)
  const words = wordsOf(chunk)
  for (let p = 0; p < pages; p++) {
    const start = p * pageSize
    const end = Math.min(chunk.length, start + pageSize)
    const isZero = isZeroAt(chunk, words, start, end)
    digests.writeBigUInt64LE(isZero ? zeroDigest(end - start) : xxh64(chunk.subarray(start, end)), p * DIGEST_SIZE)
    // The low bytes of the digest just written: no BigInt arithmetic.
    if (!isZero && end - start === pageSize) fingerprints[p] = digests.readUInt32LE(p * DIGEST_SIZE) & FINGERPRINT_MASK
  }
  return { digest: digestOf(digests), fingerprints }
}

export interface EncodeRequest {
  readonly seq: number
  readonly chunk: Uint8Array
  readonly pageSize: number
  readonly pages: boolean
  readonly dupRefs: Int32Array
  readonly baseRefs: Int32Array
  readonly base: Uint8Array | undefined
  readonly algorithm: "adaptive" | "zstd" | "lz4" | "none"
  readonly level: number
  readonly linkBps: number
  readonly workers: number
  readonly estimates: Estimates
}

export interface EncodeResult {
  /** Chunk header plus payload, ready for the wire. */
  readonly frame: Buffer
  readonly codec: number
  readonly level: number
  readonly innerSize: number
  readonly nanos: number
  readonly sampleRatio: number
  readonly stats: PageStats
  readonly usedBase: boolean
}

export const encodeChunk = (req: EncodeRequest): EncodeResult => {
  const stats = emptyStats()
  const pageStream = (xbzrle: boolean, into: PageStats) =>
    req.pages ? encodePages({ ...req, xbzrle }, into) : undefined
  // With a base, zstd gets the old range as a dictionary and changed pages go whole; lz4 and
  // "none" cannot use a dictionary here, so they get XBZRLE deltas instead.
  const dictCandidate =
    req.base !== undefined && req.base.length > 0 && req.algorithm !== "lz4" && req.algorithm !== "none"
  let pageStats = emptyStats()
  let paged = pageStream(!dictCandidate, pageStats)
  if (!req.pages) pageStats.literal += Math.ceil(req.chunk.length / req.pageSize)
  let inner = paged?.inner ?? req.chunk
  let codec: number = Codec[req.algorithm === "adaptive" ? "none" : req.algorithm]
  let level = req.algorithm === "zstd" ? req.level : req.algorithm === "lz4" ? 1 : 0
  let ratio = 0
  if (req.algorithm === "adaptive") {
    ratio = sampleRatio(inner)
    const c = choose({ linkBps: req.linkBps, workers: req.workers, estimates: req.estimates }, ratio)
    codec = c.codec
    level = c.level
  }
  if (dictCandidate && codec !== Codec.zstd && req.pages) {
    pageStats = emptyStats()
    paged = pageStream(true, pageStats)
    inner = paged?.inner ?? req.chunk
  }
  addStats(stats, pageStats)
  // A dictionary only pays when some page changed (not when all are same, zero or duplicate).
  const useDict = dictCandidate && codec === Codec.zstd && pageStats.literal > 0
  const dict = useDict ? req.base : undefined
  const t0 = process.hrtime.bigint()
  let payload = codec === Codec.none ? inner : compressToScratch(codec, level, inner, dict)
  const nanos = Number(process.hrtime.bigint() - t0)
  let dictUsed = dict !== undefined
  // Never expand: a chunk the codec cannot shrink goes as it is.
  if (payload.length >= inner.length) {
    codec = Codec.none
    level = 0
    payload = inner
    dictUsed = false
  }
  const usedBase = (paged?.usedBase ?? false) || dictUsed
  const flags = (paged ? CHUNK_FLAG_PAGED : 0) | (usedBase ? CHUNK_FLAG_DELTA : 0) | (dictUsed ? CHUNK_FLAG_DICT : 0)
  const header = writeChunkHeader(
    {
      codec,
      flags,
      level,
      seq: req.seq,
      originalSize: req.chunk.length,
      innerSize: inner.length,
    },
    payload,
  )
  const frame = Buffer.allocUnsafe(CHUNK_HEADER_SIZE + payload.length)
  frame.set(header, 0)
  frame.set(payload, CHUNK_HEADER_SIZE)
  return { frame, codec, level, innerSize: inner.length, nanos, sampleRatio: ratio, stats, usedBase }
}
