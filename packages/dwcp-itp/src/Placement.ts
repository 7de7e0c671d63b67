/**
 * The placement service: the {@link Scheduler} behind a lock, with settings from the `dwcp`
 * section (`enable_v3_placement`), topology change events, metrics and an optional optimiser hook
 * (for the ML engine) that may pick among the best-ranked hosts.
 *
 * @since 0.1.0
 */
import {
  Context,
  Effect,
  Either,
  Layer,
  Metric,
  MetricBoundaries,
  Option,
  PubSub,
  Schema,
  type Scope,
  Stream,
} from "effect"
import type { Explanation, RankedHost } from "./Explanation.js"
import type { HostSpec, HostUsage } from "./Host.js"
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
import * as Settings from "./PlacementSettings.js"
import type { FilterPlugin, Policy, ScorePlugin } from "./Plugin.js"
import * as Scheduler from "./Scheduler.js"
import type { Allocation, WorkloadRequest } from "./Workload.js"

/**
 * Settings: the `dwcp` keys this package reads, owned by {@link PlacementSettings} (the module):
 * `enable_v3_placement` and the `placement` section.
 *
 * @since 0.1.0
 */
export const PlacementSettings = Settings.PlacementSettings

/**
 * @since 0.1.0
 */
export type PlacementSettings = typeof PlacementSettings.Type

/**
 * Decodes settings from an unknown value (e.g. the parsed `dwcp` section).
 *
 * @since 0.1.0
 */
export const decodeSettings = Schema.decodeUnknown(PlacementSettings)

/**
 * The policy the settings select.
 *
 * @since 0.1.0
 */
export const effectivePolicy = (settings: PlacementSettings): string =>
  settings.placement.policy === "auto"
    ? settings.enable_v3_placement
      ? "fragmentation"
      : "binpack"
    : settings.placement.policy

/**
 * What an optimiser may ask about the decision it is called for (the map is locked meanwhile).
 *
 * @since 0.2.0
 */
export interface OptimizerContext {
  /**
   * Growth of the host's expected GPU fragmentation (FGD, milli-GPUs) if the request went there
   * (see `Scheduler.fragmentationDelta`).
   */
  readonly fragmentationDelta: (host: string) => number | undefined
}

/**
 * An optimiser hook: picks one of the ranked hosts (best first), or `None` to keep the policy's
 * choice. A failure or defect of the hook also keeps the policy's choice.
 *
 * @since 0.1.0
 */
export interface Optimizer {
  readonly name: string
  readonly choose: (
    request: WorkloadRequest,
    ranking: ReadonlyArray<RankedHost>,
    context: OptimizerContext,
  ) => Effect.Effect<Option.Option<string>, unknown>
}

/**
 * A change of the topology map.
 *
 * @since 0.1.0
 */
export type TopologyEvent =
  | { readonly _tag: "HostJoined"; readonly host: HostUsage }
  | { readonly _tag: "HostChanged"; readonly host: HostUsage }
  | { readonly _tag: "HostLeft"; readonly host: string; readonly evicted: ReadonlyArray<Allocation> }

/**
 * Extension points beyond the settings.
 *
 * @since 0.1.0
 */
export interface Extensions {
  readonly filters?: ReadonlyArray<FilterPlugin> | undefined
  readonly scorers?: ReadonlyArray<ScorePlugin> | undefined
  readonly policies?: Readonly<Record<string, Policy>> | undefined
  readonly optimizer?: Optimizer | undefined
}

/**
 * @since 0.1.0
 */
export interface PlacementService {
  /** The default policy in force. */
  readonly policy: string
  readonly join: (spec: HostSpec) => Effect.Effect<HostUsage, InvalidSpec | DuplicateHost>
  readonly update: (spec: HostSpec) => Effect.Effect<HostUsage, InvalidSpec | UnknownHost | CapacityConflict>
  /** Removes a host; returns the allocations it held (evicted). */
  readonly leave: (id: string) => Effect.Effect<ReadonlyArray<Allocation>, UnknownHost>
  readonly setDistance: (a: string, b: string, distance: number) => Effect.Effect<void, UnknownHost | InvalidSpec>
  readonly distance: (a: string, b: string) => Effect.Effect<number, UnknownHost>
  readonly place: (
    request: WorkloadRequest,
    options?: Scheduler.DecideOptions,
  ) => Effect.Effect<Scheduler.Placed, InvalidSpec | DuplicateWorkload | UnknownPolicy | Unschedulable | UnknownHost>
  /** Scores without committing: what `place` would do now. */
  readonly explain: (
    request: WorkloadRequest,
    options?: Scheduler.DecideOptions,
  ) => Effect.Effect<Explanation, InvalidSpec | DuplicateWorkload | UnknownPolicy | Unschedulable>
  readonly release: (workload: string) => Effect.Effect<Allocation, UnknownWorkload>
  readonly allocation: (workload: string) => Effect.Effect<Option.Option<Allocation>>
  readonly hosts: Effect.Effect<ReadonlyArray<HostUsage>>
  readonly utilisation: Effect.Effect<{ readonly cpu: number; readonly memory: number; readonly gpu: number }>
  /** Installs (or with `undefined` removes) the optimiser hook. */
  readonly setOptimizer: (optimizer: Optimizer | undefined) => Effect.Effect<void>
  /** Subscribes (in the Scope) to topology changes; the stream sees every change after this returns. */
  readonly changes: Effect.Effect<Stream.Stream<TopologyEvent>, never, Scope.Scope>
}

/**
 * @since 0.1.0
 */
export class Placement extends Context.Tag("@novacron/dwcp-itp/Placement")<Placement, PlacementService>() {}

/**
 * Decision latency, in seconds (Prometheus base unit); buckets from 10 µs to ~80 ms.
 *
 * @since 0.1.0
 */
export const decisionLatency = Metric.histogram(
  "novacron_dwcp_itp_decision_seconds",
  MetricBoundaries.exponential({ start: 0.00001, factor: 2, count: 14 }),
  "Seconds a placement decision took",
)

/**
 * Placements by outcome (`placed` / `unschedulable`).
 *
 * @since 0.1.0
 */
export const decisions = Metric.counter("novacron_dwcp_itp_decisions_total", {
  description: "Placement decisions by outcome",
  incremental: true,
})

/**
 * Builds the service; the change feed is shut down with the scope.
 *
 * @since 0.1.0
 */
export const make = (
  settings: PlacementSettings,
  extensions: Extensions = {},
): Effect.Effect<PlacementService, never, Scope.Scope> =>
  Effect.gen(function* () {
    const policy = effectivePolicy(settings)
    const s = Scheduler.make({
      seed: settings.placement.seed,
      policy,
      fragmentationClasses: settings.placement.fragmentation_classes,
      fragmentationHalfLife: settings.placement.fragmentation_half_life,
      filters: extensions.filters,
      scorers: extensions.scorers,
      policies: extensions.policies,
      top: settings.placement.optimizer_top_k,
    })
    const lock = yield* Effect.makeSemaphore(1)
    const hub = yield* Effect.acquireRelease(PubSub.unbounded<TopologyEvent>(), PubSub.shutdown)
    let optimizer = extensions.optimizer
    const locked = <A, E>(f: () => Either.Either<A, E>) => lock.withPermits(1)(Effect.suspend(() => f()))

    const place: PlacementService["place"] = (request, options) =>
      lock.withPermits(1)(
        Effect.gen(function* () {
          const start = performance.now()
          const evaluation = yield* Effect.suspend(() => s.evaluate(request, options)).pipe(
            Effect.tapError((e) =>
              e._tag === "Unschedulable"
                ? Metric.increment(Metric.tagged(decisions, "outcome", "unschedulable"))
                : Effect.void,
            ),
          )
          let chosen: string | undefined
          const opt = optimizer
          if (opt !== undefined) {
            const context: OptimizerContext = { fragmentationDelta: (host) => s.fragmentationDelta(evaluation, host) }
            const pick = yield* Effect.suspend(() => opt.choose(request, evaluation.explanation.ranking, context)).pipe(
              Effect.catchAllCause((cause) =>
                Effect.logWarning("placement optimiser failed; keeping the policy's choice", cause).pipe(
                  Effect.as(Option.none<string>()),
                ),
              ),
            )
            if (Option.isSome(pick) && pick.value !== evaluation.explanation.chosen) chosen = pick.value
          }
          const placed = yield* Effect.suspend(() => s.commit(evaluation, chosen, chosen && opt?.name))
          yield* decisionLatency(Effect.succeed((performance.now() - start) / 1000))
          yield* Metric.increment(Metric.tagged(decisions, "outcome", "placed"))
          return placed
        }),
      )

    return {
      policy,
      join: (spec) =>
        locked(() => s.join(spec)).pipe(Effect.tap((host) => PubSub.publish(hub, { _tag: "HostJoined", host }))),
      update: (spec) =>
        locked(() => s.update(spec)).pipe(Effect.tap((host) => PubSub.publish(hub, { _tag: "HostChanged", host }))),
      leave: (id) =>
        locked(() => s.leave(id)).pipe(
          Effect.tap((evicted) => PubSub.publish(hub, { _tag: "HostLeft", host: id, evicted })),
        ),
      setDistance: (a, b, d) => locked(() => s.setDistance(a, b, d)),
      distance: (a, b) => locked(() => s.distance(a, b)),
      place,
      explain: (request, options) => locked(() => Either.map(s.evaluate(request, options), (e) => e.explanation)),
      release: (id) => locked(() => s.release(id)),
      allocation: (id) => lock.withPermits(1)(Effect.sync(() => Option.fromNullable(s.allocation(id)))),
      hosts: lock.withPermits(1)(Effect.sync(() => s.hosts())),
      utilisation: lock.withPermits(1)(Effect.sync(() => s.utilisation())),
      setOptimizer: (o) =>
        Effect.sync(() => {
          optimizer = o
        }),
      changes: Effect.map(PubSub.subscribe(hub), (queue) => Stream.fromQueue(queue)),
    }
  })

/**
 * The service as a Layer.
 *
 * @since 0.1.0
 */
export const layer = (settings: PlacementSettings, extensions?: Extensions): Layer.Layer<Placement> =>
  Layer.scoped(Placement, make(settings, extensions))
