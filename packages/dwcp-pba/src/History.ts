/**
 * Per-link throughput history: a fixed-size ring buffer of samples (bytes per second), one per
 * sample period, fed either with ready samples or with raw byte counts that it bins itself.
 *
 * @since 0.1.0
 */
import { RingBuffer } from "./internal/ring.js"

/**
 * Options of a history buffer.
 *
 * @since 0.1.0
 */
export interface HistoryOptions {
  /** Number of samples kept (the window). */
  readonly window: number
  /** Length of one sample period in milliseconds (the LSTM expects 1000). */
  readonly periodMs: number
}

/**
 * A link's throughput history. Mutable, owned by one link; not shared between fibers without
 * a lock (the `Pba` service serialises access).
 *
 * @since 0.1.0
 */
export interface History {
  readonly window: number
  readonly periodMs: number
  /** Appends one finished sample (bytes per second). Non-finite or negative samples are rejected. */
  readonly push: (bytesPerSecond: number) => void
  /**
   * Records `bytes` delivered at time `atMs` (monotonic milliseconds). Closes every period that
   * ended before `atMs` as a sample; periods with no traffic become zero samples.
   */
  readonly record: (bytes: number, atMs: number) => void
  /** Closes periods up to `nowMs` without adding bytes (call on a timer on idle links). */
  readonly advance: (nowMs: number) => void
  /** Samples, oldest first. */
  readonly samples: () => Float64Array
  /** Number of samples held (at most `window`). */
  readonly size: () => number
}

/**
 * Creates an empty history.
 *
 * @example
 * ```ts
 * import { History } from "@novacron/dwcp-pba"
 * const h = History.make({ window: 20, periodMs: 1000 })
 * h.record(125_000, 100)
 * h.record(125_000, 900)
 * h.advance(1000) // closes [0, 1000): one sample of 250 kB/s
 * h.samples() // Float64Array [250000]
 * ```
 *
 * @since 0.1.0
 */
export const make = (options: HistoryOptions): History => {
  if (!Number.isInteger(options.window) || options.window < 1) throw new RangeError("window must be a positive integer")
  if (!(options.periodMs > 0)) throw new RangeError("periodMs must be positive")
  const ring = new RingBuffer(options.window)
  const perSecond = 1000 / options.periodMs
  let binStart: number | undefined
  let binBytes = 0
  const push = (v: number) => {
    if (!Number.isFinite(v) || v < 0) throw new RangeError(`invalid throughput sample ${v}`)
    ring.push(v)
  }
  const advance = (nowMs: number) => {
    if (binStart === undefined) {
      binStart = Math.floor(nowMs / options.periodMs) * options.periodMs
      return
    }
    // Skip whole idle periods beyond the window at once: they would only push zeros.
    const periods = Math.floor((nowMs - binStart) / options.periodMs)
    if (periods <= 0) return
    ring.push(binBytes * perSecond)
    binBytes = 0
    for (let i = 1; i < Math.min(periods, options.window + 1); i++) ring.push(0)
    binStart += periods * options.periodMs
  }
  return {
    window: options.window,
    periodMs: options.periodMs,
    push,
    record: (bytes, atMs) => {
      if (!Number.isFinite(bytes) || bytes < 0) throw new RangeError(`invalid byte count ${bytes}`)
      advance(atMs)
      binBytes += bytes
    },
    advance,
    samples: () => ring.toArray(),
    size: () => ring.size,
  }
}
