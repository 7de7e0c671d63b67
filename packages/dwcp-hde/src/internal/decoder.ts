// Incremental decoder: push bytes as they arrive, get decoded chunks back. Holds at most one
// frame's bytes (sizes are bounded before anything is buffered) plus the dedup window.
import { analyse, digestOf } from "./chunk.js"
import { decompress } from "./codec.js"
import { concatFingerprints, type DeltaCache, sliceVersion, type Version } from "./deltaCache.js"
import {
  CHUNK_FLAG_DELTA,
  CHUNK_FLAG_DICT,
  CHUNK_FLAG_PAGED,
  CHUNK_HEADER_SIZE,
  type ChunkHeader,
  chunkCrc,
  type DecodeLimits,
  END_FRAME_SIZE,
  FRAME_CHUNK,
  FRAME_END,
  FrameFault,
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
  private pending: Buffer = Buffer.alloc(0)
  /** Stream offset of pending[0]. */
  private offset = 0
  private header: StreamHeader | undefined
  private chunkHeader: ChunkHeader | undefined
  private base: Version | undefined
  private seq = 0
  private total = 0
  private nextPage = 0
  private readonly window = new Map<number, Uint8Array>()
  private readonly kept: Array<Buffer> = []
  private readonly chunkDigests: Array<Uint8Array> = []
  private readonly fingerprints: Array<Float64Array> = []
  private keptBytes = 0
  private done = false

  constructor(private readonly options: DecoderOptions) {}

  /** Consumes `bytes`; returns the chunks that became complete, in order. Throws `FrameFault`. */
  push(bytes: Uint8Array): Array<Buffer> {
    if (bytes.length === 0) return []
    if (this.done) throw new FrameFault(this.offset + this.pending.length, "data after the end frame")
    this.pending = this.pending.length === 0 ? Buffer.from(bytes) : Buffer.concat([this.pending, bytes])
    const out: Array<Buffer> = []
    for (;;) {
      let step: Buffer | null | undefined
      try {
        step = this.step()
      } catch (e) {
        // step() reports offsets relative to the first pending byte.
        throw e instanceof FrameFault ? new FrameFault(e.offset + this.offset, e.reason) : e
      }
      if (step === undefined) break
      if (step !== null) out.push(step)
      if (this.done) {
        if (this.pending.length > 0) throw new FrameFault(this.offset, "data after the end frame")
        break
      }
    }
    return out
  }

  /** Call at end of input: fails unless a valid end frame closed the stream. */
  finish(): void {
    if (!this.done) throw new FrameFault(this.offset + this.pending.length, "stream truncated (no end frame)")
  }

  private consume(n: number): void {
    this.pending = this.pending.subarray(n)
    this.offset += n
  }

  /** One frame: a chunk, null (a header or end frame), or undefined (need more bytes). */
  private step(): Buffer | null | undefined {
    const b = this.pending
    if (this.header === undefined) {
      if (b.length < STREAM_HEADER_SIZE) return undefined
      const h = readStreamHeader(b, 0, this.options.limits)
      if (h.baseDigest !== undefined) {
        const v = this.options.objectId === undefined ? undefined : this.options.cache?.peek(this.options.objectId)
        if (v === undefined) throw new FrameFault(16, "delta stream but no base version of this object is cached")
        if (Buffer.compare(v.digest, h.baseDigest) !== 0)
          throw new FrameFault(16, "cached base version differs from the sender's")
        this.base = v
      }
      this.header = h
      this.consume(STREAM_HEADER_SIZE)
      return null
    }
    if (b.length < 1) return undefined
    const type = b[0]
    if (type === FRAME_END) {
      if (b.length < END_FRAME_SIZE) return undefined
      const e = readEndFrame(b, 0)
      const at = 0
      if (e.chunkCount !== this.seq)
        throw new FrameFault(at + 4, `end frame counts ${e.chunkCount} chunks, got ${this.seq}`)
      if (e.totalSize !== this.total)
        throw new FrameFault(at + 8, `end frame counts ${e.totalSize} bytes, got ${this.total}`)
      const digest = digestOf(Buffer.concat(this.chunkDigests))
      if (Buffer.compare(digest, e.digest) !== 0) throw new FrameFault(at + 16, "end-to-end digest mismatch")
      this.consume(END_FRAME_SIZE)
      this.done = true
      const { cache, objectId } = this.options
      if (cache !== undefined && objectId !== undefined) {
        if (this.keptBytes === this.total)
          cache.put(objectId, {
            digest,
            chunks: this.kept,
            size: this.total,
            chunkSize: this.header?.maxChunkSize ?? 0,
            chunkDigests: this.chunkDigests,
            pageSize: 2 ** (this.header?.pageShift ?? 12),
            fingerprints: concatFingerprints(this.fingerprints),
          })
        else cache.remove(objectId)
      }
      return null
    }
    if (type !== FRAME_CHUNK) throw new FrameFault(0, `unknown frame type ${type}`)
    if (b.length < CHUNK_HEADER_SIZE) return undefined
    const at = 0
    const h = this.chunkHeader ?? readChunkHeader(b, 0, this.header)
    this.chunkHeader = h
    if (b.length < CHUNK_HEADER_SIZE + h.encodedSize) return undefined
    this.chunkHeader = undefined
    if (chunkCrc(b, 0, h.encodedSize) !== h.crc) throw new FrameFault(at, "chunk checksum mismatch")
    if (h.seq !== this.seq) throw new FrameFault(at + 4, `chunk sequence ${h.seq}, expected ${this.seq}`)
    const payloadAt = at + CHUNK_HEADER_SIZE
    const base =
      h.flags & CHUNK_FLAG_DELTA && this.base ? sliceVersion(this.base, this.total, h.originalSize) : undefined
    if (h.flags & CHUNK_FLAG_DICT && base === undefined)
      throw new FrameFault(at + 2, "dictionary chunk past the end of the base")
    const dict = h.flags & CHUNK_FLAG_DICT ? base : undefined
    const payload = b.subarray(CHUNK_HEADER_SIZE, CHUNK_HEADER_SIZE + h.encodedSize)
    const inner = decompress(h.codec, payload, h.innerSize, payloadAt, dict)
    const pageSize = 2 ** this.header.pageShift
    const firstPage = this.nextPage
    let chunk: Buffer
    if (h.flags & CHUNK_FLAG_PAGED) {
      chunk = decodePages({
        inner,
        originalSize: h.originalSize,
        pageSize,
        firstPage,
        dedupWindowPages: this.header.dedupWindowPages,
        lookup: (p) => this.window.get(p),
        base,
        basePage: (index) =>
          h.flags & CHUNK_FLAG_DELTA && this.base !== undefined
            ? sliceVersion(this.base, index * pageSize, pageSize)
            : undefined,
        at: payloadAt,
      })
    } else {
      chunk = inner
    }
    this.consume(CHUNK_HEADER_SIZE + h.encodedSize)
    this.remember(chunk, firstPage, pageSize)
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

  private remember(chunk: Buffer, firstPage: number, pageSize: number): void {
    const pages = Math.ceil(chunk.length / pageSize)
    this.nextPage = firstPage + pages
    const w = this.header?.dedupWindowPages ?? 0
    if (w === 0) return
    for (let p = 0; p < pages; p++) this.window.set(firstPage + p, chunk.subarray(p * pageSize, (p + 1) * pageSize))
    for (let p = firstPage - w; p < this.nextPage - w; p++) this.window.delete(p)
  }
}
