/**
 * Bytes as a socket might deliver them: the framed-protocol decoders must give the same frames
 * however a stream is cut into reads.
 *
 * @since 0.1.0
 */

/**
 * `bytes` cut at `cuts` (each taken modulo `bytes.length + 1`, duplicates dropped, in order):
 * the pieces in order, views on `bytes`, concatenating to it. A cut at 0 or at the end gives an
 * empty piece, a read a decoder must also take (fast-check draws `cuts` as arbitrary naturals).
 *
 * @example
 * ```ts
 * import { splitAt } from "@novacron/testing"
 *
 * const pieces = splitAt(Buffer.from("abcdef"), [2, 4])
 * // [ "ab", "cd", "ef" ]
 * ```
 *
 * @since 0.1.0
 * @category bytes
 */
export const splitAt = (bytes: Uint8Array, cuts: ReadonlyArray<number>): Array<Buffer> => {
  const whole = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const points = [...new Set(cuts.map((c) => c % (whole.length + 1)))].sort((a, b) => a - b)
  const out: Array<Buffer> = []
  let prev = 0
  for (const p of [...points, whole.length]) {
    out.push(whole.subarray(prev, p))
    prev = p
  }
  return out
}
