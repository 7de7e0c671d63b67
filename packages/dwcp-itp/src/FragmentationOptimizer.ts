/**
 * The placement optimiser the ML engine serves: among the policy's best-ranked hosts (the top
 * `optimizer_top_k`), it takes the one whose expected GPU fragmentation grows least if the
 * workload goes there (FGD, Weng et al., ATC 2023, for the workload mix seen so far), and keeps
 * the policy's order on ties. Over binpack it keeps packing but stops splitting the GPU that a
 * common shape still fits; over the fragmentation policy it changes nothing (same score).
 *
 * @since 0.2.0
 */
import { Effect, Option } from "effect"
import type { RankedHost } from "./Explanation.js"
import type { Optimizer } from "./Placement.js"

/**
 * One decision the optimiser was asked for: the policy's host and the chosen one, each with the
 * fragmentation growth (milli-GPUs) placing there causes.
 *
 * @since 0.2.0
 * @category models
 */
export interface Decision {
  readonly workload: string
  readonly policy: { readonly host: string; readonly fragmentation: number }
  readonly chosen: { readonly host: string; readonly fragmentation: number }
  /** The optimiser overrode the policy (`chosen.host !== policy.host`). */
  readonly overrode: boolean
}

/**
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** Called with each decision (e.g. to record the optimiser's effect as metrics). */
  readonly onDecision?: ((decision: Decision) => Effect.Effect<void>) | undefined
}

/**
 * The name explanations record (`explanation.optimizer.name`) when this optimiser overrode the policy.
 *
 * @since 0.2.0
 * @category constants
 */
export const name = "fgd-rerank"

// Deltas closer than this are ties (they are sums of products of shares and milli-GPUs).
const EPSILON = 1e-6

/**
 * Picks the host of `ranking` (best first) with the least fragmentation growth; ties keep the
 * policy's order, so with nothing to tell apart (no GPUs) the policy's choice stands.
 *
 * @since 0.2.0
 * @category scoring
 */
export const pick = (
  ranking: ReadonlyArray<RankedHost>,
  fragmentationDelta: (host: string) => number | undefined,
): { readonly policy: Decision["policy"]; readonly chosen: Decision["chosen"] } | undefined => {
  const first = ranking[0]
  if (first === undefined) return undefined
  const policy = { host: first.host, fragmentation: fragmentationDelta(first.host) ?? 0 }
  let chosen = policy
  for (let i = 1; i < ranking.length; i++) {
    const host = ranking[i]!.host
    const delta = fragmentationDelta(host)
    if (delta !== undefined && delta < chosen.fragmentation - EPSILON) chosen = { host, fragmentation: delta }
  }
  return { policy, chosen }
}

/**
 * The optimiser, to install with `Placement.setOptimizer`.
 *
 * @example
 * ```ts
 * import { FragmentationOptimizer, Placement } from "@novacron/dwcp-itp"
 * import { Effect, Schema } from "effect"
 *
 * const program = Effect.gen(function* () {
 *   const settings = Schema.decodeUnknownSync(Placement.PlacementSettings)({ placement: { policy: "binpack" } })
 *   const placement = yield* Placement.make(settings)
 *   yield* placement.setOptimizer(FragmentationOptimizer.make())
 *   yield* placement.join({ id: "h1", cpuMilli: 32000, memoryMib: 65536, gpu: { model: "T4", count: 2 } })
 *   const placed = yield* placement.place({ id: "vm-1", cpuMilli: 2000, memoryMib: 4096, gpuMilli: 500 })
 *   console.log(placed.allocation.host) // "h1"
 * })
 *
 * Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (options: Options = {}): Optimizer => ({
  name,
  choose: (request, ranking, context) =>
    Effect.suspend(() => {
      const r = pick(ranking, context.fragmentationDelta)
      if (r === undefined) return Effect.succeed(Option.none<string>())
      const overrode = r.chosen.host !== r.policy.host
      const decided = options.onDecision?.({ workload: request.id, ...r, overrode }) ?? Effect.void
      return Effect.as(decided, overrode ? Option.some(r.chosen.host) : Option.none<string>())
    }),
})
