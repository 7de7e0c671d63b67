/**
 * The AMST wire format: `@novacron/wire` frames with 28 bytes of fields, a 40-byte header followed
 * by `length` payload bytes (integers big-endian):
 *
 * | bytes | field |
 * | --- | --- |
 * | 0..2 | magic `0xA5 0x7D` |
 * | 2 | version (3) |
 * | 3 | type ({@link FrameType}) |
 * | 4..8 | payload length, u32 |
 * | 8..24 | transfer id (16 bytes) |
 * | 24..28 | sequence number (chunk index), u32 |
 * | 28..36 | byte offset in the transfer, u64 |
 * | 36..40 | CRC-32 of header bytes 0..36 and the payload |
 *
 * Control frames (`HELLO`, `WELCOME`, `FIN`, `DONE`, `ERROR`) carry a JSON payload; `DATA` carries
 * the chunk; `ACK` (chunk `seq` received), `CREDIT` (`offset` = bytes written in order, so the
 * sender may send up to `offset + window`) and `BYE` carry nothing.
 *
 * Version 3 (issue 23): `HELLO` names the end-to-end digest's algorithm (`integrity`: `sha256` or
 * `xxh3-64`) and `WELCOME`/`FIN`/`DONE` carry `digest` (was `sha256`); a `FIN` over a token
 * connection carries an HMAC of it. The header is the same as in version 2, so a receiver answers a
 * version-2 sender with a version-2 `ERROR` (code `version`, see {@link encodeForPeer}) instead of
 * dropping it; a version-2 receiver closes a version-3 sender's connection.
 *
 * @since 0.1.0
 */
import { Wire, WireError } from "@novacron/wire"

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
 * Current protocol version (2 since the wire module: the length moved to bytes 4..8; 3 since the
 * digest became negotiable).
 *
 * @since 0.1.0
 */
export const VERSION = 3

/**
 * Oldest version with this header layout: a peer on it can read an `ERROR` saying why it is refused.
 *
 * @since 0.3.0
 */
export const OLDEST_READABLE_VERSION = 2

/**
 * Header size in bytes.
 *
 * @since 0.1.0
 */
export const HEADER_SIZE = 40

/**
 * Where the payload length (u32) is in the header.
 *
 * @since 0.2.0
 */
export const LENGTH_OFFSET = 4

/**
 * Where the transfer offset (u64) is in the header.
 *
 * @since 0.2.0
 */
export const OFFSET_OFFSET = 28

const knownTypes = new Set<number>(Object.values(FrameType))

/**
 * The AMST frame format.
 *
 * @since 0.2.0
 * @category constants
 */
export const format: Wire.Format = Wire.format({
  protocol: "amst",
  magic: 0xa57d,
  version: VERSION,
  fieldsSize: 28,
  isType: (t) => knownTypes.has(t),
})

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
 * A frame that could not be decoded: the wire module's one error. `offset` is the byte of the
 * offending field in the connection's stream; the connection that produced it is closed.
 *
 * @since 0.1.0
 */
export const FrameError = WireError.FrameError

/**
 * @since 0.1.0
 */
export type FrameError = WireError.FrameError

// A transfer id shorter than 16 bytes is padded with zeros (the header starts zeroed).
const fieldsOf = (frame: Frame) => (h: Buffer, at: number) => {
  frame.transferId.copy(h, at, 0, 16)
  h.writeUInt32BE(frame.seq >>> 0, at + 16)
  h.writeBigUInt64BE(BigInt(frame.offset), at + 20)
}

/**
 * Encodes a frame. The payload is referenced, not copied: the header and payload are returned as
 * two buffers for a vectored write.
 *
 * @since 0.1.0
 */
export const encode = (frame: Frame): readonly [Buffer, Buffer] => [
  Wire.encodeHeader(format, frame.type, frame.payload, fieldsOf(frame)),
  frame.payload,
]

/**
 * Encodes a frame in the format of an older peer's `version` (same header layout), so it can be told
 * why it is refused; `undefined` when that version's header differs.
 *
 * @since 0.3.0
 */
export const encodeForPeer = (version: number, frame: Frame): Buffer | undefined => {
  if (!Number.isInteger(version) || version < OLDEST_READABLE_VERSION || version > VERSION) return undefined
  const older = Wire.format({ ...format, version })
  const h = Wire.encodeHeader(older, frame.type, frame.payload, fieldsOf(frame))
  return Buffer.concat([h, frame.payload])
}

/**
 * Encodes a frame into one buffer (copies the payload).
 *
 * @since 0.1.0
 */
export const encodeToBuffer = (frame: Frame): Buffer => Buffer.concat(encode(frame))

const MAX_OFFSET = BigInt(Number.MAX_SAFE_INTEGER)

// Refused from the header, before the payload: a transfer offset a JS number cannot hold exactly.
const checkOffset = (h: Wire.Header): FrameError | undefined =>
  h.fields.readBigUInt64BE(20) > MAX_OFFSET
    ? new FrameError({
        protocol: "amst",
        reason: "Malformed",
        offset: h.offset + OFFSET_OFFSET,
        detail: `transfer offset ${h.fields.readBigUInt64BE(20)} over 2^53 - 1`,
      })
    : undefined

/**
 * Incremental decoder for one connection. Feed it what the socket delivers; it returns whole
 * frames and throws {@link FrameError} on the first malformed one (the decoder is then unusable).
 * A frame within one read is a view of it, not a copy (the receiver's memory bound relies on it).
 *
 * @since 0.1.0
 */
export class Decoder {
  private readonly wire: Wire.Decoder

  /**
   * @param maxPayload largest payload accepted; a receiver raises it once a stream is admitted.
   */
  constructor(maxPayload: number) {
    this.wire = Wire.decoder(format, { maxPayload, check: checkOffset, limitName: "maxFrameSize" })
  }

  get maxPayload(): number {
    return this.wire.maxPayload
  }

  set maxPayload(n: number) {
    this.wire.maxPayload = n
  }

  /**
   * Appends bytes and returns the frames completed by them.
   *
   * @throws FrameError
   */
  push(chunk: Buffer): Array<Frame> {
    const { frames, error } = this.wire.push(chunk)
    if (error !== undefined) throw error
    const out = new Array<Frame>(frames.length)
    for (let i = 0; i < frames.length; i++) {
      const f = frames[i] as Wire.Frame
      out[i] = {
        type: f.type as FrameType,
        transferId: f.fields.subarray(0, 16),
        seq: f.fields.readUInt32BE(16),
        offset: Number(f.fields.readBigUInt64BE(20)),
        payload: f.payload,
        at: f.offset,
      }
    }
    return out
  }

  /** Bytes received but not yet part of a complete frame. */
  get buffered(): number {
    return this.wire.buffered
  }

  /** Byte offset in the connection where the next frame starts. */
  get position(): number {
    return this.wire.position
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
    throw new FrameError({ protocol: "amst", reason: "Malformed", offset, detail: "control frame is not JSON" })
  }
}
