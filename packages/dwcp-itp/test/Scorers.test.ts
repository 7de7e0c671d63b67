import { describe, expect, it } from "@effect/vitest"
import { fuzzSeed } from "@novacron/testing"
import fc from "fast-check"
import { FgdEvaluator, TargetWorkload } from "../src/internal/fgd.js"
import { ClusterState, type HostRecord } from "../src/internal/state.js"
import { cluster, right } from "./helpers.js"

const h = (id: string, extra: object = {}) => ({ id, cpuMilli: 16000, memoryMib: 32768, ...extra })

describe("scorers and policies", () => {
  it("binpack fills the busier host, spread the idler one", () => {
    for (const [policy, expected] of [
      ["binpack", "busy"],
      ["spread", "idle"],
    ] as const) {
      const s = cluster([h("busy"), h("idle")], { policy })
      right(s.place({ id: "seed", cpuMilli: 8000, memoryMib: 8192, nodeSelector: {} }, { policy: "binpack" }))
      // Both start empty; binpack's first pick decides which is "busy".
      const busy = s.allocation("seed")!.host
      const p = right(s.place({ id: "w", cpuMilli: 1000, memoryMib: 1024 }))
      expect(p.allocation.host === busy ? "busy" : "idle").toBe(expected)
      expect(p.explanation.ranking[0]!.scores[policy === "binpack" ? "MostAllocated" : "LeastAllocated"]).toBe(100)
    }
  })

  it("balanced prefers the host whose CPU and memory use stay even", () => {
    const s = cluster([h("cpuheavy"), h("memheavy")], { policy: "balanced" })
    right(s.place({ id: "c", cpuMilli: 12000, memoryMib: 1024, nodeSelector: {} }, { policy: "binpack" }))
    const cpuHeavy = s.allocation("c")!.host
    const other = cpuHeavy === "cpuheavy" ? "memheavy" : "cpuheavy"
    right(s.place({ id: "m", cpuMilli: 1000, memoryMib: 24576 }, { policy: "binpack", explain: true }))
    // A memory-hungry workload evens out the CPU-heavy host.
    const p = right(s.place({ id: "w", cpuMilli: 500, memoryMib: 16384 }))
    expect(s.allocation("m")!.host).toBe(cpuHeavy)
    expect([cpuHeavy, other]).toContain(p.allocation.host)
    expect(p.explanation.ranking[0]!.scores.BalancedAllocation).toBe(100)
  })

  it("SelectorSpread keeps replicas with the same labels apart under spread", () => {
    const s = cluster([h("a"), h("b"), h("c")], { policy: "spread" })
    const hosts = new Set<string>()
    for (let i = 0; i < 3; i++)
      hosts.add(right(s.place({ id: `r${i}`, cpuMilli: 100, memoryMib: 1, labels: { app: "x" } })).allocation.host)
    expect(hosts.size).toBe(3)
  })

  it("NetworkProximity follows the domain hierarchy and measured overrides", () => {
    const s = cluster(
      [
        h("r1a", { domains: { rack: "r1", zone: "z1", region: "eu" }, labels: { db: "yes" } }),
        h("r1b", { domains: { rack: "r1", zone: "z1", region: "eu" } }),
        h("r2a", { domains: { rack: "r2", zone: "z1", region: "eu" } }),
        h("far", { domains: { rack: "r9", zone: "z9", region: "us" } }),
      ],
      { policy: "spread" },
    )
    expect(right(s.distance("r1a", "r1a"))).toBe(0)
    expect(right(s.distance("r1a", "r1b"))).toBe(1)
    expect(right(s.distance("r1a", "r2a"))).toBe(2)
    expect(right(s.distance("r1a", "far"))).toBe(4)
    right(s.place({ id: "db", cpuMilli: 15000, memoryMib: 1, nodeSelector: { db: "yes" } }))
    const p = right(s.place({ id: "app", cpuMilli: 100, memoryMib: 1, near: ["db"] }))
    // Spread alone ties r1b, r2a and far; proximity pulls towards the db's rack.
    expect(p.allocation.host).toBe("r1b")
    expect(p.explanation.ranking.map((r) => r.host).slice(0, 2)).toEqual(["r1b", "r2a"])
    right(s.setDistance("r1a", "far", 0.5))
    expect(right(s.distance("far", "r1a"))).toBe(0.5)
  })

  it("fragmentation keeps whole GPUs whole: a share goes onto the partly used GPU", () => {
    const s = cluster([h("g", { cpuMilli: 64000, memoryMib: 262144, gpu: { model: "T4", count: 2 } })], {
      policy: "fragmentation",
    })
    // Teach the mix: mostly whole-GPU work.
    right(s.place({ id: "a", cpuMilli: 1, memoryMib: 1, gpuMilli: 300 }))
    const first = s.allocation("a")!.gpus[0]!.index
    const p = right(s.place({ id: "b", cpuMilli: 1, memoryMib: 1, gpuMilli: 300 }))
    expect(p.allocation.gpus[0]!.index).toBe(first)
    expect(right(s.place({ id: "c", cpuMilli: 1, memoryMib: 1, gpuMilli: 1000 })).allocation.gpus[0]!.index).toBe(
      1 - first,
    )
  })

  it("fragmentation delta equals F(after) - F(before) computed from the definition", () => {
    // F_n(m): all free GPU if m cannot run on n, else free capacity of GPUs with < min(gpu_m, 1000) free.
    type Node = { cpu: number; mem: number; free: Array<number> }
    type Cls = { cpu: number; mem: number; gpu: number }
    const F = (n: Node, m: Cls): number => {
      const total = n.free.reduce((a, b) => a + b, 0)
      const cpuOk = n.cpu >= m.cpu && n.mem >= m.mem
      const gpuOk =
        m.gpu === 0 ||
        (m.gpu < 1000 ? n.free.some((v) => v >= m.gpu) : n.free.filter((v) => v === 1000).length >= m.gpu / 1000)
      if (!cpuOk || !gpuOk || (m.gpu > 0 && n.free.length === 0)) return total
      const need = Math.min(m.gpu, 1000)
      return n.free.filter((v) => v < need).reduce((a, b) => a + b, 0)
    }
    const gpuDemand = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 999 }), fc.constantFrom(1000, 2000, 4000))
    const cls = fc.record({
      cpu: fc.integer({ min: 0, max: 32 }),
      mem: fc.integer({ min: 0, max: 32 }),
      gpu: gpuDemand,
    })
    fc.assert(
      fc.property(
        fc.record({
          cpu: fc.integer({ min: 0, max: 64 }),
          mem: fc.integer({ min: 0, max: 64 }),
          free: fc.array(fc.integer({ min: 0, max: 1000 }), { minLength: 1, maxLength: 8 }),
        }),
        fc.array(cls, { minLength: 1, maxLength: 12 }),
        cls,
        (node, classes, demand) => {
          const state = new ClusterState()
          const model = state.modelId("T4")
          const target = new TargetWorkload(64, 1e12, "count")
          for (const c of classes) target.observe({ ...c, models: [] })
          const compiled = target.compile(state)
          const shares = target.classes()
          const host = {
            cpuFree: node.cpu,
            memFree: node.mem,
            model,
            gpuFree: Int32Array.from(node.free),
            gpuFreeTotal: node.free.reduce((a, b) => a + b, 0),
          } as unknown as HostRecord
          const fits =
            node.cpu >= demand.cpu &&
            node.mem >= demand.mem &&
            (demand.gpu === 0 ||
              (demand.gpu < 1000
                ? node.free.some((v) => v >= demand.gpu)
                : node.free.filter((v) => v === 1000).length >= demand.gpu / 1000))
          fc.pre(fits)
          const fgd = new FgdEvaluator()
          const delta = fgd.delta(host, demand, compiled)
          const Fm = (n: Node) => shares.reduce((acc, s) => acc + s.share * F(n, s.spec), 0)
          const after = (gpuIndex: Array<number>, each: number): Node => ({
            cpu: node.cpu - demand.cpu,
            mem: node.mem - demand.mem,
            free: node.free.map((v, i) => (gpuIndex.includes(i) ? v - each : v)),
          })
          let expected: number
          if (demand.gpu === 0) expected = Fm(after([], 0)) - Fm(node)
          else if (demand.gpu >= 1000) {
            const idle = node.free.flatMap((v, i) => (v === 1000 ? [i] : [])).slice(0, demand.gpu / 1000)
            expected = Fm(after(idle, 1000)) - Fm(node)
          } else {
            // The evaluator must pick the best GPU: compare with every option.
            const options = node.free.flatMap((v, i) =>
              v >= demand.gpu ? [Fm(after([i], demand.gpu)) - Fm(node)] : [],
            )
            expected = Math.min(...options)
            expect(Fm(after([fgd.bestGpu], demand.gpu)) - Fm(node)).toBeCloseTo(expected, 6)
          }
          expect(delta).toBeCloseTo(expected, 6)
        },
      ),
      { numRuns: 400, seed: fuzzSeed(11) },
    )
  })

  it("tracks the workload mix it assumes", () => {
    const s = cluster([h("g", { gpu: { model: "T4", count: 8 }, cpuMilli: 96000, memoryMib: 393216 })], {
      fragmentationWeighting: "count",
    })
    for (let i = 0; i < 3; i++) right(s.place({ id: `a${i}`, cpuMilli: 1000, memoryMib: 1, gpuMilli: 500 }))
    right(s.place({ id: "b", cpuMilli: 1000, memoryMib: 1 }))
    const mix = s.targetWorkload()
    expect(mix[0]!.spec.gpu).toBe(500)
    expect(mix[0]!.share).toBeCloseTo(0.75, 3)
    expect(mix[1]!.spec.gpu).toBe(0)
    expect(mix[1]!.share).toBeCloseTo(0.25, 3)
  })
})
