import { describe, expect, it } from "@effect/vitest"
import { Database } from "@novacron/database"
import { ClusterState, LocalStore, type StateStore } from "@novacron/dwcp-ass"
import { Effect, Exit, Layer, Scope } from "effect"
import * as Placement from "../src/Placement.js"
import * as PlacementSync from "../src/PlacementSync.js"

const settings = Effect.runSync(Placement.decodeSettings({}))

const capacity = (node: string, vcpus: number, memory: number): ClusterState.NodeCapacity => ({
  node,
  cpus: vcpus / 4,
  vcpus_total: vcpus,
  vcpus_used: 0,
  memory_mb_total: memory,
  memory_mb_reserved: 512,
  memory_mb_used: 0,
  disk_mb_free: 10_000,
  running: 0,
  accel: "tcg",
  updated_at: 0,
})

const eventually = <E, R>(what: string, check: Effect.Effect<boolean, E, R>) =>
  Effect.gen(function* () {
    for (let i = 0; i < 100; i++) {
      if (yield* check) return
      yield* Effect.sleep("20 millis")
    }
    return yield* Effect.die(new Error(`${what}: not within 2 s`))
  })

describe("PlacementSync.layer", () => {
  it.live("placement's hosts follow the capacity records: snapshot, join, update, leave", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const ctx = yield* Layer.buildWithScope(
        Layer.provideMerge(
          PlacementSync.layer,
          Layer.merge(
            Placement.layer(settings),
            LocalStore.layer().pipe(Layer.provide(Database.layerSqlite({ path: ":memory:" }))),
          ),
        ),
        scope,
      )
      const run = <A, E>(e: Effect.Effect<A, E, Placement.Placement | StateStore.StateStore>) => Effect.provide(e, ctx)
      const hosts = run(Effect.flatMap(Placement.Placement, (p) => p.hosts))
      const byId = Effect.map(hosts, (hs) => new Map(hs.map((h) => [h.id, h])))

      yield* run(ClusterState.capacity.put("node-a", capacity("node-a", 8, 4096)))
      yield* eventually(
        "node-a joins",
        Effect.map(byId, (m) => m.get("node-a")?.cpuMilli === 8000),
      )
      expect((yield* byId).get("node-a")).toMatchObject({ memoryMib: 3584, schedulable: true })

      yield* run(ClusterState.capacity.put("node-b", capacity("node-b", 16, 8192)))
      yield* run(ClusterState.capacity.put("node-a", capacity("node-a", 4, 2048)))
      yield* eventually(
        "node-b joins and node-a shrinks",
        Effect.map(byId, (m) => m.get("node-b")?.cpuMilli === 16_000 && m.get("node-a")?.cpuMilli === 4000),
      )

      // A node's record goes (its lease ran out or it stopped): its host leaves placement.
      yield* run(ClusterState.capacity.delete("node-a"))
      yield* eventually(
        "node-a leaves",
        Effect.map(hosts, (hs) => hs.map((h) => h.id).join() === "node-b"),
      )
      yield* Scope.close(scope, Exit.void)
    }),
  )
})
