/**
 * Application-level pacing: a token bucket whose rate can change while data flows, usable from Effect
 * (`take`) and as a Node `Transform` stream, so a transfer can be held to a share of the link or to a
 * bandwidth allocation.
 *
 * @since 0.1.0
 */

import { Transform } from "node:stream"
import { Clock, Duration, Effect, Runtime, Stream } from "effect"
import { TokenBucket } from "./internal/tokenBucket.js"

/**
 * Pacer settings: `rate` in bytes per second (`Infinity` = unlimited; values below 1 are raised to 1),
 * `burst` in bytes (default: 10 ms at the current rate, at least 16 KiB, following rate changes).
 *
 * @since 0.1.0
 */
export interface Options {
  readonly rate: number
  readonly burst?: number | undefined
}

/**
 * What a pacer has let through.
 *
 * @since 0.1.0
 */
export interface Stats {
  readonly bytes: number
  readonly rate: number
  readonly burst: number
}

/**
 * A token-bucket pacer. One pacer shared by several streams holds their sum to the rate.
 *
 * @since 0.1.0
 */
export interface Pacer {
  /** Waits until `bytes` may be sent (large amounts are paced in burst-sized pieces). */
  readonly take: (bytes: number) => Effect.Effect<void>
  /** Changes the rate (bytes/s); applies from the next burst-sized piece on. */
  readonly setRate: (rate: number) => Effect.Effect<void>
  readonly stats: Effect.Effect<Stats>
}

const nowMs = Effect.map(Clock.currentTimeNanos, (ns) => Number(ns) / 1e6)

/**
 * Creates a pacer. Its time is Effect's `Clock`, so tests can drive it with `TestClock`.
 *
 * @since 0.1.0
 */
export const make = (options: Options): Effect.Effect<Pacer> =>
  Effect.map(nowMs, (start) => {
    const bucket = new TokenBucket(options.rate, options.burst, start)
    const takePiece = (n: number) =>
      Effect.flatMap(nowMs, (now) => {
        const wait = bucket.reserve(n, now)
        return wait > 0 ? Effect.sleep(Duration.millis(wait)) : Effect.void
      })
    const take = (bytes: number): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (bytes <= bucket.piece) return takePiece(bytes)
        const pieces: Array<number> = []
        for (let left = bytes; left > 0; left -= bucket.piece) pieces.push(Math.min(left, bucket.piece))
        return Effect.forEach(pieces, takePiece, { discard: true })
      })
    return {
      take,
      setRate: (rate) => Effect.flatMap(nowMs, (now) => Effect.sync(() => bucket.setRate(rate, now))),
      stats: Effect.sync(() => ({ bytes: bucket.bytes, rate: bucket.rate, burst: bucket.burst })),
    }
  })

/**
 * A Node `Transform` that lets bytes through at the pacer's rate, splitting chunks into pieces of at most
 * 64 KiB so that a rate change takes hold quickly. Waits run on the calling fiber's runtime (and clock).
 * Back-pressure is Node's: a paced transform stops reading when its output is full.
 *
 * @since 0.1.0
 */
export const transform = (pacer: Pacer): Effect.Effect<Transform> =>
  Effect.map(Effect.runtime<never>(), (runtime) => {
    const run = Runtime.runPromise(runtime)
    const maxPiece = 64 * 1024
    return new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        const pieces: Array<Buffer> = []
        for (let off = 0; off < chunk.length; off += maxPiece) pieces.push(chunk.subarray(off, off + maxPiece))
        const next = (i: number): void => {
          if (i === pieces.length) {
            callback()
            return
          }
          const piece = pieces[i] as Buffer
          run(pacer.take(piece.length)).then(
            () => {
              this.push(piece)
              next(i + 1)
            },
            (e: unknown) => callback(e instanceof Error ? e : new Error(String(e))),
          )
        }
        next(0)
      },
    })
  })

/**
 * Keeps the pacer's rate at the latest value of `rates` (bytes/s), e.g. a bandwidth allocation times the
 * share of the link this transfer may use. Runs until `rates` ends.
 *
 * @since 0.1.0
 */
export const follow = <E, R>(pacer: Pacer, rates: Stream.Stream<number, E, R>): Effect.Effect<void, E, R> =>
  Stream.runForEach(rates, pacer.setRate)

/**
 * Bytes per second for `share` (0..1] of a link of `linkBitsPerSecond`.
 *
 * @since 0.1.0
 */
export const shareOf = (linkBitsPerSecond: number, share: number): number =>
  (linkBitsPerSecond / 8) * Math.min(1, Math.max(0, share))
