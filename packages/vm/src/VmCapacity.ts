/**
 * The node's VM capacity in the cluster state: every `interval` (and so within one interval of a
 * start or stop) the node writes `capacity/<node id>` under a lease, so placement on any node reads
 * what each host can still run, and a node that dies drops out when its lease runs out.
 *
 * @since 0.1.0
 */
import { Keyspace, StateStore } from "@novacron/dwcp-ass"
import { Duration, Effect, Layer, Schedule, Schema } from "effect"
import { VmManager } from "./VmManager.js"

/**
 * What a node publishes: its VM manager's capacity, the accelerator its guests get, and when.
 *
 * @since 0.1.0
 * @category models
 */
export const NodeCapacity = Schema.Struct({
  node: Schema.String,
  cpus: Schema.Int,
  vcpus_total: Schema.Int,
  vcpus_used: Schema.Int,
  memory_mb_total: Schema.Int,
  memory_mb_reserved: Schema.Int,
  memory_mb_used: Schema.Int,
  disk_mb_free: Schema.Int,
  running: Schema.Int,
  accel: Schema.NullOr(Schema.Literal("kvm", "tcg")),
  updated_at: Schema.Number,
})

/**
 * @since 0.1.0
 * @category models
 */
export type NodeCapacity = typeof NodeCapacity.Type

/**
 * The `capacity/` keys: one per node, written only by that node (single writer per key).
 *
 * @since 0.1.0
 * @category keyspaces
 */
export const keyspace = Keyspace.make("capacity/", NodeCapacity)

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
    } satisfies NodeCapacity
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
              Effect.flatMap((c) => keyspace.put(node, c, { lease })),
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
