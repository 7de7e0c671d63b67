import { describe, expect, it } from "@effect/vitest"
import { Database } from "@novacron/database"
import { Effect, Layer } from "effect"
import { canTransition, isActive, type VmRecord } from "../src/Vm.js"
import * as VmSettings from "../src/VmSettings.js"
import { layerDatabase, VmStore } from "../src/VmStore.js"

const record: VmRecord = {
  spec: { id: "web-1", vcpus: 1, memory_mb: 64, disks: [], nics: [] },
  state: "defined",
  pid: null,
  accel: null,
  term: null,
  exit_reason: null,
  created_at: 1,
  updated_at: 1,
}

describe("Vm state machine", () => {
  it("allows the lifecycle and refuses shortcuts", () => {
    expect(canTransition("defined", "starting")).toBe(true)
    expect(canTransition("starting", "running")).toBe(true)
    expect(canTransition("running", "stopping")).toBe(true)
    expect(canTransition("running", "crashed")).toBe(true)
    expect(canTransition("crashed", "starting")).toBe(true)
    expect(canTransition("defined", "running")).toBe(false)
    expect(canTransition("stopped", "running")).toBe(false)
    expect(canTransition("stopped", "stopping")).toBe(false)
    expect(["starting", "running", "stopping"].every((s) => isActive(s as never))).toBe(true)
    expect(["defined", "stopped", "crashed"].some((s) => isActive(s as never))).toBe(false)
  })
})

describe("VmSettings", () => {
  it("fills defaults and names a bad value", () => {
    expect(VmSettings.defaults).toMatchObject({ accel: "auto", stop_on_shutdown: false, cpu_overcommit: 4 })
    expect(() => VmSettings.decode({ accel: "xen" })).toThrow(/accel/)
    expect(() => VmSettings.decode({ stop_timeout: "soon" })).toThrow(/stop_timeout/)
  })
})

describe("VmStore.layerDatabase", () => {
  const layer = Layer.provideMerge(layerDatabase, Database.layerSqlite({ path: ":memory:" }))

  it.effect("round-trips records through the node database", () =>
    Effect.gen(function* () {
      const store = yield* VmStore
      yield* store.put(record)
      yield* store.put({ ...record, spec: { ...record.spec, id: "web-2" }, state: "running", pid: 42 })
      expect(yield* store.list).toHaveLength(2)
      expect((yield* store.get("web-2")).pipe((o) => o._tag === "Some" && o.value.pid)).toBe(42)
      expect(yield* store.remove("web-1")).toBe(true)
      expect((yield* store.get("web-1"))._tag).toBe("None")
    }).pipe(Effect.provide(layer)),
  )

  it.effect("a stored record that does not decode is an error naming its key and field", () =>
    Effect.gen(function* () {
      const db = yield* Database.Database
      const store = yield* VmStore
      yield* db.kv.set("vm/bad", JSON.stringify({ ...record, state: "exploded" }))
      const err = yield* Effect.flip(store.get("bad"))
      expect(err._tag).toBe("VmStoreError")
      expect(err.message).toContain("vm store vm/bad: stored record does not decode")
      expect(err.message).toContain("exploded")
      expect((yield* Effect.flip(store.list)).message).toContain("vm/bad")
    }).pipe(Effect.provide(layer)),
  )
})
