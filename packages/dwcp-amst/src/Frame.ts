/**
 * The AMST wire format. Every frame is a 40-byte header followed by `length` payload bytes:
 *
 * | bytes | field |
 * | --- | --- |
 * | 0..2 | magic `0xA5 0x7D` |
 * | 2 | version (1) |
 * | 3 | type ({@link FrameType}) |
 * | 4..20 | transfer id (16 bytes) |
 * | 20..24 | sequence number (chunk index), u32 BE |
 * | 24..32 | byte offset in the transfer, u64 BE |
 * | 32..36 | payload length, u32 BE |
 * | 36..40 | CRC-32 of header bytes 0..36 and the payload |
 *
 * Control frames (`HELLO`, `WELCOME`, `FIN`, `DONE`, `ERROR`) carry a JSON payload; `DATA` carries
 * the chunk; `ACK` (chunk `seq` received), `CREDIT` (`offset` = bytes written in order, so the
 * sender may send up to `offset + window`) and `BYE` carry nothing.
 *
 * @since 0.1.0
 */
import { crc32 } from "node:zlib"
import { Data } from "effect"

/**
 * Frame type codes.
 *
 * @since 0.1.0
 */
export const FrameType = {
  HELLO: 1,
  WELCOME: 2,
  DATA: 3,
  ACK: 4,
  FIN: 5,
  DONE: 6,
  ERROR: 7,
  BYE: 8,
  CREDIT: 9,
} as const

/**
 * @since 0.1.0
 */
export type FrameType = (typeof FrameType)[keyof typeof FrameType]

/**
 * Current protocol version.
 *
 * @since 0.1.0
 */
export const VERSION = 1

/**
 * Header size in bytes.
 *
 * @since 0.1.0
 */
export const HEADER_SIZE = 40

const MAGIC0 = 0xa5
const MAGIC1 = 0x7d
const knownTypes = new Set<number>(Object.values(FrameType))

/**
 * A decoded frame.
 *
 * @since 0.1.0
 */
export interface Frame {
  readonly type: FrameType
  /** 16 bytes. */
  readonly transferId: Buffer
  readonly seq: number
  readonly offset: number
  readonly payload: Buffer
  /** Set by the decoder: byte offset in the connection where this frame starts. */
  readonly at?: number
}

/**
 * A frame that could not be decoded. `offset` is the byte offset in the connection's stream where
 * the bad frame starts; the connection that produced it is closed.
 *
 * @since 0.1.0
 */
export class FrameError extends Data.TaggedError("FrameError")<{
  readonly offset: number
  readonly reason: "bad-magic" | "bad-version" | "bad-type" | "too-large" | "bad-checksum" | "bad-payload"
  readonly message: string
}> {}

/**
 * Encodes a frame. The payload is referenced, not copied: the header and payload are returned as
 * two buffers for a vectored write.
 *
 * @since 0.1.0
 */
export const encode = (frame: Frame): readonly [Buffer, Buffer] => {
  // Zeroed: a transfer id shorter than 16 bytes is padded with zeros.
  const h = Buffer.alloc(HEADER_SIZE)
  h[0] = MAGIC0
  h[1] = MAGIC1
  h[2] = VERSION
  h[3] = frame.type
  frame.transferId.copy(h, 4, 0, 16)
  h.writeUInt32BE(frame.seq >>> 0, 20)
  h.writeBigUInt64BE(BigInt(frame.offset), 24)
  h.writeUInt32BE(frame.payload.length, 32)
  h.writeUInt32BE(crc32(frame.payload, crc32(h.subarray(0, 36))), 36)
  return [h, frame.payload]
}

/**
 * Encodes a frame into one buffer (copies the payload).
 *
 * @since 0.1.0
 */
export const encodeToBuffer = (frame: Frame): Buffer => Buffer.concat(encode(frame))

/**
 * Incremental decoder for one connection. Feed it what the socket delivers; it returns whole
 * frames and throws {@link FrameError} on the first malformed one (the decoder is then unusable).
 *
 * @since 0.1.0
 */
export class Decoder {
  private pieces: Array<Buffer> = []
  private pending = 0
  /** Bytes of the connection consumed by complete frames so far. */
  private consumed = 0
  private failed: FrameError | undefined

  /**
   * @param maxPayload largest payload accepted; a receiver raises it once a stream is admitted.
   */
  constructor(public maxPayload: number) {}

  /**
   * Appends bytes and returns the frames completed by them.
   *
   * @throws FrameError
   */
  push(chunk: Buffer): Array<Frame> {
    if (this.failed) throw this.failed
    this.pieces.push(chunk)
    this.pending += chunk.length
    const out: Array<Frame> = []
    for (;;) {
      if (this.pending < HEADER_SIZE) return out
      const head = this.peek(HEADER_SIZE)
      const length = this.checkHeader(head)
      const total = HEADER_SIZE + length
      if (this.pending < total) return out
      const whole = this.take(total)
      const payload = whole.subarray(HEADER_SIZE)
      const expected = whole.readUInt32BE(36)
      if (crc32(payload, crc32(whole.subarray(0, 36))) !== expected) {
        this.fail("bad-checksum", `checksum mismatch in frame at offset ${this.consumed}`)
      }
      out.push({
        type: whole[3] as FrameType,
        transferId: whole.subarray(4, 20),
        seq: whole.readUInt32BE(20),
        offset: Number(whole.readBigUInt64BE(24)),
        payload,
        at: this.consumed,
      })
      this.consumed += total
    }
  }

  /** Bytes received but not yet part of a complete frame. */
  get buffered(): number {
    return this.pending
  }

  /** Byte offset in the connection where the next frame starts. */
  get position(): number {
    return this.consumed
  }

  private checkHeader(h: Buffer): number {
    if (h[0] !== MAGIC0 || h[1] !== MAGIC1) this.fail("bad-magic", `bad magic at offset ${this.consumed}`)
    if (h[2] !== VERSION) this.fail("bad-version", `unsupported version ${h[2]} at offset ${this.consumed}`)
    if (!knownTypes.has(h[3]!)) this.fail("bad-type", `unknown frame type ${h[3]} at offset ${this.consumed}`)
    const length = h.readUInt32BE(32)
    if (length > this.maxPayload) {
      this.fail("too-large", `frame at offset ${this.consumed} claims ${length} bytes, limit ${this.maxPayload}`)
    }
    const offset = h.readBigUInt64BE(24)
    if (offset > BigInt(Number.MAX_SAFE_INTEGER)) this.fail("bad-payload", `offset out of range at ${this.consumed}`)
    return length
  }

  private fail(reason: FrameError["reason"], message: string): never {
    this.failed = new FrameError({ offset: this.consumed, reason, message })
    this.pieces = []
    this.pending = 0
    throw this.failed
  }

  private peek(n: number): Buffer {
    const first = this.pieces[0]!
    if (first.length >= n) return first.subarray(0, n)
    this.pieces = [Buffer.concat(this.pieces)]
    return this.pieces[0]!.subarray(0, n)
  }

  private take(n: number): Buffer {
    let first = this.pieces[0]!
    if (first.length < n) {
      this.pieces = [Buffer.concat(this.pieces)]
      first = this.pieces[0]!
    }
    if (first.length === n) this.pieces.shift()
    else this.pieces[0] = first.subarray(n)
    this.pending -= n
    return first.subarray(0, n)
  }
}

/**
 * Decodes a control frame's JSON payload, failing with a {@link FrameError} at `offset`.
 *
 * @since 0.1.0
 */
export const parseJson = (frame: Frame, offset: number): unknown => {
  try {
    return JSON.parse(frame.payload.toString("utf8"))
  } catch {
    throw new FrameError({ offset, reason: "bad-payload", message: `control frame at offset ${offset} is not JSON` })
  }
}
