import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Database } from "@novacron/database"
import { ClusterState, LocalStore, StateStore } from "@novacron/dwcp-ass"
import { tempDir } from "@novacron/testing"
import { Duration, Effect, Layer, Option } from "effect"
import * as AgentManager from "../src/AgentManager.js"
import * as Coordinator from "../src/Coordinator.js"
import * as OrchestrationSettings from "../src/OrchestrationSettings.js"
import * as Tasks from "../src/Tasks.js"

const settings = OrchestrationSettings.decode({ suspect_after: "30s", failed_after: "90s", deregister_after: "1s" })

const capacity = (node: string, updated_at: number): ClusterState.NodeCapacity => ({
  node,
  cpus: 2,
  vcpus_total: 8,
  vcpus_used: 0,
  memory_mb_total: 4096,
  memory_mb_reserved: 512,
  memory_mb_used: 0,
  disk_mb_free: 10_000,
  running: 0,
  accel: "tcg",
  updated_at,
})

describe("classify", () => {
  const now = 1_000_000
  const record = (state: AgentManager.AgentState, since = now - 10, draining = false): AgentManager.AgentRecord => ({
    node: "n",
    state,
    since,
    last_seen: now - 5,
    draining,
  })
  const state = (d: AgentManager.Decision) => (d._tag === "Write" ? d.record.state : d._tag)
  const c = (age: number) => Option.some(capacity("n", now - age))

  it("first seen: joined; seen again fresh: healthy", () => {
    expect(state(AgentManager.classify(Option.none(), c(0), now, settings, "n"))).toBe("joined")
    expect(state(AgentManager.classify(Option.some(record("joined")), c(0), now, settings, "n"))).toBe("healthy")
  })
  it("by the age of the capacity record: suspect after suspect_after, failed after failed_after", () => {
    expect(state(AgentManager.classify(Option.some(record("healthy")), c(30_001), now, settings, "n"))).toBe("suspect")
    expect(state(AgentManager.classify(Option.some(record("healthy")), c(90_001), now, settings, "n"))).toBe("failed")
  })
  it("capacity record gone: failed, and deregistered once failed for deregister_after", () => {
    expect(state(AgentManager.classify(Option.some(record("healthy")), Option.none(), now, settings, "n"))).toBe(
      "failed",
    )
    expect(
      state(AgentManager.classify(Option.some(record("failed", now - 999)), Option.none(), now, settings, "n")),
    ).toBe("Keep")
    expect(
      state(AgentManager.classify(Option.some(record("failed", now - 1000)), Option.none(), now, settings, "n")),
    ).toBe("Deregister")
  })
  it("draining while it lives, and drains again when back from suspect", () => {
    // nothing changed (same capacity record): nothing to write
    expect(state(AgentManager.classify(Option.some(record("draining", now, true)), c(5), now, settings, "n"))).toBe(
      "Keep",
    )
    expect(state(AgentManager.classify(Option.some(record("suspect", now, true)), c(0), now, settings, "n"))).toBe(
      "draining",
    )
  })
  it("left stays left until deregistered", () => {
    expect(state(AgentManager.classify(Option.some(record("left", now - 10)), c(0), now, settings, "n"))).toBe("Keep")
    expect(state(AgentManager.classify(Option.some(record("left", now - 1000)), c(0), now, settings, "n"))).toBe(
      "Deregister",
    )
  })
  it("a state kept keeps its since", () => {
    const d = AgentManager.classify(Option.some(record("suspect", now - 500)), c(40_000), now, settings, "n")
    expect(d._tag === "Write" && d.record.since).toBe(now - 500)
  })
})

describe("the agent manager on the cluster state", () => {
  it.scopedLive("keeps agents' states from their capacity records and deregisters stale ones", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const ctx = yield* Layer.build(
        Layer.merge(
          LocalStore.layer({ leaseTtl: "2 seconds" }).pipe(Layer.provide(Database.layerSqlite({ path: ":memory:" }))),
          Tasks.layerSql({ _tag: "sqlite", filename: path.join(dir, "orch.db") }),
        ),
      )
      const store = ctx.unsafeMap.get(StateStore.StateStore.key) as StateStore.StateStoreApi
      const coordinator = yield* Coordinator.make({ node: "c", ttl: "2 seconds" }).pipe(
        Effect.provide(Layer.succeedContext(ctx)),
      )
      yield* coordinator.elected
      const manager = AgentManager.make(coordinator, store, settings)
      const putCapacity = (node: string, ageMs: number) =>
        store.put(ClusterState.capacity.key(node), JSON.stringify(capacity(node, Date.now() - ageMs)))
      const states = Effect.map(manager.list, (l) => Object.fromEntries(l.map((r) => [r.node, r.state])))

      yield* putCapacity("n1", 0)
      yield* putCapacity("n2", 40_000)
      yield* putCapacity("n3", 100_000)
      yield* manager.reconcile
      expect(yield* states).toEqual({ n1: "joined", n2: "suspect", n3: "failed" })
      yield* putCapacity("n1", 0)
      yield* manager.reconcile
      expect((yield* states).n1).toBe("healthy")

      yield* manager.setDraining("n1", true)
      yield* manager.reconcile
      expect((yield* states).n1).toBe("draining")
      yield* store.delete(ClusterState.capacity.key("n1"))
      yield* manager.leave("n2")
      yield* manager.reconcile
      expect(yield* states).toEqual({ n1: "failed", n2: "left", n3: "failed" })
      expect((yield* manager.list).find((r) => r.node === "n1")?.draining).toBe(true)

      yield* Effect.sleep(Duration.millis(1100))
      const changes = yield* manager.reconcile
      expect(changes.map((c) => [c.node, c.decision._tag])).toEqual([
        ["n1", "Deregister"],
        ["n2", "Deregister"],
        ["n3", "Deregister"],
      ])
      expect(yield* states).toEqual({})
    }),
  )

  it.scopedLive("a manager whose node is not coordinator writes nothing", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const ctx = yield* Layer.build(
        Layer.merge(
          LocalStore.layer({ leaseTtl: "2 seconds" }).pipe(Layer.provide(Database.layerSqlite({ path: ":memory:" }))),
          Tasks.layerSql({ _tag: "sqlite", filename: path.join(dir, "orch.db") }),
        ),
      )
      const store = ctx.unsafeMap.get(StateStore.StateStore.key) as StateStore.StateStoreApi
      const leader = yield* Coordinator.make({ node: "a", ttl: "2 seconds" }).pipe(
        Effect.provide(Layer.succeedContext(ctx)),
      )
      yield* leader.elected
      const other = yield* Coordinator.make({ node: "b", ttl: "2 seconds" }).pipe(
        Effect.provide(Layer.succeedContext(ctx)),
      )
      yield* store.put(ClusterState.capacity.key("n1"), JSON.stringify(capacity("n1", Date.now())))
      const e = yield* Effect.flip(AgentManager.make(other, store, settings).reconcile)
      expect(e._tag).toBe("NotCoordinator")
      expect((yield* store.list("agents/")).entries).toEqual([])
    }),
  )
})
