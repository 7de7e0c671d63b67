/**
 * The plugin contract of the scheduler, after the Kubernetes scheduling framework: filter
 * plugins remove hosts that cannot take the workload, score plugins rank the rest, and a policy
 * weighs the scores. Plugins are instantiated per scheduler, so they may keep per-decision
 * scratch state in `prepare` without any shared mutable state.
 *
 * @since 0.1.0
 */
import type { HostRecord } from "./internal/state.js"
import type { AffinityTerm, Selector, SpreadTerm, WorkloadRequest } from "./Workload.js"

/**
 * A host as plugins see it. Fields are live state: read them, never write them.
 *
 * @since 0.1.0
 */
export type HostView = Readonly<Omit<HostRecord, "gpuFree" | "domains">> & {
  /** Free milli-GPU per GPU. */
  readonly gpuFree: Readonly<Int32Array>
  /** Domain ids by level: 0 host, 1 rack, 2 zone, 3 region; -1 unknown. */
  readonly domains: Readonly<Int32Array>
}

/**
 * A request, validated and with its GPU demand split out.
 *
 * @since 0.1.0
 */
export interface Requirement {
  readonly request: WorkloadRequest
  readonly id: string
  readonly cpu: number
  readonly mem: number
  /** Total milli-GPU. */
  readonly gpu: number
  /** Whole GPUs (gpu / 1000) or 0. */
  readonly whole: number
  /** Share of one GPU (1..999) or 0. */
  readonly share: number
  /** Acceptable model ids (index = model id), or `null` for any. */
  readonly modelMask: Uint8Array | null
  readonly labels: Selector
  readonly nodeSelector: Selector | undefined
  readonly affinity: ReadonlyArray<AffinityTerm>
  readonly antiAffinity: ReadonlyArray<AffinityTerm>
  readonly spread: ReadonlyArray<SpreadTerm>
  readonly near: ReadonlyArray<string>
}

/**
 * Read access to the cluster for `prepare` hooks.
 *
 * @since 0.1.0
 */
export interface ClusterView {
  readonly live: ReadonlyArray<HostView>
  /** Hosts (by their domain id at a level) of workloads matching a selector. */
  readonly workloadsMatching: (selector: Selector) => ReadonlyArray<{ readonly host: HostView }>
  readonly workloadHost: (workload: string) => HostView | undefined
  readonly distance: (a: HostView, b: HostView) => number
}

/**
 * Removes hosts that cannot take the workload.
 *
 * @since 0.1.0
 */
export interface FilterPlugin {
  readonly name: string
  /** Per-decision precomputation; return `false` when the plugin has nothing to check. */
  readonly prepare?: (req: Requirement, cluster: ClusterView) => boolean
  readonly filter: (host: HostView, req: Requirement) => boolean
}

/**
 * Scores a feasible host, higher is better. Raw scores are min-max normalised to 0..100 across
 * the feasible hosts of one decision before the policy weighs them.
 *
 * @since 0.1.0
 */
export interface ScorePlugin {
  readonly name: string
  /** Per-decision precomputation; return `false` to skip the plugin (it adds nothing). */
  readonly prepare?: (req: Requirement, cluster: ClusterView) => boolean
  readonly score: (host: HostView, req: Requirement) => number
}

/**
 * How a policy chooses GPUs on the chosen host for a shared request: the fullest GPU that
 * fits, the emptiest, or the one that adds the least fragmentation.
 *
 * @since 0.1.0
 */
export type GpuPick = "tightest" | "loosest" | "fragmentation"

/**
 * A policy: weighted score plugins (by name) and a GPU pick rule.
 *
 * @since 0.1.0
 */
export interface Policy {
  readonly name: string
  readonly scorers: ReadonlyArray<{ readonly plugin: string; readonly weight: number }>
  readonly gpuPick: GpuPick
}

/**
 * The built-in policies.
 *
 * - `binpack`: most-allocated first, keeping empty hosts empty.
 * - `spread`: least-allocated first, and away from hosts running workloads with the same labels.
 * - `balanced`: even use of CPU, memory and GPU on a host, then least-allocated.
 * - `fragmentation`: least growth of expected GPU fragmentation for the observed workload mix
 *   (FGD, Weng et al., ATC 2023), ties to the most-allocated host. The weights make the
 *   fragmentation score dominate; binpack only orders hosts it cannot tell apart.
 *
 * Every policy also weighs `NetworkProximity` (active only when the request names `near` workloads).
 *
 * @since 0.1.0
 */
export const policies: Readonly<Record<"binpack" | "spread" | "balanced" | "fragmentation", Policy>> = {
  binpack: {
    name: "binpack",
    scorers: [
      { plugin: "MostAllocated", weight: 1 },
      { plugin: "NetworkProximity", weight: 1 },
    ],
    gpuPick: "tightest",
  },
  spread: {
    name: "spread",
    scorers: [
      { plugin: "LeastAllocated", weight: 1 },
      { plugin: "SelectorSpread", weight: 1 },
      { plugin: "NetworkProximity", weight: 1 },
    ],
    gpuPick: "loosest",
  },
  balanced: {
    name: "balanced",
    scorers: [
      { plugin: "BalancedAllocation", weight: 2 },
      { plugin: "LeastAllocated", weight: 1 },
      { plugin: "NetworkProximity", weight: 1 },
    ],
    gpuPick: "loosest",
  },
  fragmentation: {
    name: "fragmentation",
    scorers: [
      { plugin: "Fragmentation", weight: 100 },
      { plugin: "MostAllocated", weight: 1 },
      { plugin: "NetworkProximity", weight: 1 },
    ],
    gpuPick: "fragmentation",
  },
}

/**
 * Names of the built-in policies.
 *
 * @since 0.1.0
 */
export type PolicyName = keyof typeof policies
