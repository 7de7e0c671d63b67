// Wire format, version 3: `@novacron/wire` frames (big-endian, magic "HD") with 16 bytes of
// fields; the wire module checks magic, version, type, length and the CRC-32 over header and payload.
//
// frame header (28 B): magic "HD" u16 | version u8 = 3 | type u8 | payload length u32
//   | fields [16] | crc32(bytes 0..24 ++ payload) u32
// start frame (type 1, fields zero), payload 20 B: flags u8 (bit0: delta base) | pageShift u8 | 0 u16
//   | maxChunkSize u32 | dedupWindowPages u32 | baseDigest [8]
// chunk frame (type 2), fields: codec u8 | flags u8 (PAGED 1, DELTA 2, DICT 4) | level u8 | 0 u8
//   | seq u32 | originalSize u32 | innerSize u32; payload: the encoded chunk (its length is encodedSize)
// end frame (type 3, fields zero), payload 20 B: chunkCount u32 | totalSize u64 | digest [8]
// digest = XXH64 over the concatenated chunk digests; a chunk digest is XXH64 over the XXH64 of
// each of its pages (the page hashes also serve as dedup fingerprints), so workers hash chunks
// in parallel and the sequential part is 8 bytes per chunk. XXH64 (the content checksum of zstd
// frames) catches corruption and coding errors; authenticity is the transport's job (TLS).
// Version 2 had its own little-endian framing ("NHDE"); version 1 used SHA-256 for the digests.
import { Wire, type WireError } from "@novacron/wire"

export const MAGIC = 0x4844 // "HD"
export const VERSION = 3
export const FRAME_START = 1
export const FRAME_CHUNK = 2
export const FRAME_END = 3

export const format: Wire.Format = Wire.format({
  protocol: "hde",
  magic: MAGIC,
  version: VERSION,
  fieldsSize: 16,
  isType: (t) => t >= FRAME_START && t <= FRAME_END,
})

/** Frame header bytes; a chunk's payload starts here. */
export const HEADER_SIZE = 28
/** Where the payload length (the chunk's encoded size) is. */
export const LENGTH_AT = 4
/** Where the fields start. */
const F = Wire.FIELDS_OFFSET
export const START_PAYLOAD_SIZE = 20
export const END_PAYLOAD_SIZE = 20
export const STREAM_HEADER_SIZE = HEADER_SIZE + START_PAYLOAD_SIZE
export const CHUNK_HEADER_SIZE = HEADER_SIZE
export const END_FRAME_SIZE = HEADER_SIZE + END_PAYLOAD_SIZE
export const STREAM_FLAG_BASE = 1
export const CHUNK_FLAG_PAGED = 1
export const CHUNK_FLAG_DELTA = 2
/** zstd payload compressed with the base version of the chunk's range as raw-content dictionary. */
export const CHUNK_FLAG_DICT = 4
export const DIGEST_SIZE = 8

export const Codec = { none: 0, zstd: 1, lz4: 2 } as const
export type CodecName = keyof typeof Codec
export const codecName = (id: number): CodecName | undefined =>
  id === 0 ? "none" : id === 1 ? "zstd" : id === 2 ? "lz4" : undefined

/**
 * Thrown inside the synchronous parsers; turned into the wire module's `FrameError` (with `kind` as
 * its reason) at the Effect boundary.
 */
export class FrameFault extends Error {
  constructor(
    readonly offset: number,
    readonly reason: string,
    readonly kind: WireError.FrameErrorReason = "Malformed",
  ) {
    super(`bad frame at byte ${offset}: ${reason}`)
  }

  /** The same fault `base` bytes further on: parsers report offsets within their frame. */
  shift(base: number): FrameFault {
    return new FrameFault(this.offset + base, this.reason, this.kind)
  }
}

/** The receiver's limits a decoder enforces, by the names of the options that set them. */
export type LimitName = "maxChunkSize" | "maxDedupWindow" | "maxSize" | "maxRatio"

/** A well-formed stream that asks for more than the receiver allows; `LimitError` at the boundary. */
export class LimitFault extends FrameFault {
  constructor(
    offset: number,
    readonly limit: LimitName,
    /** What the stream declares or would reach, in bytes. */
    readonly value: number,
    /** The limit, in bytes. */
    readonly max: number,
    /** Sequence number of the chunk, undefined for the stream header. */
    readonly chunk: number | undefined,
    reason: string,
  ) {
    super(offset, reason)
  }

  override shift(base: number): LimitFault {
    return new LimitFault(this.offset + base, this.limit, this.value, this.max, this.chunk, this.reason)
  }
}

export interface StreamHeader {
  readonly pageShift: number
  readonly maxChunkSize: number
  readonly dedupWindowPages: number
  readonly baseDigest: Uint8Array | undefined
}

export interface ChunkHeader {
  readonly codec: number
  readonly flags: number
  readonly level: number
  readonly seq: number
  readonly originalSize: number
  readonly innerSize: number
  readonly encodedSize: number
}

export interface EndFrame {
  readonly chunkCount: number
  readonly totalSize: number
  readonly digest: Uint8Array
}

export const writeStreamHeader = (h: StreamHeader): Buffer => {
  const p = Buffer.alloc(START_PAYLOAD_SIZE)
  p[0] = h.baseDigest ? STREAM_FLAG_BASE : 0
  p[1] = h.pageShift
  p.writeUInt32BE(h.maxChunkSize, 4)
  p.writeUInt32BE(h.dedupWindowPages, 8)
  if (h.baseDigest) p.set(h.baseDigest, 12)
  return Wire.encode(format, FRAME_START, p)
}

/** Limits a decoder enforces on what a peer declares and sends, whatever the header says. */
export interface DecodeLimits {
  /** Largest chunk size a stream header may declare (bytes). */
  readonly maxChunkSize: number
  /** Largest dedup window a stream header may declare, in bytes at its own page size. */
  readonly maxDedupWindow: number
  /** Most bytes the whole transfer may decode to. */
  readonly maxSize: number
  /**
   * Most output bytes per encoded byte received, beyond a slack of one declared chunk (plus the
   * base version's size for a delta stream). `Infinity`: no ratio check.
   */
  readonly maxRatio: number
}

/** Parses a start frame's payload; faults name offsets within the frame. */
export const readStreamHeader = (payload: Uint8Array, limits: DecodeLimits): StreamHeader => {
  const P = HEADER_SIZE
  if (payload.length !== START_PAYLOAD_SIZE)
    throw new FrameFault(LENGTH_AT, `stream header of ${payload.length} bytes, expected ${START_PAYLOAD_SIZE}`)
  const v = Buffer.from(payload.buffer, payload.byteOffset, START_PAYLOAD_SIZE)
  const flags = v.readUInt8(0)
  if ((flags & ~STREAM_FLAG_BASE) !== 0) throw new FrameFault(P, `unknown stream flags ${flags}`)
  const pageShift = v.readUInt8(1)
  if (pageShift < 9 || pageShift > 16) throw new FrameFault(P + 1, `page shift ${pageShift} out of 9..16`)
  const maxChunkSize = v.readUInt32BE(4)
  if (maxChunkSize === 0) throw new FrameFault(P + 4, "declared chunk size 0")
  // Written as "not within" so that a NaN limit refuses everything instead of nothing.
  if (!(maxChunkSize <= limits.maxChunkSize))
    throw new LimitFault(
      P + 4,
      "maxChunkSize",
      maxChunkSize,
      limits.maxChunkSize,
      undefined,
      `declared chunk size ${maxChunkSize} over the limit maxChunkSize ${limits.maxChunkSize}`,
    )
  const dedupWindowPages = v.readUInt32BE(8)
  // In bytes: the decoder keeps that many pages of output, and a page may be 64 KiB.
  const window = dedupWindowPages * 2 ** pageShift
  if (!(window <= limits.maxDedupWindow))
    throw new LimitFault(
      P + 8,
      "maxDedupWindow",
      window,
      limits.maxDedupWindow,
      undefined,
      `dedup window of ${dedupWindowPages} pages of ${2 ** pageShift} B (${window} B) over the limit maxDedupWindow ${limits.maxDedupWindow} B`,
    )
  return {
    pageShift,
    maxChunkSize,
    dedupWindowPages,
    baseDigest: flags & STREAM_FLAG_BASE ? Uint8Array.from(v.subarray(12, 20)) : undefined,
  }
}

/** A chunk frame's header for `payload` (its length is the encoded size), for a write of `[header, payload]`. */
export const writeChunkHeader = (h: Omit<ChunkHeader, "encodedSize">, payload: Uint8Array): Buffer =>
  Wire.encodeHeader(format, FRAME_CHUNK, payload, (b, at) => {
    b[at] = h.codec
    b[at + 1] = h.flags
    b[at + 2] = h.level
    b.writeUInt32BE(h.seq, at + 4)
    b.writeUInt32BE(h.originalSize, at + 8)
    b.writeUInt32BE(h.innerSize, at + 12)
  })

/** Upper bound of a page stream's size for `originalSize` bytes: tags, aux words and data. */
export const innerBound = (originalSize: number, pageShift: number): number => {
  const pages = Math.ceil(originalSize / 2 ** pageShift)
  return originalSize + pages * 5
}

/**
 * Parses and bounds-checks a chunk frame's fields and payload length (`encodedSize`), before the
 * payload is buffered; faults name offsets within the frame.
 */
export const readChunkHeader = (fields: Buffer, encodedSize: number, stream: StreamHeader): ChunkHeader => {
  const codec = fields.readUInt8(0)
  if (codecName(codec) === undefined) throw new FrameFault(F, `unknown codec id ${codec}`)
  const flags = fields.readUInt8(1)
  if ((flags & ~(CHUNK_FLAG_PAGED | CHUNK_FLAG_DELTA | CHUNK_FLAG_DICT)) !== 0)
    throw new FrameFault(F + 1, `unknown chunk flags ${flags}`)
  if (flags & CHUNK_FLAG_DICT && (!(flags & CHUNK_FLAG_DELTA) || codec !== Codec.zstd))
    throw new FrameFault(F + 1, "dictionary flag without a zstd delta chunk")
  if (flags & CHUNK_FLAG_DELTA && !(flags & (CHUNK_FLAG_PAGED | CHUNK_FLAG_DICT)))
    throw new FrameFault(F + 1, "delta flag without page stream")
  if (flags & CHUNK_FLAG_DELTA && stream.baseDigest === undefined)
    throw new FrameFault(F + 1, "delta chunk in a stream without a base")
  const originalSize = fields.readUInt32BE(8)
  if (originalSize === 0 || originalSize > stream.maxChunkSize)
    throw new FrameFault(F + 8, `original size ${originalSize} outside 1..${stream.maxChunkSize}`)
  const innerSize = fields.readUInt32BE(12)
  const maxInner = flags & CHUNK_FLAG_PAGED ? innerBound(originalSize, stream.pageShift) : originalSize
  if (innerSize === 0 || innerSize > maxInner || (!(flags & CHUNK_FLAG_PAGED) && innerSize !== originalSize))
    throw new FrameFault(F + 12, `inner size ${innerSize} inconsistent with original size ${originalSize}`)
  if (encodedSize === 0 || encodedSize > maxEncoded(innerSize) || (codec === Codec.none && encodedSize !== innerSize))
    throw new FrameFault(LENGTH_AT, `encoded size ${encodedSize} inconsistent with inner size ${innerSize}`)
  return { codec, flags, level: fields.readUInt8(2), seq: fields.readUInt32BE(4), originalSize, innerSize, encodedSize }
}

/** A compressor never needs much more than its input ("none" exactly it); anything larger is forged. */
export const maxEncoded = (innerSize: number): number => innerSize + (innerSize >>> 7) + 1024

export const writeEndFrame = (e: EndFrame): Buffer => {
  const p = Buffer.alloc(END_PAYLOAD_SIZE)
  p.writeUInt32BE(e.chunkCount, 0)
  p.writeBigUInt64BE(BigInt(e.totalSize), 4)
  p.set(e.digest, 12)
  return Wire.encode(format, FRAME_END, p)
}

/** Parses an end frame's payload; faults name offsets within the frame. */
export const readEndFrame = (payload: Uint8Array): EndFrame => {
  if (payload.length !== END_PAYLOAD_SIZE)
    throw new FrameFault(LENGTH_AT, `end frame of ${payload.length} bytes, expected ${END_PAYLOAD_SIZE}`)
  const v = Buffer.from(payload.buffer, payload.byteOffset, END_PAYLOAD_SIZE)
  const total = v.readBigUInt64BE(4)
  if (total > BigInt(Number.MAX_SAFE_INTEGER)) throw new FrameFault(HEADER_SIZE + 4, "total size out of range")
  return { chunkCount: v.readUInt32BE(0), totalSize: Number(total), digest: Uint8Array.from(v.subarray(12, 20)) }
}
