/**
 * Placement's hosts from the cluster state: every node's `capacity/<node>` record (written by its VM
 * manager under a lease) joins, updates or leaves the placement engine, so a decision on any node
 * sees every host's capacity and a host whose agent died leaves with its lease.
 *
 * @since 0.1.0
 */
import { ClusterState, type StateStore } from "@novacron/dwcp-ass"
import { Effect, Layer, Schedule, Stream } from "effect"
import type { HostSpec } from "./Host.js"
import * as Placement from "./Placement.js"

/**
 * The host placement sees for a node's record: the vCPUs the node offers (its CPUs times its
 * overcommit) and its memory less what it keeps for itself.
 *
 * @since 0.1.0
 * @category conversions
 */
export const hostSpec = (c: ClusterState.NodeCapacity): HostSpec => ({
  id: c.node,
  cpuMilli: c.vcpus_total * 1000,
  memoryMib: Math.max(0, c.memory_mb_total - c.memory_mb_reserved),
  labels: c.accel === null ? {} : { accel: c.accel },
})

const apply = (p: Placement.PlacementService, known: Set<string>, c: ClusterState.NodeCapacity) =>
  (known.has(c.node)
    ? (p.update(hostSpec(c)) as Effect.Effect<unknown, { readonly _tag: string }>)
    : p.join(hostSpec(c))
  ).pipe(
    Effect.tap(() => Effect.sync(() => known.add(c.node))),
    Effect.catchAll((e) =>
      Effect.logWarning(
        `placement: capacity of node ${c.node} not applied: ${e._tag} ${"message" in e ? e.message : ""}`,
      ),
    ),
  )

const leave = (p: Placement.PlacementService, known: Set<string>, node: string) =>
  known.delete(node)
    ? p.leave(node).pipe(
        Effect.tap((evicted) =>
          evicted.length > 0
            ? Effect.logWarning(`placement: node ${node} left the cluster state with ${evicted.length} allocation(s)`)
            : Effect.void,
        ),
        Effect.ignore,
      )
    : Effect.void

/**
 * Follows the `capacity/` keyspace until the scope closes: a snapshot first, then each change. A
 * watch that fails (the state store unreachable) is logged and started again from a fresh snapshot.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<never, never, Placement.Placement | StateStore.StateStore> = Layer.scopedDiscard(
  Effect.gen(function* () {
    const p = yield* Placement.Placement
    const known = new Set<string>()
    const follow = Effect.gen(function* () {
      const { items, revision } = yield* ClusterState.capacity.list
      const present = new Set(items.map((i) => i.id))
      for (const node of [...known]) if (!present.has(node)) yield* leave(p, known, node)
      for (const item of items) yield* apply(p, known, item.value)
      yield* ClusterState.capacity.watch(revision).pipe(
        Stream.runForEach((event) => {
          switch (event._tag) {
            case "Put":
              return apply(p, known, event.item.value)
            case "Delete":
              return leave(p, known, event.id)
            case "Reset":
              return Effect.gen(function* () {
                const now = new Set(event.items.map((i) => i.id))
                for (const node of [...known]) if (!now.has(node)) yield* leave(p, known, node)
                for (const item of event.items) yield* apply(p, known, item.value)
              })
          }
        }),
      )
    })
    yield* follow.pipe(
      Effect.catchAll((e) => Effect.logWarning(`placement: following node capacity: ${e.message}`)),
      Effect.repeat(Schedule.spaced("1 second")),
      Effect.forkScoped,
    )
  }),
)
