/**
 * Hosts of the topology map: resources, GPUs by model, labels and failure domains.
 *
 * @since 0.1.0
 */

/**
 * Failure-domain levels, narrowest first. `host` is always known; the others come from
 * {@link HostSpec.domains} and a host without a value at a level is "unknown" there.
 *
 * @since 0.1.0
 */
export const domainLevels = ["host", "rack", "zone", "region"] as const

/**
 * @since 0.1.0
 */
export type DomainLevel = (typeof domainLevels)[number]

/**
 * A host as it joins (or changes in) the topology map.
 *
 * @since 0.1.0
 */
export interface HostSpec {
  readonly id: string
  /** CPU capacity in milli-cores (1000 = one core). */
  readonly cpuMilli: number
  readonly memoryMib: number
  /** GPUs, all of one model; absent or `count: 0` for a CPU-only host. */
  readonly gpu?: { readonly model: string; readonly count: number } | undefined
  /** Free-form labels, matched by a workload's `nodeSelector`. */
  readonly labels?: Readonly<Record<string, string>> | undefined
  readonly domains?: { readonly rack?: string; readonly zone?: string; readonly region?: string } | undefined
  /** `false` cordons the host: it keeps its workloads but takes no new ones. Default `true`. */
  readonly schedulable?: boolean | undefined
}

/**
 * What a host has left, as seen in a snapshot.
 *
 * @since 0.1.0
 */
export interface HostUsage {
  readonly id: string
  readonly cpuMilli: number
  readonly cpuFree: number
  readonly memoryMib: number
  readonly memoryFree: number
  readonly gpuModel: string | undefined
  /** Free milli-GPU per GPU (1000 = a whole idle GPU). */
  readonly gpuFree: ReadonlyArray<number>
  readonly workloads: number
  readonly schedulable: boolean
}
