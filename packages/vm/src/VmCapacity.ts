/**
 * The node's VM capacity in the cluster state: every `interval` (and so within one interval of a
 * start or stop) a background job writes `capacity/<node id>` (`ClusterState.capacity`) under a
 * lease, so placement on any node reads what each host can still run, and a node that dies drops
 * out when its lease runs out.
 *
 * @since 0.1.0
 */
import { ClusterState, StateStore } from "@novacron/dwcp-ass"
import { BackgroundJobs, Component } from "@novacron/init"
import { Duration, Effect, ExecutionStrategy, Exit, Layer, Option, Ref, Schedule, Scope } from "effect"
import { VmManager } from "./VmManager.js"

const snapshot = (node: string) =>
  Effect.gen(function* () {
    const m = yield* VmManager
    const capacity = yield* m.capacity
    const info = yield* Effect.either(m.info)
    const now = yield* Effect.clockWith((c) => c.currentTimeMillis)
    return {
      node,
      ...capacity,
      accel: info._tag === "Right" ? info.right.accel : null,
      updated_at: now,
    } satisfies ClusterState.NodeCapacity
  })

/**
 * The `capacity-report` background job: each run writes this node's capacity under a lease it
 * holds in the current scope (revoked when the scope closes, so the key goes at once). A lease that
 * lapsed (the state store was unreachable for longer than its TTL, three intervals) is granted anew
 * at the next run; a failed run is the job supervisor's to log and count.
 *
 * @since 0.1.0
 * @category jobs
 */
export const job = (
  node: string,
  interval: Duration.DurationInput,
): Effect.Effect<BackgroundJobs.Job<VmManager>, never, StateStore.StateStore | Scope.Scope> =>
  Effect.gen(function* () {
    const store = yield* StateStore.StateStore
    const outer = yield* Effect.scope
    const every = Duration.decode(interval)
    // Three missed runs before a node counts as gone.
    const ttl = Duration.times(every, 3)
    const held = yield* Ref.make<
      Option.Option<{ readonly lease: StateStore.Lease; readonly scope: Scope.CloseableScope }>
    >(Option.none())
    const lease = Effect.gen(function* () {
      const current = yield* Ref.get(held)
      if (Option.isSome(current) && (yield* current.value.lease.valid)) return current.value.lease
      if (Option.isSome(current)) {
        yield* Ref.set(held, Option.none())
        // Revoking a lapsed lease may fail on an unreachable store: it is gone either way.
        yield* Scope.close(current.value.scope, Exit.void).pipe(Effect.timeout(ttl), Effect.ignore)
      }
      const scope = yield* Scope.fork(outer, ExecutionStrategy.sequential)
      const granted = yield* store.lease(ttl).pipe(
        Scope.extend(scope),
        Effect.onError(() => Scope.close(scope, Exit.void)),
      )
      yield* Ref.set(held, Option.some({ lease: granted, scope }))
      return granted
    })
    return {
      name: "capacity-report",
      description: `this node's VM capacity in the cluster state (capacity/${node}), under a lease`,
      schedule: Schedule.spaced(every),
      run: Effect.gen(function* () {
        const l = yield* lease
        const c = yield* snapshot(node)
        yield* ClusterState.capacity.put(node, c, { lease: l })
      }).pipe(Effect.provideService(StateStore.StateStore, store)),
    } satisfies BackgroundJobs.Job<VmManager>
  })

/**
 * Starts the {@link job} on the node's background jobs until the scope closes.
 *
 * @since 0.1.0
 * @category layers
 */
export const publish = (
  node: string,
  interval: Duration.DurationInput,
): Layer.Layer<never, BackgroundJobs.DuplicateJob, VmManager | StateStore.StateStore | BackgroundJobs.BackgroundJobs> =>
  Layer.scopedDiscard(
    Effect.gen(function* () {
      const jobs = yield* BackgroundJobs.BackgroundJobs
      yield* jobs.start(yield* job(node, interval))
    }),
  )

/**
 * The `capacity-report` component (post-init): the job on the node's background jobs. Needs the
 * VM manager, the cluster state and the background jobs.
 *
 * @example
 * ```ts
 * import { VmCapacity } from "@novacron/vm"
 *
 * const spec = VmCapacity.component("node-1", "10 seconds")
 * console.log(spec.name) // "capacity-report"
 * ```
 *
 * @since 0.1.0
 * @category components
 */
export const component = (node: string, interval: Duration.DurationInput) =>
  Component.spec({
    name: "capacity-report",
    description: "this node's VM capacity in the cluster state, on a background job",
    layer: publish(node, interval),
    expectedDuration: "1 millis",
  })
