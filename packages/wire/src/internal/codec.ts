// The frame codec. Synchronous and outside Effect: it runs once per socket read on the hot path
// (AMST moves GB/s), where an Effect per frame would cost more than the framing itself.
import { crc32 } from "node:zlib"
import type { DecodeResult, DecoderOptions, Format, Frame, Header } from "../Wire.js"
import { FrameError } from "../WireError.js"

/** Bytes before the protocol's fields: magic u16, version u8, type u8, payload length u32. */
export const PREFIX = 8
export const MAX_LENGTH = 2 ** 32 - 1

export const headerSize = (format: Format): number => PREFIX + format.fieldsSize + 4

export const validateFormat = (format: Format): Format => {
  const { magic, version, fieldsSize } = format
  if (!Number.isInteger(magic) || magic < 0 || magic > 0xffff) throw new RangeError(`magic ${magic} is not a u16`)
  if (!Number.isInteger(version) || version < 0 || version > 0xff)
    throw new RangeError(`version ${version} is not a u8`)
  if (!Number.isInteger(fieldsSize) || fieldsSize < 0) throw new RangeError(`fieldsSize ${fieldsSize} is not a size`)
  return format
}

const writeHeader = (
  format: Format,
  h: Buffer,
  type: number,
  payload: Uint8Array,
  writeFields: ((header: Buffer, at: number) => void) | undefined,
): void => {
  if (!Number.isInteger(type) || type < 0 || type > 255) throw new RangeError(`frame type ${type} out of range`)
  if (payload.byteLength > MAX_LENGTH) throw new RangeError(`payload of ${payload.byteLength} bytes over 2^32 - 1`)
  h.writeUInt16BE(format.magic, 0)
  h[2] = format.version
  h[3] = type
  h.writeUInt32BE(payload.byteLength, 4)
  if (writeFields !== undefined) writeFields(h, PREFIX)
  const end = PREFIX + format.fieldsSize
  h.writeUInt32BE(crc32(payload, crc32(h.subarray(0, end))), end)
}

export const encodeHeader = (
  format: Format,
  type: number,
  payload: Uint8Array,
  writeFields?: (header: Buffer, at: number) => void,
): Buffer => {
  // Zeroed: fields a protocol leaves unwritten are zero, not old heap bytes.
  const h = Buffer.alloc(headerSize(format))
  writeHeader(format, h, type, payload, writeFields)
  return h
}

export const encode = (
  format: Format,
  type: number,
  payload: Uint8Array,
  writeFields?: (header: Buffer, at: number) => void,
): Buffer => {
  const size = headerSize(format)
  const out = Buffer.alloc(size + payload.byteLength)
  writeHeader(format, out.subarray(0, size), type, payload, writeFields)
  out.set(payload, size)
  return out
}

const hex = (n: number) => `0x${n.toString(16)}`

export class Decoder {
  /** Received bytes not decoded yet: the caller's chunks (views), consumed from the front. */
  private chunks: Array<Buffer> = []
  private pending = 0
  /** Stream offset of the first buffered byte. */
  private start = 0
  private failed: FrameError | undefined
  private header: (Header & { readonly head: Buffer }) | undefined
  private readonly size: number
  private readonly copy: boolean
  private readonly check: ((header: Header) => FrameError | undefined) | undefined
  private readonly limitName: string
  maxPayload: number

  constructor(
    readonly format: Format,
    options: DecoderOptions,
  ) {
    this.size = headerSize(format)
    this.maxPayload = options.maxPayload
    this.copy = options.copy === true
    this.check = options.check
    this.limitName = options.limitName ?? "the limit"
  }

  /** Bytes received so far. */
  get offset(): number {
    return this.start + this.pending
  }

  /** Stream offset where the next frame (or the one being received) starts. */
  get position(): number {
    return this.header === undefined ? this.start : this.header.offset
  }

  /** Bytes held: a partial frame, or frames not read yet. */
  get buffered(): number {
    return this.header === undefined ? this.pending : this.pending + this.size
  }

  get error(): FrameError | undefined {
    return this.failed
  }

  write(chunk: Uint8Array): void {
    if (this.failed !== undefined || chunk.byteLength === 0) return
    this.chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))
    this.pending += chunk.byteLength
  }

  next(): Frame | undefined {
    if (this.failed !== undefined) throw this.failed
    let header = this.header
    if (header === undefined) {
      if (this.pending < this.size) return undefined
      const offset = this.start
      const head = this.take(this.size, this.copy).bytes
      header = this.parseHeader(head, offset)
      this.header = header
    }
    if (this.pending < header.length) return undefined
    this.header = undefined
    const { bytes: payload, owned } = this.take(header.length, this.copy)
    const end = this.size - 4
    const actual = crc32(payload, crc32(header.head.subarray(0, end)))
    const expected = header.head.readUInt32BE(end)
    if (actual !== expected) {
      const detail = `checksum ${hex(actual)}, header says ${hex(expected)}`
      throw this.fail("BadChecksum", header.offset + end, detail, hex(expected), hex(actual))
    }
    return { type: header.type, fields: header.fields, payload, offset: header.offset, owned }
  }

  push(chunk: Uint8Array): DecodeResult {
    this.write(chunk)
    const frames: Array<Frame> = []
    try {
      for (let f = this.next(); f !== undefined; f = this.next()) frames.push(f)
      return { frames }
    } catch (e) {
      if (e instanceof FrameError) return { frames, error: e }
      throw e
    }
  }

  end(): FrameError | undefined {
    if (this.failed !== undefined) return this.failed
    const header = this.header
    if (header === undefined && this.pending === 0) return undefined
    const detail =
      header === undefined
        ? `stream ended inside a frame header (${this.pending} of ${this.size} bytes)`
        : `stream ended inside a payload (${this.pending} of ${header.length} bytes)`
    return this.fail("Truncated", header?.offset ?? this.start, detail)
  }

  fail(
    reason: FrameError["reason"],
    offset: number,
    detail: string,
    expected?: number | string,
    actual?: number | string,
  ): FrameError {
    return this.failWith(new FrameError({ protocol: this.format.protocol, reason, offset, detail, expected, actual }))
  }

  /** Stops decoding for good with `error` (also a protocol's own, found in a payload): later calls return it. */
  failWith(error: FrameError): FrameError {
    this.failed = error
    this.chunks = []
    this.pending = 0
    this.header = undefined
    return error
  }

  private parseHeader(head: Buffer, offset: number): Header & { readonly head: Buffer } {
    const { magic, version, isType } = this.format
    const m = head.readUInt16BE(0)
    if (m !== magic) throw this.fail("BadMagic", offset, `magic ${hex(m)}, expected ${hex(magic)}`, magic, m)
    const v = head[2] as number
    if (v !== version) throw this.fail("BadVersion", offset + 2, `version ${v}, expected ${version}`, version, v)
    const type = head[3] as number
    if (isType !== undefined && !isType(type)) throw this.fail("BadType", offset + 3, `unknown frame type ${type}`)
    const length = head.readUInt32BE(4)
    if (length > this.maxPayload) {
      const detail = `payload length ${length} exceeds ${this.limitName} ${this.maxPayload}`
      throw this.fail("TooLarge", offset + 4, detail, this.maxPayload, length)
    }
    const header = { type, fields: head.subarray(PREFIX, PREFIX + this.format.fieldsSize), length, offset, head }
    const refused = this.check?.(header)
    if (refused !== undefined) throw this.failWith(refused)
    return header
  }

  /** The next `n` bytes: a view of one chunk when it holds them all (unless `copy`), else one copy. */
  private take(n: number, copy: boolean): { readonly bytes: Buffer; readonly owned: boolean } {
    this.pending -= n
    this.start += n
    const first = this.chunks[0]
    if (!copy && first !== undefined && first.length >= n) {
      if (first.length === n) this.chunks.shift()
      else this.chunks[0] = first.subarray(n)
      return { bytes: first.subarray(0, n), owned: false }
    }
    // One copy of exactly this frame's bytes, however many reads they came in.
    const parts: Array<Buffer> = []
    let filled = 0
    while (filled < n) {
      const c = this.chunks[0] as Buffer
      const k = Math.min(c.length, n - filled)
      parts.push(c.subarray(0, k))
      filled += k
      if (k === c.length) this.chunks.shift()
      else this.chunks[0] = c.subarray(k)
    }
    return { bytes: Buffer.concat(parts, n), owned: true }
  }
}
