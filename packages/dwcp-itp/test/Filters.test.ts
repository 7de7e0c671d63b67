import { describe, expect, it } from "@effect/vitest"
import { cluster, left, right } from "./helpers.js"

const cpuHost = (id: string, extra: object = {}) => ({ id, cpuMilli: 8000, memoryMib: 16384, ...extra })

describe("filters", () => {
  it("Schedulable: a cordoned host takes nothing new, and the explanation names it", () => {
    const s = cluster([cpuHost("a", { schedulable: false }), cpuHost("b")])
    const p = right(s.place({ id: "w", cpuMilli: 1000, memoryMib: 1024 }, { explain: true }))
    expect(p.allocation.host).toBe("b")
    expect(p.explanation.filters.find((f) => f.name === "Schedulable")).toMatchObject({ removed: 1, hosts: ["a"] })
  })

  it("NodeSelector: only hosts carrying every selected label", () => {
    const s = cluster([cpuHost("a", { labels: { disk: "hdd" } }), cpuHost("b", { labels: { disk: "ssd", os: "x" } })])
    expect(right(s.place({ id: "w", cpuMilli: 1, memoryMib: 1, nodeSelector: { disk: "ssd" } })).allocation.host).toBe(
      "b",
    )
    const e = left(s.place({ id: "w2", cpuMilli: 1, memoryMib: 1, nodeSelector: { disk: "nvme" } }))
    expect(e._tag).toBe("Unschedulable")
  })

  it("GpuModel: GPU requests go only to hosts of an accepted model; CPU hosts are removed", () => {
    const s = cluster([
      cpuHost("cpu"),
      cpuHost("t4", { gpu: { model: "T4", count: 2 } }),
      cpuHost("v100", { gpu: { model: "V100", count: 2 } }),
    ])
    const p = right(
      s.place({ id: "w", cpuMilli: 1, memoryMib: 1, gpuMilli: 1000, gpuModels: ["V100"] }, { explain: true }),
    )
    expect(p.allocation.host).toBe("v100")
    const f = p.explanation.filters.find((x) => x.name === "GpuModel")!
    expect(f.removed).toBe(2)
    expect([...(f.hosts ?? [])].sort()).toEqual(["cpu", "t4"])
    // A model nobody has: nothing fits.
    expect(left(s.place({ id: "w2", cpuMilli: 1, memoryMib: 1, gpuMilli: 500, gpuModels: ["H100"] }))._tag).toBe(
      "Unschedulable",
    )
  })

  it("Resources: CPU and memory must both fit", () => {
    const s = cluster([cpuHost("small"), { id: "big", cpuMilli: 64000, memoryMib: 8192 }])
    const p = right(s.place({ id: "w", cpuMilli: 16000, memoryMib: 4096 }, { explain: true }))
    expect(p.allocation.host).toBe("big")
    expect(p.explanation.filters.find((f) => f.name === "Resources")).toMatchObject({ removed: 1, hosts: ["small"] })
    const e = left(s.place({ id: "w2", cpuMilli: 16000, memoryMib: 16384 }))
    expect(e._tag === "Unschedulable" && e.explanation.filters.find((f) => f.name === "Resources")!.removed).toBe(2)
  })

  it("GpuFit: a share needs one GPU with that much free; whole GPUs need idle ones", () => {
    const s = cluster([cpuHost("g", { cpuMilli: 64000, gpu: { model: "T4", count: 2 } })])
    right(s.place({ id: "a", cpuMilli: 1, memoryMib: 1, gpuMilli: 600 }))
    right(s.place({ id: "b", cpuMilli: 1, memoryMib: 1, gpuMilli: 600 }))
    // 400 + 400 free: 1.0 GPU in total but no GPU with 500.
    const e = left(s.place({ id: "c", cpuMilli: 1, memoryMib: 1, gpuMilli: 500 }))
    expect(e._tag === "Unschedulable" && e.explanation.filters.find((f) => f.name === "GpuFit")!.removed).toBe(1)
    right(s.place({ id: "d", cpuMilli: 1, memoryMib: 1, gpuMilli: 400 }))
    expect(left(s.place({ id: "e", cpuMilli: 1, memoryMib: 1, gpuMilli: 1000 }))._tag).toBe("Unschedulable")
    right(s.release("a"))
    right(s.release("d"))
    expect(right(s.place({ id: "e", cpuMilli: 1, memoryMib: 1, gpuMilli: 1000 })).allocation.gpus).toHaveLength(1)
  })

  it("Affinity: only domains already running a matching workload", () => {
    const s = cluster([
      cpuHost("a1", { domains: { rack: "r1" } }),
      cpuHost("a2", { domains: { rack: "r1" } }),
      cpuHost("b1", { domains: { rack: "r2" } }),
    ])
    right(s.place({ id: "db", cpuMilli: 1000, memoryMib: 1, labels: { app: "db" }, nodeSelector: {} }))
    const dbHost = s.allocation("db")!.host
    const dbRack = dbHost === "b1" ? "r2" : "r1"
    for (let i = 0; i < 4; i++) {
      const p = right(
        s.place({
          id: `app${i}`,
          cpuMilli: 1000,
          memoryMib: 1,
          affinity: [{ selector: { app: "db" }, level: "rack" }],
        }),
      )
      expect(p.allocation.host.startsWith(dbRack === "r1" ? "a" : "b")).toBe(true)
    }
    // Nothing matches: nothing fits.
    expect(
      left(s.place({ id: "x", cpuMilli: 1, memoryMib: 1, affinity: [{ selector: { app: "cache" }, level: "host" }] }))
        ._tag,
    ).toBe("Unschedulable")
  })

  it("AntiAffinity: never two replicas in one zone, also when the earlier one declared it", () => {
    const s = cluster([
      cpuHost("z1a", { domains: { zone: "z1" } }),
      cpuHost("z1b", { domains: { zone: "z1" } }),
      cpuHost("z2a", { domains: { zone: "z2" } }),
      cpuHost("nozone"),
    ])
    const anti = [{ selector: { app: "web" }, level: "zone" as const }]
    const zones = new Set<string>()
    for (const id of ["w1", "w2"]) {
      const p = right(s.place({ id, cpuMilli: 1, memoryMib: 1, labels: { app: "web" }, antiAffinity: anti }))
      zones.add(p.allocation.host.slice(0, 2))
      expect(p.allocation.host).not.toBe("nozone")
    }
    expect(zones.size).toBe(2)
    expect(
      left(s.place({ id: "w3", cpuMilli: 1, memoryMib: 1, labels: { app: "web" }, antiAffinity: anti }))._tag,
    ).toBe("Unschedulable")
    // Symmetric: w4 declares nothing but carries app=web, which w1/w2 repel.
    const e = left(s.place({ id: "w4", cpuMilli: 1, memoryMib: 1, labels: { app: "web" } }, { explain: true }))
    expect(e._tag === "Unschedulable" && e.explanation.filters.find((f) => f.name === "AntiAffinity")!.removed).toBe(4)
  })

  it("Spread: the count per zone never exceeds the least loaded zone by more than maxSkew", () => {
    const s = cluster([
      cpuHost("a", { cpuMilli: 100000, domains: { zone: "z1" } }),
      cpuHost("b", { cpuMilli: 1000, domains: { zone: "z2" } }),
      cpuHost("c", { cpuMilli: 100000, domains: { zone: "z3" } }),
    ])
    const placed: Array<string> = []
    for (let i = 0; i < 6; i++) {
      const r = s.place(
        { id: `r${i}`, cpuMilli: 1000, memoryMib: 1, labels: { app: "x" }, spread: [{ level: "zone", maxSkew: 1 }] },
        { policy: "binpack" },
      )
      if (r._tag === "Right") placed.push(r.right.allocation.host)
    }
    // z2 holds one replica only (capacity), so z1 and z3 may not exceed 2 each.
    expect(placed.filter((h) => h === "b")).toHaveLength(1)
    expect(placed.filter((h) => h === "a").length).toBeLessThanOrEqual(2)
    expect(placed.filter((h) => h === "c").length).toBeLessThanOrEqual(2)
    expect(placed).toHaveLength(5)
  })

  it("rejects invalid requests with a typed error", () => {
    const s = cluster([cpuHost("a")])
    expect(left(s.place({ id: "w", cpuMilli: -1, memoryMib: 1 }))._tag).toBe("InvalidSpec")
    expect(left(s.place({ id: "w", cpuMilli: 1, memoryMib: 1, gpuMilli: 1500 }))._tag).toBe("InvalidSpec")
    expect(left(s.place({ id: "w", cpuMilli: 1, memoryMib: 1 }, { policy: "nope" }))._tag).toBe("UnknownPolicy")
    right(s.place({ id: "w", cpuMilli: 1, memoryMib: 1 }))
    expect(left(s.place({ id: "w", cpuMilli: 1, memoryMib: 1 }))._tag).toBe("DuplicateWorkload")
  })
})
