/**
 * Throughput predictors behind one interface: last value, EWMA, harmonic mean of the last N
 * samples (the usual baseline in throughput prediction) and, in `Lstm`, an ONNX LSTM. Every
 * predictor forecasts 1 s and 5 s ahead with an 80 % interval.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import { EPS, logSpread, Z80 } from "./internal/features.js"

/**
 * A forecast of the mean throughput (bytes per second) of the one-second interval ending
 * `horizonS` seconds after the last sample, with an 80 % interval `[lower, upper]`.
 *
 * @since 0.1.0
 */
export interface Forecast {
  readonly horizonS: number
  readonly mean: number
  readonly lower: number
  readonly upper: number
}

/**
 * A prediction: both horizons, which predictor produced it, and whether it is degraded (the
 * configured predictor could not answer and a fallback did, or there is no history yet).
 *
 * @since 0.1.0
 */
export interface Prediction {
  readonly oneSecond: Forecast
  readonly fiveSeconds: Forecast
  readonly predictor: string
  readonly status: "ok" | "degraded"
  /** Why the prediction is degraded. */
  readonly reason?: string | undefined
}

/**
 * A throughput predictor. `predict` takes one-second samples oldest first (bytes per second)
 * and never fails: predictors that can break (the LSTM) fall back and say so in `status`.
 *
 * @since 0.1.0
 */
export interface Predictor {
  readonly name: string
  readonly predict: (samples: ArrayLike<number>) => Effect.Effect<Prediction>
}

/**
 * A predictor whose work is synchronous (the baselines), so benchmarks and fallbacks can call it
 * without an Effect runtime.
 *
 * @since 0.1.0
 */
export interface SyncPredictor extends Predictor {
  readonly predictSync: (samples: ArrayLike<number>) => Prediction
}

/** Number of most recent samples the baselines use for their spread estimate. */
const SPREAD_WINDOW = 20

const forecast = (horizonS: number, mean: number, spread: number): Forecast => {
  // Random-walk widening: the spread of a one-second step grows with the square root of the horizon.
  const k = Z80 * spread * Math.sqrt(horizonS)
  return {
    horizonS,
    mean,
    lower: Math.max(0, (mean + EPS) * Math.exp(-k) - EPS),
    upper: (mean + EPS) * Math.exp(k) - EPS,
  }
}

const empty = (name: string): Prediction => ({
  oneSecond: { horizonS: 1, mean: 0, lower: 0, upper: 0 },
  fiveSeconds: { horizonS: 5, mean: 0, lower: 0, upper: 0 },
  predictor: name,
  status: "degraded",
  reason: "no history",
})

const fromPoint = (name: string, point: (xs: ArrayLike<number>) => number): SyncPredictor => {
  const predictSync = (xs: ArrayLike<number>): Prediction => {
    if (xs.length === 0) return empty(name)
    const mean = point(xs)
    const tail = xs.length > SPREAD_WINDOW ? Array.prototype.slice.call(xs, -SPREAD_WINDOW) : xs
    const spread = logSpread(tail)
    return {
      oneSecond: forecast(1, mean, spread),
      fiveSeconds: forecast(5, mean, spread),
      predictor: name,
      status: "ok",
    }
  }
  return { name, predictSync, predict: (xs) => Effect.sync(() => predictSync(xs)) }
}

/**
 * Predicts the last sample for every horizon.
 *
 * @since 0.1.0
 */
export const lastValue = (): SyncPredictor => fromPoint("last-value", (xs) => xs[xs.length - 1]!)

/**
 * Exponentially weighted moving average over the whole history, oldest first:
 * `m ← alpha·x + (1 − alpha)·m`, seeded with the oldest sample.
 *
 * @since 0.1.0
 */
export const ewma = (alpha = 0.3): SyncPredictor => {
  if (!(alpha > 0 && alpha <= 1)) throw new RangeError("alpha must be in (0, 1]")
  return fromPoint(`ewma(${alpha})`, (xs) => {
    let m = xs[0]!
    for (let i = 1; i < xs.length; i++) m = alpha * xs[i]! + (1 - alpha) * m
    return m
  })
}

/**
 * Harmonic mean of the last `n` samples (fewer if the history is shorter). Zero samples count as
 * one packet per second (1500 B/s) so a single outage drags the estimate down without making it 0.
 *
 * @since 0.1.0
 */
export const harmonicMean = (n = 5): SyncPredictor => {
  if (!Number.isInteger(n) || n < 1) throw new RangeError("n must be a positive integer")
  return fromPoint(`harmonic-mean(${n})`, (xs) => {
    const k = Math.min(n, xs.length)
    let s = 0
    for (let i = xs.length - k; i < xs.length; i++) s += 1 / Math.max(xs[i]!, EPS)
    return k / s
  })
}

/**
 * Picks, at each call, the candidate with the lowest mean absolute percentage error on the
 * history itself: each candidate re-predicts each of the last `lookback` one-step-ahead samples
 * from the samples before it. Stateless (no per-link bookkeeping) and cheap for baselines.
 * The chosen predictor's name is reported as `best(<name>)`.
 *
 * @since 0.1.0
 */
export const bestOf = (
  candidates: ReadonlyArray<SyncPredictor>,
  options: { readonly lookback?: number } = {},
): SyncPredictor => {
  if (candidates.length === 0) throw new RangeError("bestOf needs at least one candidate")
  const lookback = options.lookback ?? 10
  const name = `best(${candidates.map((c) => c.name).join(", ")})`
  const predictSync = (xs: ArrayLike<number>): Prediction => {
    const arr = Array.prototype.slice.call(xs) as Array<number>
    let best = candidates[0]!
    let bestErr = Number.POSITIVE_INFINITY
    const from = Math.max(1, arr.length - lookback)
    for (const c of candidates) {
      let err = 0
      for (let t = from; t < arr.length; t++) {
        const y = arr[t]!
        err += Math.abs(c.predictSync(arr.slice(0, t)).oneSecond.mean - y) / Math.max(y, EPS)
      }
      if (err < bestErr) {
        bestErr = err
        best = c
      }
    }
    const p = best.predictSync(arr)
    return { ...p, predictor: `best(${best.name})` }
  }
  return { name, predictSync, predict: (xs) => Effect.sync(() => predictSync(xs)) }
}

/**
 * Names of the baselines, for settings. `best` is {@link bestOf} over the other three.
 *
 * @since 0.1.0
 */
export type BaselineName = "last-value" | "ewma" | "harmonic-mean" | "best"

/**
 * Builds a baseline by name.
 *
 * @since 0.1.0
 */
export const baseline = (
  name: BaselineName,
  options: { readonly harmonicN?: number; readonly ewmaAlpha?: number } = {},
): SyncPredictor =>
  name === "last-value"
    ? lastValue()
    : name === "ewma"
      ? ewma(options.ewmaAlpha)
      : name === "harmonic-mean"
        ? harmonicMean(options.harmonicN)
        : bestOf([lastValue(), ewma(options.ewmaAlpha), harmonicMean(options.harmonicN)])

/**
 * Marks a prediction as degraded, keeping its numbers.
 *
 * @since 0.1.0
 */
export const degrade = (p: Prediction, reason: string): Prediction => ({ ...p, status: "degraded", reason })
