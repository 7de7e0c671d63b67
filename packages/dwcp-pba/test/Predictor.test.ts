import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { History, Predictor } from "../src/index.js"

describe("baselines", () => {
  it("last value predicts the newest sample at both horizons", () => {
    const p = Predictor.lastValue().predictSync([1e6, 2e6, 3e6])
    expect(p.oneSecond.mean).toBe(3e6)
    expect(p.fiveSeconds.mean).toBe(3e6)
    expect(p.status).toBe("ok")
  })

  it("EWMA folds oldest first from the oldest sample", () => {
    // m = 0 → 0.5·4e6 = 2e6 → 0.5·8e6 + 0.5·2e6 = 5e6
    expect(Predictor.ewma(0.5).predictSync([0, 4e6, 8e6]).oneSecond.mean).toBeCloseTo(5e6, 6)
    expect(Predictor.ewma(1).predictSync([7, 9]).oneSecond.mean).toBe(9)
  })

  it("harmonic mean uses only the last n samples and floors outages at one packet per second", () => {
    expect(Predictor.harmonicMean(2).predictSync([9, 1e6, 3e6]).oneSecond.mean).toBeCloseTo(1.5e6, 6)
    expect(Predictor.harmonicMean(5).predictSync([2e6]).oneSecond.mean).toBeCloseTo(2e6, 6)
    expect(Predictor.harmonicMean(2).predictSync([0, 1500]).oneSecond.mean).toBeCloseTo(1500, 9)
  })

  it("a constant series has a zero-width interval; a noisy one widens with the horizon", () => {
    const flat = Predictor.harmonicMean().predictSync(new Array(20).fill(4e6))
    expect(flat.oneSecond.lower).toBeCloseTo(4e6, 3)
    expect(flat.oneSecond.upper).toBeCloseTo(4e6, 3)
    const noisy = Predictor.ewma().predictSync([1e6, 5e6, 2e6, 6e6, 1e6, 4e6])
    for (const f of [noisy.oneSecond, noisy.fiveSeconds]) {
      expect(f.lower).toBeLessThan(f.mean)
      expect(f.upper).toBeGreaterThan(f.mean)
      expect(f.lower).toBeGreaterThanOrEqual(0)
    }
    expect(noisy.fiveSeconds.upper - noisy.fiveSeconds.lower).toBeGreaterThan(
      noisy.oneSecond.upper - noisy.oneSecond.lower,
    )
  })

  it("an empty history gives a degraded zero prediction", () => {
    const p = Predictor.lastValue().predictSync([])
    expect(p.status).toBe("degraded")
    expect(p.oneSecond.mean).toBe(0)
  })

  it.effect("predict is the Effect form of predictSync", () =>
    Effect.gen(function* () {
      const xs = [3e6, 1e6, 2e6]
      const hm = Predictor.harmonicMean(3)
      expect(yield* hm.predict(xs)).toEqual(hm.predictSync(xs))
    }),
  )

  it("bestOf picks the candidate with the lowest recent one-step error on the history itself", () => {
    const best = Predictor.bestOf([Predictor.lastValue(), Predictor.harmonicMean(5)])
    // A steady ramp: last value is always closer than the harmonic mean of the last five.
    const ramp = Array.from({ length: 20 }, (_, i) => 1e6 * (i + 1))
    expect(best.predictSync(ramp)).toMatchObject({ predictor: "best(last-value)", status: "ok" })
    expect(best.predictSync(ramp).oneSecond.mean).toBe(20e6)
    // Alternating high/low: the harmonic mean's stable estimate errs less than chasing the last sample.
    const zigzag = Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? 4e6 : 1e6))
    expect(best.predictSync(zigzag).predictor).toBe("best(harmonic-mean(5))")
  })

  it("rejects invalid parameters", () => {
    expect(() => Predictor.ewma(0)).toThrow(RangeError)
    expect(() => Predictor.harmonicMean(0)).toThrow(RangeError)
  })
})

describe("History", () => {
  it("bins byte counts into periods, fills idle periods with zeros, and keeps the last window", () => {
    const h = History.make({ window: 3, periodMs: 1000 })
    h.record(100, 0)
    h.record(400, 999)
    h.record(50, 1500) // closes [0, 1000): 500 B/s
    h.advance(4200) // closes [1000, 2000) = 50, then idle [2000, 3000) and [3000, 4000)
    expect([...h.samples()]).toEqual([50, 0, 0])
    h.push(7)
    expect([...h.samples()]).toEqual([0, 0, 7])
    expect(h.size()).toBe(3)
  })

  it("scales to bytes per second for sub-second periods", () => {
    const h = History.make({ window: 10, periodMs: 100 })
    h.record(1000, 0)
    h.advance(100)
    expect([...h.samples()]).toEqual([10_000])
  })

  it("rejects invalid samples and settings", () => {
    const h = History.make({ window: 2, periodMs: 1000 })
    expect(() => h.push(Number.NaN)).toThrow(RangeError)
    expect(() => h.push(-1)).toThrow(RangeError)
    expect(() => History.make({ window: 0, periodMs: 1000 })).toThrow(RangeError)
  })
})
