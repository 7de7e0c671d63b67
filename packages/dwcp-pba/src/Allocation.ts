/**
 * Shares a link's predicted capacity among concurrent transfers: deadline reservations first
 * (earliest deadline first within each priority), then weighted max-min fairness within strict
 * priority classes, with each transfer's reservation as its lower bound and its demand as its cap.
 * Capacity a class cannot use passes to the next class. The rates feed AMST's stream count
 * ({@link streamsFor}) and ACP's pacing rate.
 *
 * @since 0.1.0
 */
import type { Prediction } from "./Predictor.js"

/**
 * A transfer competing for a link. Rates are bytes per second.
 *
 * @since 0.1.0
 */
export interface Transfer {
  readonly id: string
  /** Share within its priority class; default 1, must be positive. */
  readonly weight?: number | undefined
  /** Strict priority class, higher served first; default 0. */
  readonly priority?: number | undefined
  /** Most it can use (e.g. its source's own limit); default unlimited. */
  readonly demand?: number | undefined
  /** Bytes left and seconds left: reserves `bytesRemaining / secondsLeft` before fair sharing. */
  readonly deadline?: { readonly bytesRemaining: number; readonly secondsLeft: number } | undefined
}

/**
 * One transfer's rate.
 *
 * @since 0.1.0
 */
export interface Grant {
  readonly id: string
  /** Allocated rate, bytes per second. */
  readonly rate: number
  /** Part of `rate` reserved for its deadline. */
  readonly reserved: number
  /** True when the capacity could not cover the rate its deadline needs. */
  readonly deadlineAtRisk: boolean
}

const lowerBoundedWaterFill = (
  budget: number,
  ws: ReadonlyArray<number>,
  lo: ReadonlyArray<number>,
  hi: ReadonlyArray<number>,
): Array<number> => {
  const at = (lambda: number) => ws.map((w, i) => Math.min(hi[i]!, Math.max(lo[i]!, w * lambda)))
  const sum = (xs: ReadonlyArray<number>) => xs.reduce((a, b) => a + b, 0)
  if (sum(hi) <= budget) return [...hi]
  // f(λ) = Σ clamp(w·λ, lo, hi) is continuous and non-decreasing: bisect for f(λ) = budget,
  // keeping the side that does not over-commit.
  let a = 0
  let b = 1
  while (sum(at(b)) < budget) b *= 2
  for (let k = 0; k < 200 && b - a > b * 1e-15; k++) {
    const mid = (a + b) / 2
    if (sum(at(mid)) <= budget) a = mid
    else b = mid
  }
  return at(a)
}

/**
 * Allocates `capacity` (bytes per second) among `transfers`.
 *
 * Guarantees: rates are non-negative, within each transfer's demand, and sum to at most the
 * capacity; the capacity is used up unless every transfer is at its demand; within a class, a
 * transfer held below its demand gets at least the weight-normalised rate of any other
 * transfer of the class that is above its reservation.
 *
 * @example
 * ```ts
 * import { Allocation } from "@novacron/dwcp-pba"
 * Allocation.allocate(100, [
 *   { id: "a", weight: 3 },
 *   { id: "b", weight: 1 },
 *   { id: "c", demand: 10 },
 * ]) // a ≈ 67.5, b ≈ 22.5, c = 10
 * ```
 *
 * @since 0.1.0
 */
export const allocate = (capacity: number, transfers: ReadonlyArray<Transfer>): ReadonlyArray<Grant> => {
  for (const t of transfers) {
    if (t.weight !== undefined && !(t.weight > 0 && Number.isFinite(t.weight)))
      throw new RangeError(`weight of ${t.id} must be positive`)
    if (t.demand !== undefined && !(t.demand >= 0)) throw new RangeError(`demand of ${t.id} must be >= 0`)
  }
  const cap = Number.isFinite(capacity) && capacity > 0 ? capacity : 0
  const demand = transfers.map((t) => t.demand ?? Number.POSITIVE_INFINITY)
  const need = transfers.map((t, i) => {
    const d = t.deadline
    if (d === undefined) return 0
    const r = d.secondsLeft > 0 ? d.bytesRemaining / d.secondsLeft : d.bytesRemaining > 0 ? Infinity : 0
    return Math.min(demand[i]!, Math.max(0, r))
  })
  // Deadline reservations: priority first, then earliest deadline.
  const reserved = transfers.map(() => 0)
  let free = cap
  const byUrgency = transfers
    .map((_, i) => i)
    .filter((i) => need[i]! > 0)
    .sort(
      (i, j) =>
        (transfers[j]!.priority ?? 0) - (transfers[i]!.priority ?? 0) ||
        transfers[i]!.deadline!.secondsLeft - transfers[j]!.deadline!.secondsLeft,
    )
  for (const i of byUrgency) {
    const r = Math.min(need[i]!, free)
    reserved[i] = r
    free -= r
  }
  const rate = [...reserved]
  const classes = [...new Set(transfers.map((t) => t.priority ?? 0))].sort((a, b) => b - a)
  for (const p of classes) {
    const members = transfers.map((_, i) => i).filter((i) => (transfers[i]!.priority ?? 0) === p)
    const own = members.reduce((s, i) => s + reserved[i]!, 0)
    const filled = lowerBoundedWaterFill(
      free + own,
      members.map((i) => transfers[i]!.weight ?? 1),
      members.map((i) => reserved[i]!),
      members.map((i) => demand[i]!),
    )
    let used = 0
    members.forEach((i, k) => {
      rate[i] = filled[k]!
      used += filled[k]!
    })
    free = Math.max(0, free + own - used)
  }
  return transfers.map((t, i) => ({
    id: t.id,
    rate: rate[i]!,
    reserved: reserved[i]!,
    deadlineAtRisk: reserved[i]! < need[i]! * (1 - 1e-12),
  }))
}

/**
 * Which part of a prediction to treat as the capacity: its mean, or the lower end of its 80 %
 * interval (conservative: fewer deadline misses, less link utilisation).
 *
 * @since 0.1.0
 */
export type CapacityBasis = "mean" | "lower"

/**
 * The capacity to allocate from a prediction, one second ahead.
 *
 * @since 0.1.0
 */
export const capacityOf = (prediction: Prediction, basis: CapacityBasis = "mean"): number =>
  basis === "mean" ? prediction.oneSecond.mean : prediction.oneSecond.lower

/**
 * Number of parallel streams (AMST) that carry `rate` when one stream moves about `perStream`
 * bytes per second, clamped to `[min, max]`.
 *
 * @since 0.1.0
 */
export const streamsFor = (rate: number, options: { perStream: number; min?: number; max?: number }): number => {
  const min = options.min ?? 1
  const max = options.max ?? 64
  const n = options.perStream > 0 ? Math.ceil(rate / options.perStream) : min
  return Math.min(max, Math.max(min, Number.isFinite(n) ? n : max))
}
