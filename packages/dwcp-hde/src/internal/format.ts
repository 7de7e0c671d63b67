// Wire format, version 2. All integers little-endian.
//
// stream header (28 B): "NHDE" | version u8 | flags u8 (bit0: delta base) | pageShift u8 | 0 u8
//   | maxChunkSize u32 | dedupWindowPages u32 | baseDigest [8] | crc32(bytes 0..24) u32
// chunk frame (24 B + payload): type u8 = 1 | codec u8 | flags u8 (PAGED 1, DELTA 2, DICT 4)
//   | level u8 | seq u32
//   | originalSize u32 | innerSize u32 | encodedSize u32 | crc32(header 0..20 ++ payload) u32
// end frame (28 B): type u8 = 2 | 0 0 0 | chunkCount u32 | totalSize u64 | digest [8]
//   | crc32(bytes 0..24) u32
// digest = XXH64 over the concatenated chunk digests; a chunk digest is XXH64 over the XXH64 of
// each of its pages (the page hashes also serve as dedup fingerprints), so workers hash chunks
// in parallel and the sequential part is 8 bytes per chunk. XXH64 (the content checksum of zstd
// frames) catches corruption and coding errors; authenticity is the transport's job (TLS).
// Version 1 used SHA-256 in the same places, at four times the CPU per byte.
import { crc32 } from "node:zlib"

export const MAGIC = 0x4544484e // "NHDE" read as u32 LE
export const VERSION = 2
export const STREAM_HEADER_SIZE = 28
export const CHUNK_HEADER_SIZE = 24
export const END_FRAME_SIZE = 28
export const FRAME_CHUNK = 1
export const FRAME_END = 2
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

/** Thrown inside the synchronous parsers; turned into `FrameError` at the Effect boundary. */
export class FrameFault extends Error {
  constructor(
    readonly offset: number,
    readonly reason: string,
  ) {
    super(`bad frame at byte ${offset}: ${reason}`)
  }

  /** The same fault `base` bytes further on: parsers report offsets within their frame. */
  shift(base: number): FrameFault {
    return new FrameFault(this.offset + base, this.reason)
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
  readonly crc: number
}

export interface EndFrame {
  readonly chunkCount: number
  readonly totalSize: number
  readonly digest: Uint8Array
}

export const writeStreamHeader = (h: StreamHeader): Buffer => {
  const b = Buffer.alloc(STREAM_HEADER_SIZE)
  b.writeUInt32LE(MAGIC, 0)
  b[4] = VERSION
  b[5] = h.baseDigest ? STREAM_FLAG_BASE : 0
  b[6] = h.pageShift
  b.writeUInt32LE(h.maxChunkSize, 8)
  b.writeUInt32LE(h.dedupWindowPages, 12)
  if (h.baseDigest) b.set(h.baseDigest, 16)
  b.writeUInt32LE(crc32(b.subarray(0, 24)), 24)
  return b
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

export const readStreamHeader = (b: Uint8Array, at: number, limits: DecodeLimits): StreamHeader => {
  if (b.length - at < STREAM_HEADER_SIZE) throw new FrameFault(at, "truncated stream header")
  const v = Buffer.from(b.buffer, b.byteOffset + at, STREAM_HEADER_SIZE)
  if (v.readUInt32LE(0) !== MAGIC) throw new FrameFault(at, "not an HDE stream (bad magic)")
  if (v[4] !== VERSION) throw new FrameFault(at + 4, `unsupported version ${v[4]}`)
  if (v.readUInt32LE(24) !== crc32(v.subarray(0, 24))) throw new FrameFault(at, "stream header checksum mismatch")
  const flags = v.readUInt8(5)
  if ((flags & ~STREAM_FLAG_BASE) !== 0) throw new FrameFault(at + 5, `unknown stream flags ${flags}`)
  const pageShift = v.readUInt8(6)
  if (pageShift < 9 || pageShift > 16) throw new FrameFault(at + 6, `page shift ${pageShift} out of 9..16`)
  const maxChunkSize = v.readUInt32LE(8)
  if (maxChunkSize === 0) throw new FrameFault(at + 8, "declared chunk size 0")
  // Written as "not within" so that a NaN limit refuses everything instead of nothing.
  if (!(maxChunkSize <= limits.maxChunkSize))
    throw new LimitFault(
      at + 8,
      "maxChunkSize",
      maxChunkSize,
      limits.maxChunkSize,
      undefined,
      `declared chunk size ${maxChunkSize} over the limit maxChunkSize ${limits.maxChunkSize}`,
    )
  const dedupWindowPages = v.readUInt32LE(12)
  // In bytes: the decoder keeps that many pages of output, and a page may be 64 KiB.
  const window = dedupWindowPages * 2 ** pageShift
  if (!(window <= limits.maxDedupWindow))
    throw new LimitFault(
      at + 12,
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
    baseDigest: flags & STREAM_FLAG_BASE ? Uint8Array.from(v.subarray(16, 24)) : undefined,
  }
}

export const writeChunkHeader = (h: Omit<ChunkHeader, "crc">, payload: Uint8Array): Buffer => {
  const b = Buffer.alloc(CHUNK_HEADER_SIZE)
  b[0] = FRAME_CHUNK
  b[1] = h.codec
  b[2] = h.flags
  b[3] = h.level
  b.writeUInt32LE(h.seq, 4)
  b.writeUInt32LE(h.originalSize, 8)
  b.writeUInt32LE(h.innerSize, 12)
  b.writeUInt32LE(h.encodedSize, 16)
  b.writeUInt32LE(crc32(payload, crc32(b.subarray(0, 20))), 20)
  return b
}

/** Upper bound of a page stream's size for `originalSize` bytes: tags, aux words and data. */
export const innerBound = (originalSize: number, pageShift: number): number => {
  const pages = Math.ceil(originalSize / 2 ** pageShift)
  return originalSize + pages * 5
}

/** Parses and bounds-checks a chunk header (not the payload: that needs the whole frame). */
export const readChunkHeader = (b: Uint8Array, at: number, stream: StreamHeader): ChunkHeader => {
  if (b.length - at < CHUNK_HEADER_SIZE) throw new FrameFault(at, "truncated chunk header")
  const v = Buffer.from(b.buffer, b.byteOffset + at, CHUNK_HEADER_SIZE)
  const codec = v.readUInt8(1)
  if (codecName(codec) === undefined) throw new FrameFault(at + 1, `unknown codec id ${codec}`)
  const flags = v.readUInt8(2)
  if ((flags & ~(CHUNK_FLAG_PAGED | CHUNK_FLAG_DELTA | CHUNK_FLAG_DICT)) !== 0)
    throw new FrameFault(at + 2, `unknown chunk flags ${flags}`)
  if (flags & CHUNK_FLAG_DICT && (!(flags & CHUNK_FLAG_DELTA) || codec !== Codec.zstd))
    throw new FrameFault(at + 2, "dictionary flag without a zstd delta chunk")
  if (flags & CHUNK_FLAG_DELTA && !(flags & (CHUNK_FLAG_PAGED | CHUNK_FLAG_DICT)))
    throw new FrameFault(at + 2, "delta flag without page stream")
  if (flags & CHUNK_FLAG_DELTA && stream.baseDigest === undefined)
    throw new FrameFault(at + 2, "delta chunk in a stream without a base")
  const originalSize = v.readUInt32LE(8)
  if (originalSize === 0 || originalSize > stream.maxChunkSize)
    throw new FrameFault(at + 8, `original size ${originalSize} outside 1..${stream.maxChunkSize}`)
  const innerSize = v.readUInt32LE(12)
  const maxInner = flags & CHUNK_FLAG_PAGED ? innerBound(originalSize, stream.pageShift) : originalSize
  if (innerSize === 0 || innerSize > maxInner || (!(flags & CHUNK_FLAG_PAGED) && innerSize !== originalSize))
    throw new FrameFault(at + 12, `inner size ${innerSize} inconsistent with original size ${originalSize}`)
  const encodedSize = v.readUInt32LE(16)
  // A compressor never needs much more than its input ("none" exactly it); anything larger is forged.
  const maxEncoded = innerSize + (innerSize >>> 7) + 1024
  if (encodedSize === 0 || encodedSize > maxEncoded || (codec === Codec.none && encodedSize !== innerSize))
    throw new FrameFault(at + 16, `encoded size ${encodedSize} inconsistent with inner size ${innerSize}`)
  return {
    codec,
    flags,
    level: v.readUInt8(3),
    seq: v.readUInt32LE(4),
    originalSize,
    innerSize,
    encodedSize,
    crc: v.readUInt32LE(20),
  }
}

export const writeEndFrame = (e: EndFrame): Buffer => {
  const b = Buffer.alloc(END_FRAME_SIZE)
  b[0] = FRAME_END
  b.writeUInt32LE(e.chunkCount, 4)
  b.writeBigUInt64LE(BigInt(e.totalSize), 8)
  b.set(e.digest, 16)
  b.writeUInt32LE(crc32(b.subarray(0, 24)), 24)
  return b
}

export const readEndFrame = (b: Uint8Array, at: number): EndFrame => {
  if (b.length - at < END_FRAME_SIZE) throw new FrameFault(at, "truncated end frame")
  const v = Buffer.from(b.buffer, b.byteOffset + at, END_FRAME_SIZE)
  if (v[1] !== 0 || v[2] !== 0 || v[3] !== 0) throw new FrameFault(at + 1, "reserved end-frame bytes not zero")
  if (v.readUInt32LE(24) !== crc32(v.subarray(0, 24))) throw new FrameFault(at, "end frame checksum mismatch")
  const total = v.readBigUInt64LE(8)
  if (total > BigInt(Number.MAX_SAFE_INTEGER)) throw new FrameFault(at + 8, "total size out of range")
  return { chunkCount: v.readUInt32LE(4), totalSize: Number(total), digest: Uint8Array.from(v.subarray(16, 24)) }
}
