/**
 * The node's VM capacity in the cluster state: every `interval` (and so within one interval of a
 * start or stop) the node writes `capacity/<node id>` (`ClusterState.capacity`) under a lease, so placement on any node reads
 * what each host can still run, and a node that dies drops out when its lease runs out.
 *
 * @since 0.1.0
 */
import { ClusterState, StateStore } from "@novacron/dwcp-ass"
import { Duration, Effect, Layer, Schedule } from "effect"
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
 * Publishes this node's capacity until the scope closes (then the lease is revoked and the key
 * goes). A failed write is logged and retried on the next tick; a lost lease (the state store was
 * unreachable for longer than its TTL) is granted anew.
 *
 * @since 0.1.0
 * @category layers
 */
export const publish = (
  node: string,
  interval: Duration.DurationInput,
): Layer.Layer<never, never, VmManager | StateStore.StateStore> =>
  Layer.scopedDiscard(
    Effect.gen(function* () {
      const store = yield* StateStore.StateStore
      const every = Duration.decode(interval)
      // Three missed ticks before a node counts as gone.
      const ttl = Duration.times(every, 3)
      const round = Effect.scoped(
        Effect.gen(function* () {
          const lease = yield* store.lease(ttl)
          while (yield* lease.valid) {
            yield* snapshot(node).pipe(
              Effect.flatMap((c) => ClusterState.capacity.put(node, c, { lease })),
              Effect.catchAll((e) =>
                Effect.logWarning(`vm: capacity not published to the cluster state: ${e.message}`),
              ),
            )
            yield* Effect.sleep(every)
          }
        }),
      )
      yield* round.pipe(
        Effect.catchAll((e) => Effect.logWarning(`vm: capacity lease: ${e.message}`)),
        Effect.repeat(Schedule.spaced(every)),
        Effect.provideService(StateStore.StateStore, store),
        Effect.forkScoped,
      )
    }),
  )
