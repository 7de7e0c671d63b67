// The per-chunk work, run on worker threads (or inline): analysis (digest, page fingerprints)
// and encoding (page stream, codec choice, compression, framing).
import { hash } from "node:crypto"
import { choose, type Estimates, sampleRatio } from "./adaptive.js"
import { compress } from "./codec.js"
import {
  CHUNK_FLAG_DELTA,
  CHUNK_FLAG_DICT,
  CHUNK_FLAG_PAGED,
  CHUNK_HEADER_SIZE,
  Codec,
  writeChunkHeader,
} from "./format.js"
import { emptyStats, encodePages, type PageStats } from "./pages.js"

export interface Analysis {
  /** The chunk's digest: sha256 over its pages' sha256 digests. */
  readonly digest: Uint8Array
  /** Per page: a fingerprint (sha256, base64) of a full non-zero page, or "" (zero or partial). */
  readonly fingerprints: ReadonlyArray<string>
}

const zeroDigests = new Map<number, Buffer>()
const zeroDigest = (size: number): Buffer => {
  let d = zeroDigests.get(size)
  if (d === undefined) {
    d = hash("sha256", new Uint8Array(size), "buffer")
    zeroDigests.set(size, d)
  }
  return d
}

/**
 * Hashes every page once: the page digests serve duplicate detection and, hashed together, the
 * chunk's digest (a two-level hash list), so the encoder reads each page once and zero pages
 * cost a memcmp. The decoder computes the same thing on what it decoded.
 */
export const analyse = (chunk: Uint8Array, pageSize: number, dedup: boolean): Analysis => {
  const pages = Math.ceil(chunk.length / pageSize)
  const fingerprints: Array<string> = new Array(pages).fill("")
  const digests = Buffer.allocUnsafe(pages * 32)
  const zero = new Uint8Array(pageSize)
  for (let p = 0; p < pages; p++) {
    const page = chunk.subarray(p * pageSize, (p + 1) * pageSize)
    const isZero = Buffer.compare(page, zero.subarray(0, page.length)) === 0
    const d = isZero ? zeroDigest(page.length) : hash("sha256", page, "buffer")
    digests.set(d, p * 32)
    if (dedup && !isZero && page.length === pageSize) fingerprints[p] = d.toString("base64")
  }
  return { digest: hash("sha256", digests, "buffer"), fingerprints }
}

export interface EncodeRequest {
  readonly seq: number
  readonly chunk: Uint8Array
  readonly pageSize: number
  readonly pages: boolean
  readonly dupRefs: Int32Array
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
  for (const k of ["zero", "dup", "same", "delta", "literal"] as const) stats[k] += pageStats[k]
  // A dictionary only pays when some page changed (not when all are same, zero or duplicate).
  const useDict = dictCandidate && codec === Codec.zstd && pageStats.literal > 0
  const dict = useDict ? req.base : undefined
  const t0 = process.hrtime.bigint()
  let payload = codec === Codec.none ? inner : compress(codec, level, inner, dict)
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
      encodedSize: payload.length,
    },
    payload,
  )
  const frame = Buffer.allocUnsafe(CHUNK_HEADER_SIZE + payload.length)
  frame.set(header, 0)
  frame.set(payload, CHUNK_HEADER_SIZE)
  return { frame, codec, level, innerSize: inner.length, nanos, sampleRatio: ratio, stats, usedBase }
}
