// VM tasks act through the node's VmManager (an in-memory one here; the real one is tested with
// QEMU in @novacron/vm): each step once, and a step finding the work done does not redo it.

import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Placement } from "@novacron/dwcp-itp"
import { tempDir } from "@novacron/testing"
import type { Vm, VmManager } from "@novacron/vm"
import { VmError } from "@novacron/vm"
import { Effect, Layer, Schema } from "effect"
import * as OrchestrationSettings from "../src/OrchestrationSettings.js"
import * as Tasks from "../src/Tasks.js"

const fakeManager = () => {
  const vms = new Map<string, Vm.VmRecord>()
  const calls: Array<string> = []
  const get = (id: string) =>
    Effect.suspend(() => {
      const r = vms.get(id)
      return r === undefined ? Effect.fail(new VmError.VmNotFound({ id })) : Effect.succeed(r)
    })
  const set = (id: string, state: Vm.VmState) =>
    Effect.map(get(id), (r) => {
      const next = { ...r, state }
      vms.set(id, next)
      return next
    })
  const manager = {
    define: (spec: Vm.VmSpecInput) =>
      Effect.sync(() => {
        calls.push(`define ${spec.id}`)
        const record = {
          spec: { id: spec.id, vcpus: spec.vcpus, memory_mb: spec.memory_mb, disks: [], nics: [] },
          state: "defined",
          pid: null,
          accel: null,
          term: null,
          exit_reason: null,
          created_at: 0,
          updated_at: 0,
        } as unknown as Vm.VmRecord
        vms.set(spec.id, record)
        return record
      }),
    start: (id: string) =>
      Effect.zipRight(
        Effect.sync(() => calls.push(`start ${id}`)),
        set(id, "running"),
      ),
    stop: (id: string) =>
      Effect.gen(function* () {
        const r = yield* get(id)
        calls.push(`stop ${id}`)
        const method = r.state === "running" ? ("powerdown" as const) : ("already-stopped" as const)
        return { record: yield* set(id, "stopped"), method }
      }),
    kill: (id: string) => set(id, "stopped"),
    remove: (id: string) =>
      Effect.zipRight(
        get(id),
        Effect.sync(() => {
          calls.push(`remove ${id}`)
          vms.delete(id)
        }),
      ),
    status: (id: string) => Effect.map(get(id), (record) => ({ record, qmp_status: null, attached: false })),
    list: Effect.sync(() => [...vms.values()]),
    console: () => Effect.succeed(""),
    capacity: Effect.die("unused"),
    info: Effect.die("unused"),
  } as unknown as VmManager.Manager
  return { manager, calls, vms }
}

const settings = OrchestrationSettings.decode({ retry_base: "5ms", max_attempts: 2 })

const withVmTasks = <A, E>(
  body: (tasks: Tasks.TasksApi, fake: ReturnType<typeof fakeManager>) => Effect.Effect<A, E>,
) =>
  Effect.gen(function* () {
    const dir = yield* tempDir
    const fake = fakeManager()
    const ctx = yield* Layer.build(
      Tasks.layer({ _tag: "sqlite", filename: path.join(dir, "orch.db") }, { settings, vm: fake.manager }),
    )
    return yield* body(ctx.unsafeMap.get(Tasks.Tasks.key) as Tasks.TasksApi, fake)
  })

describe("VM tasks", () => {
  it.scopedLive("create, stop, start, delete: each acts once through the VM manager", () =>
    withVmTasks((tasks, fake) =>
      Effect.gen(function* () {
        const run = (spec: Parameters<Tasks.TasksApi["submit"]>[0]) =>
          Effect.flatMap(tasks.submit(spec), (t) => tasks.await(t.id))
        expect(yield* run({ _tag: "VmCreate", spec: { id: "web-1", vcpus: 1, memory_mb: 64 } })).toMatchObject({
          status: "succeeded",
          last_error: null,
        })
        expect(fake.vms.get("web-1")?.state).toBe("running")
        expect(yield* run({ _tag: "VmStop", vm: "web-1" })).toMatchObject({ status: "succeeded", last_error: null })
        expect(yield* run({ _tag: "VmStart", vm: "web-1" })).toMatchObject({ status: "succeeded", last_error: null })
        // starting a running VM finds the work done
        const again = yield* run({ _tag: "VmStart", vm: "web-1" })
        expect(again.status).toBe("succeeded")
        expect(yield* run({ _tag: "VmDelete", vm: "web-1" })).toMatchObject({ status: "succeeded", last_error: null })
        expect(fake.vms.has("web-1")).toBe(false)
        expect(fake.calls).toEqual([
          "define web-1",
          "start web-1",
          "stop web-1",
          "start web-1",
          "stop web-1",
          "remove web-1",
        ])
      }),
    ),
  )

  it.scopedLive("creating a VM that exists does not define it again; deleting one that is gone succeeds", () =>
    withVmTasks((tasks, fake) =>
      Effect.gen(function* () {
        yield* fake.manager.define({ id: "db-1", vcpus: 1, memory_mb: 64 })
        fake.calls.length = 0
        const t = yield* tasks.submit({ _tag: "VmCreate", spec: { id: "db-1", vcpus: 1, memory_mb: 64 }, start: false })
        expect((yield* tasks.await(t.id)).status).toBe("succeeded")
        expect(fake.calls).toEqual([])
        const d = yield* tasks.submit({ _tag: "VmDelete", vm: "nope" })
        expect((yield* tasks.await(d.id)).status).toBe("succeeded")
        const s = yield* tasks.submit({ _tag: "VmStop", vm: "nope" })
        const stopped = yield* tasks.await(s.id)
        expect(stopped.status).toBe("dead")
        expect(stopped.last_error).toContain("nope")
      }),
    ),
  )

  it.scopedLive(
    "placement: the decision and its explanation are stored with the task; a VM placed elsewhere is not created here",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const fake = fakeManager()
        const service = yield* Placement.make(Schema.decodeUnknownSync(Placement.PlacementSettings)({}))
        yield* service.join({ id: "n1", cpuMilli: 4000, memoryMib: 4096 })
        yield* service.join({ id: "n2", cpuMilli: 16000, memoryMib: 16384 })
        const ctx = yield* Layer.build(
          Tasks.layer(
            { _tag: "sqlite", filename: path.join(dir, "orch.db") },
            { settings, vm: fake.manager, placement: { service, node: "n1" } },
          ),
        )
        const tasks = ctx.unsafeMap.get(Tasks.Tasks.key) as Tasks.TasksApi
        // 6 vCPUs fit only n2; 2 vCPUs fit both, and this node must be among the feasible hosts
        const far = yield* tasks.submit({ _tag: "VmCreate", spec: { id: "big", vcpus: 6, memory_mb: 1024 } })
        const farDone = yield* tasks.await(far.id)
        expect(farDone.status).toBe("dead")
        expect(farDone.last_error).toContain("placed on n2")
        expect(farDone.placement).toMatchObject({ chosen: "n2", hosts: 2, feasible: 1 })
        expect(farDone.placement!.ranking.map((r) => r.host)).toEqual(["n2"])
        expect(fake.calls).toEqual([])
        const place = (yield* tasks.get(far.id)).history.filter((h) => h.step === "place")
        expect(place.map((h) => h.outcome)).toEqual(["failed"]) // not retried: the decision stands

        // n2 gone: a VM placed on this node is created here, the decision kept with the task
        yield* service.leave("n2")
        const near = yield* tasks.submit({ _tag: "VmCreate", spec: { id: "small", vcpus: 2, memory_mb: 512 } })
        const nearDone = yield* tasks.await(near.id)
        expect(nearDone).toMatchObject({ status: "succeeded", placement: { chosen: "n1", hosts: 1, feasible: 1 } })
        expect(fake.calls).toEqual(["define small", "start small"])
      }),
  )
})
