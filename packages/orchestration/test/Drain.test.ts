// Drain as a durable task: the node marked draining, its VMs moved through the VmMover to hosts
// placement chooses (never a draining, suspect, failed or left agent), at most max_parallel at
// once, progress in the history, and a deadline that fails the drain with what is left.

import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Database } from "@novacron/database"
import { ClusterState, LocalStore, StateStore } from "@novacron/dwcp-ass"
import { Placement } from "@novacron/dwcp-itp"
import { tempDir } from "@novacron/testing"
import { Context, Effect, Layer, Schema } from "effect"
import * as AgentManager from "../src/AgentManager.js"
import * as Coordinator from "../src/Coordinator.js"
import * as OrchestrationSettings from "../src/OrchestrationSettings.js"
import * as Tasks from "../src/Tasks.js"
import * as VmMover from "../src/VmMover.js"
import { fakeNodes } from "./fakeNodes.js"

const settings = OrchestrationSettings.decode({ retry_base: "5ms", max_attempts: 2 })

const capacity = (node: string, vcpus: number, ageMs = 0): ClusterState.NodeCapacity => ({
  node,
  cpus: vcpus,
  vcpus_total: vcpus,
  vcpus_used: 0,
  memory_mb_total: vcpus * 1024,
  memory_mb_reserved: 0,
  memory_mb_used: 0,
  disk_mb_free: 10_000,
  running: 0,
  accel: "tcg",
  updated_at: Date.now() - ageMs,
})

/**
 * A coordinator "c" on a local cluster state, agents n1..n4 from their capacity records (n3's
 * is 100 s old: failed), placement on the spread policy (it prefers the emptiest host), and the
 * fake nodes' VMs; n2 and n3 are far bigger than n4, so spread would pick them if allowed.
 */
const setup = (vms: Parameters<typeof fakeNodes>[0], options: { readonly stopMs?: number } = {}) =>
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
    const agents = AgentManager.make(coordinator, store, settings)
    const service = yield* Placement.make(
      Schema.decodeUnknownSync(Placement.PlacementSettings)({ placement: { policy: "spread" } }),
    )
    const hosts = [capacity("n1", 8), capacity("n2", 64), capacity("n3", 64, 100_000), capacity("n4", 8)]
    for (const c of hosts) {
      yield* store.put(ClusterState.capacity.key(c.node), JSON.stringify(c))
      yield* service.join({ id: c.node, cpuMilli: c.vcpus_total * 1000, memoryMib: c.memory_mb_total })
    }
    yield* agents.reconcile
    yield* agents.setDraining("n2", true)
    const nodes = fakeNodes(vms, options)
    const tasks = Context.get(
      yield* Layer.build(
        Tasks.layerFromSql({
          settings,
          placement: { service, node: "c" },
          cluster: { coordinator, agents },
          mover: VmMover.stopStart(nodes.access),
        }).pipe(Layer.provide(Layer.succeedContext(ctx))),
      ),
      Tasks.Tasks,
    )
    return { tasks, nodes, agents }
  })

const vm = (state: "running" | "stopped") => ({ vcpus: 1, memory_mb: 256, state }) as const

describe("drain", () => {
  it.scopedLive(
    "moves every VM off the node to an eligible host, max_parallel at a time, with progress and placement in the history",
    () =>
      Effect.gen(function* () {
        const { tasks, nodes, agents } = yield* setup(
          { n1: { a: vm("running"), b: vm("running"), c: vm("stopped"), d: vm("running") }, n2: {}, n3: {}, n4: {} },
          { stopMs: 150 },
        )
        const task = yield* tasks.submit({ _tag: "Drain", node: "n1", max_parallel: 2 })
        const done = yield* tasks.await(task.id)
        expect(done).toMatchObject({ status: "succeeded", last_error: null })

        // everything on n4: n2 is draining, n3 failed, n1 is the drained node
        expect(nodes.state().n1).toEqual({})
        expect(Object.keys(nodes.state().n4!).sort()).toEqual(["a", "b", "c", "d"])
        expect(nodes.state().n4!.a!.state).toBe("running")
        expect(nodes.state().n4!.c!.state).toBe("defined") // it was stopped: not started
        expect(nodes.maxInFlight()).toBe(2)
        // each VM acted on once
        for (const id of ["a", "b", "d"]) expect(nodes.calls().filter((c) => c === `start ${id} on n4`)).toHaveLength(1)
        expect(nodes.calls().filter((c) => c.startsWith("define"))).toHaveLength(4)

        const agent = (yield* agents.list).find((r) => r.node === "n1")
        expect(agent).toMatchObject({ draining: true, state: "draining" })

        const view = yield* tasks.get(task.id)
        expect(view.progress).toEqual({ node: "n1", total: 4, moved: ["a", "b", "c", "d"], left: [] })
        const steps = view.history.filter((h) => h.outcome === "ok").map((h) => h.step)
        expect(steps.slice(0, 2)).toEqual(["mark", "inventory"])
        expect(steps.slice(2).sort()).toEqual(["move a", "move b", "move c", "move d"])
        const move = JSON.parse(view.history.find((h) => h.step === "move a")!.result!)
        expect(move).toMatchObject({ vm: "a", from: "n1", to: "n4", method: "stop-start" })
        expect(move.placement.chosen).toBe("n4")
        // n2 and n3 were feasible (and ranked above n4 by spread) but passed over, with the reason
        expect(move.placement.ranking[0].host).not.toBe("n4")
        expect(move.placement.excluded).toEqual(
          expect.arrayContaining([
            { host: "n1", reason: "being drained" },
            { host: "n2", reason: "draining" },
            { host: "n3", reason: "failed" },
          ]),
        )
      }),
  )

  it.scopedLive("the deadline passing fails the drain with the VMs left", () =>
    Effect.gen(function* () {
      const { tasks, nodes } = yield* setup(
        { n1: { a: vm("running"), b: vm("running"), c: vm("running") }, n2: {}, n3: {}, n4: {} },
        { stopMs: 700 },
      )
      const task = yield* tasks.submit({ _tag: "Drain", node: "n1", max_parallel: 1 }, { timeout: "1 second" })
      const done = yield* tasks.await(task.id)
      expect(done.status).toBe("dead")
      expect(done.last_error).toMatch(/deadline passed: 1 of 3 VMs moved off n1; left: b, c/)
      const view = yield* tasks.get(task.id)
      expect(view.progress).toEqual({ node: "n1", total: 3, moved: ["a"], left: ["b", "c"] })
      // b's move was cut at the deadline (defined on n4, not yet removed from n1): a next drain resumes it
      expect(Object.keys(nodes.state().n1!).sort()).toEqual(["b", "c"])
      expect(nodes.state().n4!.a!.state).toBe("running")
    }),
  )

  it.scopedLive("no eligible host: every move fails and the drain is dead-lettered saying so", () =>
    Effect.gen(function* () {
      const { tasks, agents } = yield* setup({ n1: { a: vm("running") }, n2: {}, n3: {}, n4: {} })
      yield* agents.setDraining("n4", true)
      const task = yield* tasks.submit({ _tag: "Drain", node: "n1" })
      const done = yield* tasks.await(task.id)
      expect(done.status).toBe("dead")
      expect(done.last_error).toContain("moves failed: 0 of 1 VMs moved off n1; left: a")
      expect(done.last_error).toContain("no eligible host for a")
    }),
  )

  it.scopedLive("a drain without a coordinator or mover on the node is dead-lettered at once", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const tasks = Context.get(
        yield* Layer.build(Tasks.layer({ _tag: "sqlite", filename: path.join(dir, "o.db") }, { settings })),
        Tasks.Tasks,
      )
      const done = yield* tasks.await((yield* tasks.submit({ _tag: "Drain", node: "n1" })).id)
      expect(done).toMatchObject({ status: "dead", last_error: "step mark: no coordinator on this node" })
      expect(Effect.runSync(Effect.either(tasks.submit({ _tag: "Drain", node: "../x" })))._tag).toBe("Left")
    }),
  )

  it.scopedLive("VmCreate placement passes over a draining agent", () =>
    Effect.gen(function* () {
      const { tasks } = yield* setup({ n1: {}, n2: {}, n3: {}, n4: {} })
      // no VM manager here: the task dies after the decision, which is what is checked
      const t = yield* tasks.submit({ _tag: "VmCreate", spec: { id: "web", vcpus: 1, memory_mb: 256 } })
      const done = yield* tasks.await(t.id)
      expect(done.placement!.chosen).not.toBe("n2")
      expect(done.placement!.chosen).not.toBe("n3")
      expect(done.placement!.excluded).toEqual([
        { host: "n2", reason: "draining" },
        { host: "n3", reason: "failed" },
      ])
    }),
  )
})
