/**
 * The synchronous placement engine: the topology map plus filter-then-score placement. It owns
 * mutable state, so one instance belongs to one owner (the {@link Placement} service wraps it
 * behind a lock). Every method returns an `Either` with a typed error.
 *
 * @since 0.1.0
 */
import type { Either } from "effect"
import type { Explanation } from "./Explanation.js"
import type { HostSpec, HostUsage } from "./Host.js"
import { Engine } from "./internal/engine.js"
import type {
  CapacityConflict,
  DuplicateHost,
  DuplicateWorkload,
  InvalidSpec,
  UnknownHost,
  UnknownPolicy,
  UnknownWorkload,
  Unschedulable,
} from "./PlacementError.js"
import type { FilterPlugin, Policy, Requirement, ScorePlugin } from "./Plugin.js"
import type { Allocation, WorkloadRequest } from "./Workload.js"

/**
 * @since 0.1.0
 */
export interface Options {
  /** Seed of the tie-break order between equally scored hosts. Default 0. */
  readonly seed?: number | undefined
  /** Default policy name. Default `"fragmentation"`. */
  readonly policy?: string | undefined
  /** Workload shapes the fragmentation policy tracks. Default 64. */
  readonly fragmentationClasses?: number | undefined
  /** Half-life, in submissions, of a shape's weight in the target workload. Default 10,000. */
  readonly fragmentationHalfLife?: number | undefined
  /**
   * How shapes weigh in the target workload: `"demand"` (default) by decayed count times
   * `1 + GPUs`, `"count"` by decayed count alone (the FGD paper's popularity).
   */
  readonly fragmentationWeighting?: "demand" | "count" | undefined
  /** Extra filter plugins, run after the built-in ones. */
  readonly filters?: ReadonlyArray<FilterPlugin> | undefined
  /** Extra score plugins, usable by name in policies. */
  readonly scorers?: ReadonlyArray<ScorePlugin> | undefined
  /** Extra or replacing policies. */
  readonly policies?: Readonly<Record<string, Policy>> | undefined
  /** Ranked hosts kept in explanations. Default 5. */
  readonly top?: number | undefined
}

/**
 * Per-decision options.
 *
 * @since 0.1.0
 */
export interface DecideOptions {
  readonly policy?: string | undefined
  /** List the ids of the hosts each filter removed (costs an array per filter). */
  readonly explain?: boolean | undefined
  readonly top?: number | undefined
}

/**
 * A scored, not yet committed, decision.
 *
 * @since 0.1.0
 */
export interface Evaluation {
  readonly requirement: Requirement
  readonly policy: Policy
  readonly explanation: Explanation
}

/**
 * A committed placement.
 *
 * @since 0.1.0
 */
export interface Placed {
  readonly allocation: Allocation
  readonly explanation: Explanation
}

/**
 * @since 0.1.0
 */
export interface Scheduler {
  /** Adds a host to the topology map. */
  readonly join: (spec: HostSpec) => Either.Either<HostUsage, InvalidSpec | DuplicateHost>
  /** Changes a host's capacity, labels, domains or schedulability; capacity held by workloads must remain. */
  readonly update: (spec: HostSpec) => Either.Either<HostUsage, InvalidSpec | UnknownHost | CapacityConflict>
  /** Removes a host; its workloads are evicted and returned. */
  readonly leave: (id: string) => Either.Either<ReadonlyArray<Allocation>, UnknownHost>
  /** Records a measured network distance between two hosts (overrides the domain hierarchy). */
  readonly setDistance: (a: string, b: string, distance: number) => Either.Either<void, UnknownHost | InvalidSpec>
  /** Network distance: measured, else 0 same host, 1 same rack, 2 same zone, 3 same region, 4 otherwise. */
  readonly distance: (a: string, b: string) => Either.Either<number, UnknownHost>
  readonly hosts: () => ReadonlyArray<HostUsage>
  readonly host: (id: string) => HostUsage | undefined
  /** Filters and scores without committing. */
  readonly evaluate: (
    request: WorkloadRequest,
    options?: DecideOptions,
  ) => Either.Either<Evaluation, InvalidSpec | DuplicateWorkload | UnknownPolicy | Unschedulable>
  /** Commits an evaluation on its best host or on `host` (re-checked by every filter if not ranked). */
  readonly commit: (
    evaluation: Evaluation,
    host?: string,
    optimizer?: string,
  ) => Either.Either<Placed, UnknownHost | Unschedulable>
  /**
   * Growth of a host's expected GPU fragmentation (FGD, in milli-GPUs; negative: it shrinks) if
   * the evaluated request went there, for the workload mix the fragmentation policy tracks;
   * `undefined` for a host not in the map. Whatever the evaluation's policy.
   */
  readonly fragmentationDelta: (evaluation: Evaluation, host: string) => number | undefined
  /** Evaluates and commits. */
  readonly place: (
    request: WorkloadRequest,
    options?: DecideOptions,
  ) => Either.Either<Placed, InvalidSpec | DuplicateWorkload | UnknownPolicy | Unschedulable | UnknownHost>
  /** Ends a workload and returns its capacity to its host. */
  readonly release: (workload: string) => Either.Either<Allocation, UnknownWorkload>
  readonly allocation: (workload: string) => Allocation | undefined
  readonly allocations: () => ReadonlyArray<Allocation>
  /** Shares of the cluster's CPU, memory and GPU capacity held by workloads. */
  readonly utilisation: () => { readonly cpu: number; readonly memory: number; readonly gpu: number }
  /** The workload mix the fragmentation policy currently assumes, heaviest shape first. */
  readonly targetWorkload: () => ReadonlyArray<{
    readonly spec: {
      readonly cpu: number
      readonly mem: number
      readonly gpu: number
      readonly models: ReadonlyArray<string>
    }
    readonly share: number
  }>
}

/**
 * Creates an empty scheduler.
 *
 * @example
 * ```ts
 * import { Scheduler } from "@novacron/dwcp-itp"
 * import { Either } from "effect"
 *
 * const s = Scheduler.make({ seed: 1 })
 * s.join({ id: "h1", cpuMilli: 32000, memoryMib: 131072, gpu: { model: "T4", count: 2 } })
 * const placed = s.place({ id: "vm-1", cpuMilli: 4000, memoryMib: 8192, gpuMilli: 500 })
 * if (Either.isRight(placed)) console.log(placed.right.allocation.host) // "h1"
 * ```
 *
 * @since 0.1.0
 */
export const make = (options: Options = {}): Scheduler => {
  const e = new Engine(options)
  return {
    join: (spec) => e.join(spec),
    update: (spec) => e.update(spec),
    leave: (id) => e.leave(id),
    setDistance: (a, b, d) => e.setDistance(a, b, d),
    distance: (a, b) => e.distance(a, b),
    hosts: () => e.hosts(),
    host: (id) => e.host(id),
    evaluate: (r, o) => e.evaluate(r, o),
    commit: (ev, h, opt) => e.commit(ev, h, opt),
    fragmentationDelta: (ev, h) => e.fragmentationDelta(ev, h),
    place: (r, o) => e.place(r, o),
    release: (id) => e.release(id),
    allocation: (id) => e.allocation(id),
    allocations: () => e.allocations(),
    utilisation: () => e.utilisation(),
    targetWorkload: () => e.targetWorkload(),
  }
}
