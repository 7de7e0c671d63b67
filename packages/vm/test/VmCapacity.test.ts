import { describe, expect, it } from "@effect/vitest"
import { Database } from "@novacron/database"
import { ClusterState, LocalStore, StateStore } from "@novacron/dwcp-ass"
import { BackgroundJobs } from "@novacron/init"
import { Effect, Exit, Layer, Option, Ref, Scope } from "effect"
import * as VmCapacity from "../src/VmCapacity.js"
import { VmQemuUnavailable } from "../src/VmError.js"
import { type Capacity, VmManager } from "../src/VmManager.js"

const base: Capacity = {
  cpus: 2,
  vcpus_total: 8,
  vcpus_used: 0,
  memory_mb_total: 4096,
  memory_mb_reserved: 512,
  memory_mb_used: 0,
  disk_mb_free: 10_000,
  running: 0,
}

// The publisher reads only the manager's capacity and accelerator: a manager that reports what a Ref holds.
const manager = (capacity: Ref.Ref<Capacity>) =>
  Layer.succeed(VmManager, {
    capacity: Ref.get(capacity),
    info: Effect.fail(new VmQemuUnavailable({ detail: "not needed here" })),
  } as unknown as VmManager["Type"])

const state = LocalStore.layer({ leaseTtl: "1 second" }).pipe(Layer.provide(Database.layerSqlite({ path: ":memory:" })))

const published = (node: string) =>
  Effect.map(
    ClusterState.capacity.get(node),
    Option.map((item) => item.value),
  )

const eventually = <A, E, R>(check: Effect.Effect<A | undefined, E, R>) =>
  Effect.gen(function* () {
    for (let i = 0; i < 100; i++) {
      const a = yield* check
      if (a !== undefined) return a
      yield* Effect.sleep("50 millis")
    }
    return yield* Effect.die(new Error("condition not met within 5 s"))
  })

describe("VmCapacity.publish", () => {
  it.live(
    "a capacity-report job writes capacity/<node> under a lease, follows changes, and the key goes when the node stops",
    () =>
      Effect.gen(function* () {
        const capacity = yield* Ref.make(base)
        const scope = yield* Scope.make()
        const store = yield* Layer.buildWithScope(state, scope)
        const jobs = yield* BackgroundJobs.make
        const publisher = VmCapacity.publish("node-a", "100 millis").pipe(
          Layer.provide(
            Layer.mergeAll(
              manager(capacity),
              Layer.succeedContext(store),
              Layer.succeed(BackgroundJobs.BackgroundJobs, jobs),
            ),
          ),
        )
        const running = yield* Scope.make()
        yield* Layer.buildWithScope(publisher, running)
        // A job of the node's, listed in /status.
        expect((yield* jobs.status).map((j) => j.name)).toEqual(["capacity-report"])
        const inStore = <A, E>(e: Effect.Effect<A, E, StateStore.StateStore>) => Effect.provide(e, store)

        const first = yield* eventually(inStore(Effect.map(published("node-a"), Option.getOrUndefined)))
        expect(first).toMatchObject({ node: "node-a", vcpus_total: 8, running: 0, accel: null })
        const entry = yield* inStore(Effect.flatMap(StateStore.StateStore, (s) => s.get("capacity/node-a")))
        expect(Option.getOrThrow(entry).lease).toBeDefined()

        // A VM started: the next tick says so.
        yield* Ref.update(capacity, (c) => ({ ...c, vcpus_used: 2, memory_mb_used: 256, running: 1 }))
        const after = yield* eventually(
          inStore(
            Effect.map(published("node-a"), (o) => (Option.isSome(o) && o.value.running === 1 ? o.value : undefined)),
          ),
        )
        expect(after).toMatchObject({ vcpus_used: 2, memory_mb_used: 256 })

        // The node stops: its lease is revoked and the key is gone at once (not after the TTL).
        yield* Scope.close(running, Exit.void)
        expect(yield* inStore(published("node-a"))).toEqual(Option.none())
        yield* Scope.close(scope, Exit.void)
      }),
  )
})
