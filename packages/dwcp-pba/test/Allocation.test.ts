import { describe, expect, it } from "@effect/vitest"
import { fuzzSeed } from "@novacron/testing"
import fc from "fast-check"
import { Allocation } from "../src/index.js"

const transfer = fc.record(
  {
    id: fc.uuid(),
    weight: fc.double({ min: 0.01, max: 100, noNaN: true }),
    priority: fc.integer({ min: 0, max: 2 }),
    demand: fc.oneof(fc.constant(undefined), fc.double({ min: 0, max: 1e7, noNaN: true })),
    deadline: fc.oneof(
      fc.constant(undefined),
      fc.record({
        bytesRemaining: fc.double({ min: 0, max: 1e8, noNaN: true }),
        secondsLeft: fc.double({ min: 0.1, max: 100, noNaN: true }),
      }),
    ),
  },
  { requiredKeys: ["id"] },
)
const capacity = fc.double({ min: 0, max: 1e8, noNaN: true })
const tol = (x: number) => 1e-9 * Math.max(1, Math.abs(x))

describe("allocate: properties", () => {
  it("never over-commits the link nor exceeds a demand, never negative", () => {
    fc.assert(
      fc.property(capacity, fc.array(transfer, { maxLength: 12 }), (cap, ts) => {
        const grants = Allocation.allocate(cap, ts)
        const total = grants.reduce((s, g) => s + g.rate, 0)
        expect(total).toBeLessThanOrEqual(cap + tol(cap))
        grants.forEach((g, i) => {
          expect(g.rate).toBeGreaterThanOrEqual(0)
          expect(g.rate).toBeLessThanOrEqual((ts[i]!.demand ?? Infinity) + tol(g.rate))
          expect(g.reserved).toBeLessThanOrEqual(g.rate + tol(g.rate))
        })
      }),
      { seed: fuzzSeed(1) },
    )
  })

  it("redistributes unused share: the capacity is used up unless every transfer is at its demand", () => {
    fc.assert(
      fc.property(capacity, fc.array(transfer, { minLength: 1, maxLength: 12 }), (cap, ts) => {
        const grants = Allocation.allocate(cap, ts)
        const total = grants.reduce((s, g) => s + g.rate, 0)
        const allSatisfied = grants.every((g, i) => g.rate >= (ts[i]!.demand ?? Infinity) - tol(g.rate))
        if (!allSatisfied) expect(total).toBeGreaterThanOrEqual(cap - 1e-6 * Math.max(1, cap))
      }),
      { seed: fuzzSeed(2) },
    )
  })

  it("respects weights within a class: a transfer below its demand has the top rate per weight", () => {
    fc.assert(
      fc.property(capacity, fc.array(transfer, { minLength: 2, maxLength: 12 }), (cap, ts) => {
        const grants = Allocation.allocate(cap, ts)
        for (const [i, a] of ts.entries()) {
          const ga = grants[i]!
          if (ga.rate >= (a.demand ?? Infinity) - tol(ga.rate)) continue // capped by its own demand
          for (const [j, b] of ts.entries()) {
            const gb = grants[j]!
            if ((a.priority ?? 0) !== (b.priority ?? 0) || gb.rate <= gb.reserved + tol(gb.rate)) continue
            // b got more than its reservation, so a (held below demand) must not be worse off per weight.
            expect(ga.rate / (a.weight ?? 1)).toBeGreaterThanOrEqual((gb.rate / (b.weight ?? 1)) * (1 - 1e-9) - 1e-9)
          }
        }
      }),
      { seed: fuzzSeed(3) },
    )
  })

  it("serves strict priority: a lower class gets capacity beyond its reservation only when higher ones are satisfied", () => {
    fc.assert(
      fc.property(capacity, fc.array(transfer, { minLength: 2, maxLength: 12 }), (cap, ts) => {
        const grants = Allocation.allocate(cap, ts)
        const lowGotExtra = (p: number) =>
          grants.some((g, i) => (ts[i]!.priority ?? 0) < p && g.rate > g.reserved + tol(g.rate) + 1e-6)
        for (const [i, t] of ts.entries()) {
          const g = grants[i]!
          if (g.rate < (t.demand ?? Infinity) - 1e-6 * Math.max(1, g.rate)) {
            expect(lowGotExtra(t.priority ?? 0)).toBe(false)
          }
        }
      }),
      { seed: fuzzSeed(4) },
    )
  })

  it("reserves deadline rates first when the capacity covers them", () => {
    fc.assert(
      fc.property(fc.array(transfer, { minLength: 1, maxLength: 8 }), (ts) => {
        const need = ts.map((t) =>
          t.deadline ? Math.min(t.demand ?? Infinity, t.deadline.bytesRemaining / t.deadline.secondsLeft) : 0,
        )
        const cap = need.reduce((a, b) => a + b, 0) * 1.01 + 1
        const grants = Allocation.allocate(cap, ts)
        grants.forEach((g, i) => {
          expect(g.deadlineAtRisk).toBe(false)
          expect(g.rate).toBeGreaterThanOrEqual(need[i]! * (1 - 1e-9))
        })
      }),
      { seed: fuzzSeed(5) },
    )
  })
})

describe("allocate: examples", () => {
  it("splits by weight and passes a capped transfer's unused share to the others", () => {
    const [a, b, c] = Allocation.allocate(100, [
      { id: "a", weight: 3 },
      { id: "b", weight: 1 },
      { id: "c", demand: 10 },
    ])
    expect(c!.rate).toBeCloseTo(10, 9)
    expect(a!.rate).toBeCloseTo(67.5, 6)
    expect(b!.rate).toBeCloseTo(22.5, 6)
  })

  it("marks the later deadline at risk when both cannot be met", () => {
    const [early, late] = Allocation.allocate(100, [
      { id: "early", deadline: { bytesRemaining: 80, secondsLeft: 1 } },
      { id: "late", deadline: { bytesRemaining: 100, secondsLeft: 2 } },
    ])
    expect(early!.deadlineAtRisk).toBe(false)
    expect(early!.reserved).toBeCloseTo(80, 9)
    expect(late!.deadlineAtRisk).toBe(true)
    expect(early!.rate + late!.rate).toBeCloseTo(100, 6)
  })

  it("gives nothing on a dead link and rejects non-positive weights", () => {
    expect(Allocation.allocate(0, [{ id: "x" }])[0]!.rate).toBe(0)
    expect(() => Allocation.allocate(10, [{ id: "x", weight: 0 }])).toThrow(RangeError)
  })

  it("turns a rate into an AMST stream count", () => {
    expect(Allocation.streamsFor(10e6, { perStream: 3e6 })).toBe(4)
    expect(Allocation.streamsFor(0, { perStream: 3e6 })).toBe(1)
    expect(Allocation.streamsFor(1e12, { perStream: 1, max: 16 })).toBe(16)
  })
})
