/**
 * Workload requirements and the allocations made for them.
 *
 * @since 0.1.0
 */
import type { DomainLevel } from "./Host.js"

/**
 * A label selector: every key must be present with the given value.
 *
 * @since 0.1.0
 */
export type Selector = Readonly<Record<string, string>>

/**
 * Required (anti-)affinity: the host's domain at `level` must (must not) already run a
 * workload matching `selector`.
 *
 * @since 0.1.0
 */
export interface AffinityTerm {
  readonly selector: Selector
  readonly level: DomainLevel
}

/**
 * Spread across failure domains: after placement, the number of workloads matching
 * `selector` (default: the workload's own labels) in the chosen domain may exceed the least
 * loaded domain of that level by at most `maxSkew`.
 *
 * @since 0.1.0
 */
export interface SpreadTerm {
  readonly level: DomainLevel
  readonly maxSkew: number
  readonly selector?: Selector | undefined
}

/**
 * What a workload (a VM, a container, a task) needs.
 *
 * @since 0.1.0
 */
export interface WorkloadRequest {
  readonly id: string
  readonly cpuMilli: number
  readonly memoryMib: number
  /**
   * GPU demand in milli-GPU: 0 none, 1..999 a share of one GPU, a multiple of 1000 that many
   * whole GPUs.
   */
  readonly gpuMilli?: number | undefined
  /** Acceptable GPU models; empty or absent: any. */
  readonly gpuModels?: ReadonlyArray<string> | undefined
  readonly labels?: Selector | undefined
  /** Host labels the host must carry. */
  readonly nodeSelector?: Selector | undefined
  readonly affinity?: ReadonlyArray<AffinityTerm> | undefined
  readonly antiAffinity?: ReadonlyArray<AffinityTerm> | undefined
  readonly spread?: ReadonlyArray<SpreadTerm> | undefined
  /** Workload ids to stay close to (network distance); a soft preference. */
  readonly near?: ReadonlyArray<string> | undefined
}

/**
 * Where a workload runs and what it holds there.
 *
 * @since 0.1.0
 */
export interface Allocation {
  readonly workload: string
  readonly host: string
  readonly cpuMilli: number
  readonly memoryMib: number
  /** GPU index on the host and the milli-GPU held on it. */
  readonly gpus: ReadonlyArray<{ readonly index: number; readonly milli: number }>
}
