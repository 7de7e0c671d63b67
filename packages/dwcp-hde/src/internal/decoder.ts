// Incremental decoder: push bytes as they arrive, get decoded chunks back. Holds at most one
// frame's bytes (sizes are bounded before anything is buffered) plus the dedup window, and
// refuses output beyond the transfer's budget before decompressing the chunk that would exceed it.
// Synchronous and outside Effect: it runs once per received piece on the hot path.

import { Wire, WireError } from "@novacron/wire"
import { analyse, digestOf } from "./chunk.js"
import { decompress } from "./codec.js"
import { concatFingerprints, type DeltaCache, sliceVersion, type Version } from "./deltaCache.js"
import {
  CHUNK_FLAG_DELTA,
  CHUNK_FLAG_DICT,
  CHUNK_FLAG_PAGED,
  type ChunkHeader,
  Codec,
  type DecodeLimits,
  END_PAYLOAD_SIZE,
  FRAME_END,
  FRAME_START,
  FrameFault,
  format,
  HEADER_SIZE,
  innerBound,
  LimitFault,
  maxEncoded,
  readChunkHeader,
  readEndFrame,
  readStreamHeader,
  START_PAYLOAD_SIZE,
  type StreamHeader,
} from "./format.js"
import { decodePages } from "./pages.js"

export interface DecoderOptions {
  readonly limits: DecodeLimits
  readonly objectId: string | undefined
  readonly cache: DeltaCache | undefined
}

// Positions of chunk fields in the frame, for faults found after the header checks.
const FLAGS_AT = Wire.FIELDS_OFFSET + 1
const SEQ_AT = Wire.FIELDS_OFFSET + 4
const ORIGINAL_AT = Wire.FIELDS_OFFSET + 8

/** A wire-level error as the fault this decoder throws (its reason kept as the fault's kind). */
const asFault = (e: unknown): unknown =>
  e instanceof WireError.FrameError ? new FrameFault(e.offset, e.detail, e.reason) : e

export class Decoder {
  /**
   * Framing, checksums and the size bound before buffering. Frames within one pushed piece are
   * views of it (a piece must not be written to after `push`); a frame split over pieces is joined
   * once, when complete.
   */
  private readonly wire: Wire.Decoder
  /** Bytes copied to join frames that arrived in pieces: at most once per byte. */
  joined = 0
  private header: StreamHeader | undefined
  private base: Version | undefined
  /** Output allowed beyond the ratio: one declared chunk, plus the base version a delta rebuilds. */
  private slack = 0
  private seq = 0
  private total = 0
  private nextPage = 0
  private readonly window = new Map<number, Uint8Array>()
  private readonly kept: Array<Buffer> = []
  private readonly chunkDigests: Array<Uint8Array> = []
  private readonly fingerprints: Array<Int32Array> = []
  /** Bytes of output kept to become the object's next base (only with an object id and a cache). */
  keptBytes = 0
  private done = false

  constructor(private readonly options: DecoderOptions) {
    this.wire = Wire.decoder(format, { maxPayload: START_PAYLOAD_SIZE, check: (h) => this.check(h) })
  }

  /** Consumes `bytes`; returns the chunks that became complete, in order. Throws `FrameFault`. */
  push(bytes: Uint8Array): Array<Buffer> {
    if (bytes.length === 0) return []
    if (this.done) throw new FrameFault(this.wire.offset, "data after the end frame")
    this.wire.write(bytes)
    const out: Array<Buffer> = []
    for (;;) {
      let f: Wire.Frame | undefined
      try {
        f = this.wire.next()
      } catch (e) {
        throw asFault(e)
      }
      if (f === undefined) break
      if (f.owned) this.joined += HEADER_SIZE + f.payload.length
      let step: Buffer | null
      try {
        step = this.step(f)
      } catch (e) {
        throw e instanceof FrameFault ? e.shift(f.offset) : e
      }
      if (step !== null) out.push(step)
      if (this.done) {
        if (this.wire.buffered > 0) throw new FrameFault(this.wire.position, "data after the end frame")
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
    if (!this.done) throw new FrameFault(this.wire.offset, "stream truncated (no end frame)", "Truncated")
  }

  /** Checks a frame header before its payload is buffered: the frame sequence and a chunk's sizes. */
  private check(h: Wire.Header): WireError.FrameError | undefined {
    try {
      this.checkHeader(h)
      return undefined
    } catch (e) {
      if (!(e instanceof FrameFault)) throw e
      return new WireError.FrameError({
        protocol: format.protocol,
        reason: e.kind,
        offset: h.offset + e.offset,
        detail: e.reason,
      })
    }
  }

  private checkHeader(h: Wire.Header): void {
    if (this.header === undefined) {
      if (h.type !== FRAME_START) throw new FrameFault(3, `frame type ${h.type} before the stream header`)
      return
    }
    if (h.type === FRAME_START) throw new FrameFault(3, "a second stream header")
    // An end frame's size is readEndFrame's to check: maxPayload already bounds what is buffered.
    if (h.type === FRAME_END) return
    // Bounded before the payload is buffered: it is at most a little over the declared chunk size.
    readChunkHeader(h.fields, h.length, this.header)
  }

  /** One frame: a chunk, or null (a stream header or end frame). */
  private step(f: Wire.Frame): Buffer | null {
    if (this.header === undefined) {
      const h = readStreamHeader(f.payload, this.options.limits)
      if (h.baseDigest !== undefined) {
        const v = this.options.objectId === undefined ? undefined : this.options.cache?.peek(this.options.objectId)
        if (v === undefined)
          throw new FrameFault(HEADER_SIZE + 12, "delta stream but no base version of this object is cached")
        if (Buffer.compare(v.digest, h.baseDigest) !== 0)
          throw new FrameFault(HEADER_SIZE + 12, "cached base version differs from the sender's")
        this.base = v
      }
      this.header = h
      this.slack = h.maxChunkSize + (this.base?.size ?? 0)
      this.wire.maxPayload = Math.max(END_PAYLOAD_SIZE, maxEncoded(innerBound(h.maxChunkSize, h.pageShift)))
      return null
    }
    if (f.type === FRAME_END) {
      this.end(this.header, f.payload)
      return null
    }
    const h = readChunkHeader(f.fields, f.payload.length, this.header)
    return this.chunk(this.header, h, f.payload, f.owned, f.offset + HEADER_SIZE + f.payload.length)
  }

  private end(header: StreamHeader, payload: Buffer): void {
    const P = HEADER_SIZE
    const e = readEndFrame(payload)
    if (e.chunkCount !== this.seq) throw new FrameFault(P, `end frame counts ${e.chunkCount} chunks, got ${this.seq}`)
    if (e.totalSize !== this.total)
      throw new FrameFault(P + 4, `end frame counts ${e.totalSize} bytes, got ${this.total}`)
    const digest = digestOf(Buffer.concat(this.chunkDigests))
    if (Buffer.compare(digest, e.digest) !== 0)
      throw new FrameFault(P + 12, "end-to-end digest mismatch", "BadChecksum")
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
      else cache.refuse(objectId, this.total)
    }
  }

  /** Refuses a chunk that would take the output over the transfer's budget. */
  private budget(h: ChunkHeader, received: number): void {
    const { maxSize, maxRatio } = this.options.limits
    const after = this.total + h.originalSize
    if (!(after <= maxSize))
      throw new LimitFault(
        ORIGINAL_AT,
        "maxSize",
        after,
        maxSize,
        h.seq,
        `chunk ${h.seq} would bring the output to ${after} bytes, over the transfer's maxSize ${maxSize}`,
      )
    // Everything received up to the end of this frame: what this output comes from.
    const allowed = Math.floor(maxRatio * received + this.slack)
    if (!(after <= allowed))
      throw new LimitFault(
        ORIGINAL_AT,
        "maxRatio",
        after,
        allowed,
        h.seq,
        `chunk ${h.seq} would bring the output to ${after} bytes from ${received} encoded bytes, over maxRatio ${maxRatio} x ${received} + ${this.slack} bytes of slack = ${allowed}`,
      )
  }

  /** Checks one chunk frame and its budget (before anything is decompressed), then decodes it. */
  private chunk(header: StreamHeader, h: ChunkHeader, payload: Buffer, fresh: boolean, received: number): Buffer {
    if (h.seq !== this.seq) throw new FrameFault(SEQ_AT, `chunk sequence ${h.seq}, expected ${this.seq}`)
    this.budget(h, received)
    const base =
      h.flags & CHUNK_FLAG_DELTA && this.base ? sliceVersion(this.base, this.total, h.originalSize) : undefined
    if (h.flags & CHUNK_FLAG_DICT && base === undefined)
      throw new FrameFault(FLAGS_AT, "dictionary chunk past the end of the base")
    const dict = h.flags & CHUNK_FLAG_DICT ? base : undefined
    // A joined payload is already this decoder's own copy; a view of the caller's piece is not.
    const inner =
      h.codec === Codec.none && fresh ? payload : decompress(h.codec, payload, h.innerSize, HEADER_SIZE, dict)
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
        at: HEADER_SIZE,
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
    if (cache !== undefined && this.options.objectId !== undefined && cache.fits(this.keptBytes + chunk.length)) {
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
