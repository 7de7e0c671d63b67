import { describe, expect, it } from "@effect/vitest"
import { fuzzSeed } from "@novacron/testing"
import fc from "fast-check"
import type { HostSpec } from "../src/Host.js"
import * as Scheduler from "../src/Scheduler.js"
import type { AffinityTerm, Selector, WorkloadRequest } from "../src/Workload.js"

const models = ["A", "B", "C"]
const levels = ["host", "rack", "zone"] as const

const hostArb = fc.record({
  cpuMilli: fc.integer({ min: 1000, max: 32000 }),
  memoryMib: fc.integer({ min: 1024, max: 65536 }),
  gpus: fc.integer({ min: 0, max: 8 }),
  model: fc.constantFrom(...models),
  rack: fc.option(fc.constantFrom("r0", "r1", "r2"), { nil: undefined }),
  zone: fc.constantFrom("z0", "z1"),
  tier: fc.option(fc.constantFrom("gold", "silver"), { nil: undefined }),
  schedulable: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
})

const term = fc.record({
  selector: fc.record({ app: fc.constantFrom("a", "b", "c") }),
  level: fc.constantFrom(...levels),
})

const requestArb = fc.record({
  cpuMilli: fc.integer({ min: 0, max: 16000 }),
  memoryMib: fc.integer({ min: 0, max: 32768 }),
  gpuMilli: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 999 }), fc.constantFrom(1000, 2000, 4000)),
  gpuModels: fc.option(fc.subarray(models, { minLength: 1 }), { nil: undefined }),
  labels: fc.record({ app: fc.constantFrom("a", "b", "c") }),
  nodeSelector: fc.option(fc.record({ tier: fc.constantFrom("gold", "silver") }), { nil: undefined }),
  affinity: fc.option(fc.array(term, { maxLength: 1 }), { nil: undefined }),
  antiAffinity: fc.option(fc.array(term, { maxLength: 2 }), { nil: undefined }),
  spread: fc.option(
    fc.array(fc.record({ level: fc.constantFrom(...levels), maxSkew: fc.integer({ min: 1, max: 2 }) }), {
      maxLength: 1,
    }),
    { nil: undefined },
  ),
})

const opArb = fc.oneof(
  { weight: 6, arbitrary: requestArb.map((r) => ({ op: "place" as const, r })) },
  { weight: 2, arbitrary: fc.nat().map((i) => ({ op: "release" as const, i })) },
  { weight: 1, arbitrary: fc.record({ i: fc.nat(), on: fc.boolean() }).map((x) => ({ op: "cordon" as const, ...x })) },
)

const scenario = fc.record({
  hosts: fc.array(hostArb, { minLength: 1, maxLength: 10 }),
  ops: fc.array(opArb, { minLength: 1, maxLength: 50 }),
  policy: fc.constantFrom("binpack", "spread", "balanced", "fragmentation"),
  seed: fc.integer(),
})

type HostGen = typeof hostArb extends fc.Arbitrary<infer T> ? T : never
type Scenario = typeof scenario extends fc.Arbitrary<infer T> ? T : never

const toSpec = (h: HostGen, i: number): HostSpec => ({
  id: `h${i}`,
  cpuMilli: h.cpuMilli,
  memoryMib: h.memoryMib,
  gpu: h.gpus > 0 ? { model: h.model, count: h.gpus } : undefined,
  domains: { zone: h.zone, ...(h.rack ? { rack: h.rack } : {}) },
  labels: h.tier ? { tier: h.tier } : {},
  schedulable: h.schedulable,
})

const matches = (labels: Selector, sel: Selector) => Object.entries(sel).every(([k, v]) => labels[k] === v)

/** An independent reading of every constraint, from the public view only. */
const feasible = (
  s: Scheduler.Scheduler,
  specs: Map<string, HostSpec>,
  placed: Map<string, WorkloadRequest>,
  hostId: string,
  r: WorkloadRequest,
): boolean => {
  const spec = specs.get(hostId)!
  const usage = s.host(hostId)!
  const gpu = r.gpuMilli ?? 0
  const dom = (id: string, level: AffinityTerm["level"]): string | undefined =>
    level === "host" ? id : specs.get(id)!.domains?.[level]
  if (spec.schedulable === false) return false
  if (r.nodeSelector && !matches(spec.labels ?? {}, r.nodeSelector)) return false
  if (usage.cpuFree < r.cpuMilli || usage.memoryFree < r.memoryMib) return false
  if (gpu > 0) {
    if (!usage.gpuModel || (r.gpuModels && r.gpuModels.length > 0 && !r.gpuModels.includes(usage.gpuModel)))
      return false
    if (gpu < 1000 ? !usage.gpuFree.some((v) => v >= gpu) : usage.gpuFree.filter((v) => v === 1000).length < gpu / 1000)
      return false
  }
  const running = [...placed.values()].map((w) => ({ w, host: s.allocation(w.id)!.host }))
  for (const t of r.affinity ?? []) {
    const d = dom(hostId, t.level)
    if (
      d === undefined ||
      !running.some(({ w, host }) => matches(w.labels ?? {}, t.selector) && dom(host, t.level) === d)
    )
      return false
  }
  for (const t of r.antiAffinity ?? []) {
    const d = dom(hostId, t.level)
    if (d === undefined) return false
    if (running.some(({ w, host }) => matches(w.labels ?? {}, t.selector) && dom(host, t.level) === d)) return false
  }
  for (const { w, host } of running)
    for (const t of w.antiAffinity ?? []) {
      if (!matches(r.labels ?? {}, t.selector)) continue
      const d = dom(hostId, t.level)
      if (d === undefined || d === dom(host, t.level)) return false
    }
  for (const t of r.spread ?? []) {
    const d = dom(hostId, t.level)
    if (d === undefined) return false
    const count = (x: string) =>
      running.filter(({ w, host }) => matches(w.labels ?? {}, t.selector ?? r.labels ?? {}) && dom(host, t.level) === x)
        .length
    const domains = new Set(
      [...specs.values()].filter((h) => h.schedulable !== false).flatMap((h) => dom(h.id, t.level) ?? []),
    )
    const min = Math.min(...[...domains].map(count))
    if (count(d) + 1 - min > t.maxSkew) return false
  }
  return true
}

const run = (sc: Scenario) => {
  const s = Scheduler.make({ seed: sc.seed, policy: sc.policy })
  const specs = new Map<string, HostSpec>()
  sc.hosts.forEach((h, i) => {
    const spec = toSpec(h, i)
    specs.set(spec.id, spec)
    expect(s.join(spec)._tag).toBe("Right")
  })
  const placed = new Map<string, WorkloadRequest>()
  const log: Array<string> = []
  sc.ops.forEach((op, n) => {
    if (op.op === "place") {
      const r: WorkloadRequest = { id: `w${n}`, ...op.r }
      const ok = [...specs.keys()].filter((h) => feasible(s, specs, placed, h, r))
      const res = s.place(r)
      if (res._tag === "Right") {
        expect(ok).toContain(res.right.allocation.host)
        placed.set(r.id, r)
        log.push(`${r.id}@${res.right.allocation.host}:${res.right.allocation.gpus.map((g) => g.index).join(",")}`)
      } else {
        expect(res.left._tag).toBe("Unschedulable")
        expect(ok).toEqual([])
        log.push(`${r.id}:-`)
      }
    } else if (op.op === "release") {
      const ids = [...placed.keys()]
      if (ids.length === 0) return
      const id = ids[op.i % ids.length]!
      const alloc = s.allocation(id)!
      const before = s.host(alloc.host)!
      expect(s.release(id)._tag).toBe("Right")
      placed.delete(id)
      const after = s.host(alloc.host)!
      expect(after.cpuFree - before.cpuFree).toBe(alloc.cpuMilli)
      expect(after.memoryFree - before.memoryFree).toBe(alloc.memoryMib)
      for (const g of alloc.gpus) expect(after.gpuFree[g.index]! - before.gpuFree[g.index]!).toBe(g.milli)
      log.push(`-${id}`)
    } else {
      const id = `h${op.i % specs.size}`
      const spec = { ...specs.get(id)!, schedulable: op.on }
      expect(s.update(spec)._tag).toBe("Right")
      specs.set(id, spec)
    }
    // Capacity: free + held == capacity on every host, nothing negative, no GPU over-committed.
    for (const h of s.hosts()) {
      const held = s.allocations().filter((a) => a.host === h.id)
      expect(h.cpuFree).toBeGreaterThanOrEqual(0)
      expect(h.memoryFree).toBeGreaterThanOrEqual(0)
      expect(h.cpuFree + held.reduce((a, w) => a + w.cpuMilli, 0)).toBe(h.cpuMilli)
      expect(h.memoryFree + held.reduce((a, w) => a + w.memoryMib, 0)).toBe(h.memoryMib)
      h.gpuFree.forEach((free, i) => {
        const used = held
          .flatMap((w) => w.gpus)
          .filter((g) => g.index === i)
          .reduce((a, g) => a + g.milli, 0)
        expect(free).toBeGreaterThanOrEqual(0)
        expect(free + used).toBe(1000)
      })
    }
  })
  return { s, log, specs }
}

describe("properties over random clusters", () => {
  it("never violates a constraint, and refuses only when no host is feasible", () => {
    fc.assert(
      fc.property(scenario, (sc) => {
        run(sc)
      }),
      { numRuns: 120, seed: fuzzSeed(2026) },
    )
  })

  it("is deterministic for a seed, and releasing everything restores every host", () => {
    fc.assert(
      fc.property(scenario, (sc) => {
        const a = run(sc)
        const b = run(sc)
        expect(b.log).toEqual(a.log)
        for (const w of a.s.allocations()) expect(a.s.release(w.workload)._tag).toBe("Right")
        expect(a.s.utilisation()).toEqual({ cpu: 0, memory: 0, gpu: 0 })
        for (const h of a.s.hosts()) expect(h.gpuFree.every((v) => v === 1000)).toBe(true)
      }),
      { numRuns: 40, seed: fuzzSeed(7) },
    )
  })
})
