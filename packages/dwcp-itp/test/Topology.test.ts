import { describe, expect, it } from "@effect/vitest"
import { cluster, left, right } from "./helpers.js"

const gpuHost = (id: string, count = 4) => ({ id, cpuMilli: 32000, memoryMib: 65536, gpu: { model: "T4", count } })

describe("topology map", () => {
  it("join rejects duplicates and invalid specs", () => {
    const s = cluster([gpuHost("a")])
    expect(left(s.join(gpuHost("a")))._tag).toBe("DuplicateHost")
    expect(left(s.join({ id: "b", cpuMilli: Number.NaN, memoryMib: 1 }))._tag).toBe("InvalidSpec")
    expect(left(s.join({ id: "b", cpuMilli: 1, memoryMib: 1, gpu: { model: "", count: 2 } }))._tag).toBe("InvalidSpec")
    expect(s.hosts()).toHaveLength(1)
  })

  it("leave evicts the host's workloads and frees their labels for constraints", () => {
    const s = cluster([gpuHost("a"), gpuHost("b")])
    right(s.place({ id: "w1", cpuMilli: 1000, memoryMib: 1, gpuMilli: 1000, labels: { app: "x" }, nodeSelector: {} }))
    const host = s.allocation("w1")!.host
    const evicted = right(s.leave(host))
    expect(evicted.map((a) => a.workload)).toEqual(["w1"])
    expect(s.allocation("w1")).toBeUndefined()
    expect(s.hosts().map((h) => h.id)).toEqual([host === "a" ? "b" : "a"])
    expect(left(s.leave(host))._tag).toBe("UnknownHost")
    // Anti-affinity against app=x no longer sees the evicted workload.
    right(s.place({ id: "w2", cpuMilli: 1, memoryMib: 1, antiAffinity: [{ selector: { app: "x" }, level: "host" }] }))
    // Rejoining reuses the slot with a fresh, empty host.
    right(s.join(gpuHost(host)))
    expect(s.host(host)).toMatchObject({ cpuFree: 32000, gpuFree: [1000, 1000, 1000, 1000], workloads: 0 })
  })

  it("update grows and shrinks capacity but never below what workloads hold", () => {
    const s = cluster([gpuHost("a")])
    right(s.place({ id: "w", cpuMilli: 8000, memoryMib: 1024, gpuMilli: 500 }))
    const gpu = s.allocation("w")!.gpus[0]!.index
    expect(left(s.update({ ...gpuHost("a"), cpuMilli: 4000 }))._tag).toBe("CapacityConflict")
    expect(left(s.update({ ...gpuHost("a"), gpu: { model: "V100", count: 4 } }))._tag).toBe("CapacityConflict")
    expect(left(s.update(gpuHost("zzz")))._tag).toBe("UnknownHost")
    const grown = right(s.update({ ...gpuHost("a", 8), cpuMilli: 64000, labels: { tier: "gold" } }))
    expect(grown.cpuFree).toBe(56000)
    expect(grown.gpuFree).toHaveLength(8)
    expect(grown.gpuFree[gpu]).toBe(500)
    right(s.place({ id: "gold", cpuMilli: 1, memoryMib: 1, nodeSelector: { tier: "gold" } }))
    // Cordon: keeps workloads, takes no new ones.
    right(s.update({ ...gpuHost("a", 8), cpuMilli: 64000, schedulable: false }))
    expect(left(s.place({ id: "x", cpuMilli: 1, memoryMib: 1 }))._tag).toBe("Unschedulable")
    expect(s.allocations()).toHaveLength(2)
  })

  it("release returns exactly the capacity taken", () => {
    const s = cluster([gpuHost("a", 2)])
    const before = s.host("a")
    right(s.place({ id: "x", cpuMilli: 3000, memoryMib: 2048, gpuMilli: 700 }))
    right(s.place({ id: "y", cpuMilli: 1000, memoryMib: 512, gpuMilli: 1000 }))
    expect(s.host("a")!.cpuFree).toBe(28000)
    expect(right(s.release("x"))).toMatchObject({ workload: "x", host: "a", cpuMilli: 3000, memoryMib: 2048 })
    right(s.release("y"))
    expect(s.host("a")).toEqual(before)
    expect(left(s.release("y"))._tag).toBe("UnknownWorkload")
    expect(s.utilisation()).toEqual({ cpu: 0, memory: 0, gpu: 0 })
  })
})
