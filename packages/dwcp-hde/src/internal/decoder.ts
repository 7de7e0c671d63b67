// Incremental decoder: push bytes as they arrive, get decoded chunks back. Holds at most one
// frame's bytes (sizes are bounded before anything is buffered) plus the dedup window, and
// refuses output beyond the transfer's budget before decompressing the chunk that would exceed it.
// Synchronous and outside Effect: it runs once per received piece on the hot path.

import { crc32 } from "node:zlib"
import { analyse, digestOf } from "./chunk.js"
import { decompress } from "./codec.js"
import { concatFingerprints, type DeltaCache, sliceVersion, type Version } from "./deltaCache.js"
import {
  CHUNK_FLAG_DELTA,
  CHUNK_FLAG_DICT,
  CHUNK_FLAG_PAGED,
  CHUNK_HEADER_SIZE,
  type ChunkHeader,
  Codec,
  type DecodeLimits,
  END_FRAME_SIZE,
  FRAME_CHUNK,
  FRAME_END,
  FrameFault,
  LimitFault,
  readChunkHeader,
  readEndFrame,
  readStreamHeader,
  STREAM_HEADER_SIZE,
  type StreamHeader,
} from "./format.js"
import { decodePages } from "./pages.js"

export interface DecoderOptions {
  readonly limits: DecodeLimits
  readonly objectId: string | undefined
  readonly cache: DeltaCache | undefined
}

export class Decoder {
  /**
   * Received bytes not decoded yet, as the caller's own pieces (views, not copies: a piece must
   * not be written to after `push`). A frame split over pieces is joined once, when complete.
   */
  private parts: Array<Buffer> = []
  private buffered = 0
  /** Stream offset of the first buffered byte. */
  private start = 0
  /** Stream offset of the frame being decoded (faults report offsets within it). */
  private frameAt = 0
  /** Bytes copied to join frames that arrived in pieces: at most once per byte. */
  joined = 0
  private header: StreamHeader | undefined
  private chunkHeader: ChunkHeader | undefined
  /** CRC-32 of the pending chunk header's first 20 bytes, where its frame checksum starts. */
  private headCrc = 0
  private base: Version | undefined
  /** Output allowed beyond the ratio: one declared chunk, plus the base version a delta rebuilds. */
  private slack = 0
  private seq = 0
  private total = 0
  private nextPage = 0
  private readonly window = new Map<number, Uint8Array>()
  private readonly kept: Array<Buffer> = []
  private readonly chunkDigests: Array<Uint8Array> = []
  private readonly fingerprints: Array<Float64Array> = []
  /** Bytes of output kept to become the object's next base (only with an object id and a cache). */
  keptBytes = 0
  private done = false

  constructor(private readonly options: DecoderOptions) {}

  /** Consumes `bytes`; returns the chunks that became complete, in order. Throws `FrameFault`. */
  push(bytes: Uint8Array): Array<Buffer> {
    if (bytes.length === 0) return []
    if (this.done) throw new FrameFault(this.start, "data after the end frame")
    this.parts.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length))
    this.buffered += bytes.length
    const out: Array<Buffer> = []
    for (;;) {
      let step: Buffer | null | undefined
      try {
        step = this.step()
      } catch (e) {
        throw e instanceof FrameFault ? e.shift(this.frameAt) : e
      }
      if (step === undefined) break
      if (step !== null) out.push(step)
      if (this.done) {
        if (this.buffered > 0) throw new FrameFault(this.start, "data after the end frame")
        break
      }
    }
    return out
  }

  /** Bytes of output kept for duplicate references: at most the declared window. */
  get windowBytes(): number {
    let n = 0
    for (const page of this.window.values()) n += page.length
    return n
  }

  /** Call at end of input: fails unless a valid end frame closed the stream. */
  finish(): void {
    if (!this.done) throw new FrameFault(this.start + this.buffered, "stream truncated (no end frame)")
  }

  /**
   * Removes the next `n` buffered bytes: a view when one piece holds them all, else one copy.
   * `fresh` tells which (a copy may be kept; a view of the caller's piece may not).
   */
  private take(n: number): { readonly bytes: Buffer; readonly fresh: boolean } {
    this.buffered -= n
    this.start += n
    const first = this.parts[0] as Buffer
    if (first.length >= n) {
      if (first.length === n) this.parts.shift()
      else this.parts[0] = first.subarray(n)
      return { bytes: first.subarray(0, n), fresh: false }
    }
    const pieces: Array<Buffer> = []
    let filled = 0
    while (filled < n) {
      const part = this.parts[0] as Buffer
      const k = Math.min(part.length, n - filled)
      pieces.push(part.subarray(0, k))
      filled += k
      if (k === part.length) this.parts.shift()
      else this.parts[0] = part.subarray(k)
    }
    this.joined += n
    return { bytes: Buffer.concat(pieces, n), fresh: true }
  }

  /** One frame: a chunk, null (a header or end frame), or undefined (need more bytes). */
  private step(): Buffer | null | undefined {
    if (this.header === undefined) {
      if (this.buffered < STREAM_HEADER_SIZE) return undefined
      this.frameAt = this.start
      const h = readStreamHeader(this.take(STREAM_HEADER_SIZE).bytes, 0, this.options.limits)
      if (h.baseDigest !== undefined) {
        const v = this.options.objectId === undefined ? undefined : this.options.cache?.peek(this.options.objectId)
        if (v === undefined) throw new FrameFault(16, "delta stream but no base version of this object is cached")
        if (Buffer.compare(v.digest, h.baseDigest) !== 0)
          throw new FrameFault(16, "cached base version differs from the sender's")
        this.base = v
      }
      this.header = h
      this.slack = h.maxChunkSize + (this.base?.size ?? 0)
      return null
    }
    if (this.chunkHeader === undefined) {
      if (this.buffered === 0) return undefined
      this.frameAt = this.start
      const type = (this.parts[0] as Buffer)[0]
      if (type === FRAME_END) {
        if (this.buffered < END_FRAME_SIZE) return undefined
        this.end(this.header, this.take(END_FRAME_SIZE).bytes)
        return null
      }
      if (type !== FRAME_CHUNK) throw new FrameFault(0, `unknown frame type ${type}`)
      if (this.buffered < CHUNK_HEADER_SIZE) return undefined
      // Bounded before the payload is buffered: it is at most a little over the declared chunk size.
      const head = this.take(CHUNK_HEADER_SIZE).bytes
      this.chunkHeader = readChunkHeader(head, 0, this.header)
      this.headCrc = crc32(head.subarray(0, 20))
    }
    const h = this.chunkHeader
    if (this.buffered < h.encodedSize) return undefined
    this.chunkHeader = undefined
    const payload = this.take(h.encodedSize)
    return this.chunk(this.header, h, payload.bytes, payload.fresh)
  }

  private end(header: StreamHeader, b: Buffer): void {
    const e = readEndFrame(b, 0)
    if (e.chunkCount !== this.seq) throw new FrameFault(4, `end frame counts ${e.chunkCount} chunks, got ${this.seq}`)
    if (e.totalSize !== this.total) throw new FrameFault(8, `end frame counts ${e.totalSize} bytes, got ${this.total}`)
    const digest = digestOf(Buffer.concat(this.chunkDigests))
    if (Buffer.compare(digest, e.digest) !== 0) throw new FrameFault(16, "end-to-end digest mismatch")
    this.done = true
    const { cache, objectId } = this.options
    if (cache !== undefined && objectId !== undefined) {
      if (this.keptBytes === this.total)
        cache.put(objectId, {
          digest,
          chunks: this.kept,
          size: this.total,
          chunkSize: header.maxChunkSize,
          chunkDigests: this.chunkDigests,
          pageSize: 2 ** header.pageShift,
          fingerprints: concatFingerprints(this.fingerprints),
        })
      else cache.remove(objectId)
    }
  }

  /** Refuses a chunk that would take the output over the transfer's budget. */
  private budget(h: ChunkHeader): void {
    const { maxSize, maxRatio } = this.options.limits
    const after = this.total + h.originalSize
    if (!(after <= maxSize))
      throw new LimitFault(
        8,
        "maxSize",
        after,
        maxSize,
        h.seq,
        `chunk ${h.seq} would bring the output to ${after} bytes, over the transfer's maxSize ${maxSize}`,
      )
    // `start` is now the end of this frame: everything received that this output comes from.
    const allowed = Math.floor(maxRatio * this.start + this.slack)
    if (!(after <= allowed))
      throw new LimitFault(
        8,
        "maxRatio",
        after,
        allowed,
        h.seq,
        `chunk ${h.seq} would bring the output to ${after} bytes from ${this.start} encoded bytes, over maxRatio ${maxRatio} x ${this.start} + ${this.slack} bytes of slack = ${allowed}`,
      )
  }

  /** Checks one chunk frame and its budget (before anything is decompressed), then decodes it. */
  private chunk(header: StreamHeader, h: ChunkHeader, payload: Buffer, fresh: boolean): Buffer {
    if (crc32(payload, this.headCrc) !== h.crc) throw new FrameFault(0, "chunk checksum mismatch")
    if (h.seq !== this.seq) throw new FrameFault(4, `chunk sequence ${h.seq}, expected ${this.seq}`)
    this.budget(h)
    const base =
      h.flags & CHUNK_FLAG_DELTA && this.base ? sliceVersion(this.base, this.total, h.originalSize) : undefined
    if (h.flags & CHUNK_FLAG_DICT && base === undefined)
      throw new FrameFault(2, "dictionary chunk past the end of the base")
    const dict = h.flags & CHUNK_FLAG_DICT ? base : undefined
    // A joined payload is already this decoder's own copy; a view of the caller's piece is not.
    const inner =
      h.codec === Codec.none && fresh ? payload : decompress(h.codec, payload, h.innerSize, CHUNK_HEADER_SIZE, dict)
    const pageSize = 2 ** header.pageShift
    const firstPage = this.nextPage
    let chunk: Buffer
    if (h.flags & CHUNK_FLAG_PAGED) {
      const version = this.base
      chunk = decodePages({
        inner,
        originalSize: h.originalSize,
        pageSize,
        firstPage,
        dedupWindowPages: header.dedupWindowPages,
        lookup: (p) => this.window.get(p),
        base,
        basePage: (index) =>
          h.flags & CHUNK_FLAG_DELTA && version !== undefined
            ? sliceVersion(version, index * pageSize, pageSize)
            : undefined,
        at: CHUNK_HEADER_SIZE,
      })
    } else {
      chunk = inner
    }
    this.remember(chunk, firstPage, pageSize, header.dedupWindowPages)
    const analysis = analyse(chunk, pageSize)
    this.chunkDigests.push(analysis.digest)
    this.fingerprints.push(analysis.fingerprints)
    this.seq++
    this.total += chunk.length
    const { cache } = this.options
    if (cache !== undefined && this.options.objectId !== undefined && this.keptBytes + chunk.length <= cache.capacity) {
      this.kept.push(chunk)
      this.keptBytes += chunk.length
    }
    return chunk
  }

  private remember(chunk: Buffer, firstPage: number, pageSize: number, w: number): void {
    const pages = Math.ceil(chunk.length / pageSize)
    this.nextPage = firstPage + pages
    if (w === 0) return
    for (let p = 0; p < pages; p++) this.window.set(firstPage + p, chunk.subarray(p * pageSize, (p + 1) * pageSize))
    for (let p = firstPage - w; p < this.nextPage - w; p++) this.window.delete(p)
  }
}
