/**
 * The DWCP payload envelope: `NCDW`, the protocol version (1 or 3), the encoding's name, then the
 * encoded bytes. A receiver picks the decoder by the name, so a v1 node and a v3 node read each
 * other's payloads whenever they share the encoding, and refuse with the name when they do not.
 *
 * @since 0.1.0
 */
import { Data, Effect } from "effect"

/**
 * Protocol versions this build speaks, best first.
 *
 * @since 0.1.0
 */
export const versions = [3, 1] as const

/**
 * @since 0.1.0
 * @category models
 */
export type Version = (typeof versions)[number]

/**
 * @since 0.1.0
 * @category models
 */
export interface Envelope {
  readonly version: number
  readonly encoding: string
  readonly payload: Uint8Array
}

/**
 * Bytes that are not a DWCP envelope: what is wrong and at which byte.
 *
 * @since 0.1.0
 * @category errors
 */
export class EnvelopeError extends Data.TaggedError("EnvelopeError")<{
  readonly reason: string
  readonly offset: number
}> {
  override get message(): string {
    return `bad DWCP envelope at byte ${this.offset}: ${this.reason}`
  }
}

const magic = Buffer.from("NCDW")

/**
 * @since 0.1.0
 * @category encoding
 */
export const encode = (e: Envelope): Uint8Array => {
  const name = Buffer.from(e.encoding, "ascii")
  if (name.length === 0 || name.length > 32) throw new RangeError(`encoding name "${e.encoding}" must be 1..32 bytes`)
  return Buffer.concat([magic, Buffer.from([e.version, name.length]), name, e.payload])
}

/**
 * @since 0.1.0
 * @category decoding
 */
export const decode = (bytes: Uint8Array): Effect.Effect<Envelope, EnvelopeError> =>
  Effect.suspend(() => {
    const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    const fail = (reason: string, offset: number) => Effect.fail(new EnvelopeError({ reason, offset }))
    if (b.length < 6) return fail(`${b.length} bytes, shorter than the 6-byte header`, 0)
    if (!b.subarray(0, 4).equals(magic)) return fail(`magic ${b.subarray(0, 4).toString("hex")}, expected NCDW`, 0)
    const n = b[5]!
    if (n === 0 || n > 32) return fail(`encoding name length ${n}, expected 1..32`, 5)
    if (b.length < 6 + n) return fail(`encoding name runs past the end`, 6)
    const encoding = b.subarray(6, 6 + n).toString("ascii")
    if (!/^[a-z0-9_-]+$/.test(encoding)) return fail(`encoding name ${JSON.stringify(encoding)} is not [a-z0-9_-]`, 6)
    return Effect.succeed({ version: b[4]!, encoding, payload: b.subarray(6 + n) })
  })
