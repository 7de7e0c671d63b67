import { describe, expect, it } from "@effect/vitest"
import { choose, initialEstimates, key, learn } from "../src/internal/adaptive.js"
import { Codec } from "../src/internal/format.js"

const MB = 1e6

describe("adaptive codec choice", () => {
  const estimates = initialEstimates(3)
  const pick = (linkBps: number, ratio: number, workers = 2) => key(choose({ linkBps, workers, estimates }, ratio))

  it("compresses hard on a slow link, lightly on a fast one, not at all when the link outruns the compressors", () => {
    // 1 MB/s: even zstd 19 (4 MB/s per worker) outruns the link, so the best ratio wins.
    expect(pick(1 * MB, 3)).toBe("zstd19")
    // 100 MB/s: zstd 9 compresses 2 x 60 MB/s < the 100 x 3 x 1.4 MB/s the link could carry; zstd 3 wins.
    expect(pick(100 * MB, 3)).toBe("zstd3")
    // 1.25 GB/s: lz4 on two workers (1.2 GB/s) is within 5 % of sending raw and compresses 3x.
    expect(pick(1250 * MB, 3)).toBe("lz4")
    // 10 GB/s: nothing keeps up with the link.
    expect(pick(10_000 * MB, 3)).toBe("none")
  })

  it("sends incompressible data as it is, whatever the link", () => {
    expect(pick(1 * MB, 1.01)).toBe("none")
    expect(choose({ linkBps: 1 * MB, workers: 1, estimates }, 1.04)).toEqual({ codec: Codec.none, level: 0 })
  })

  it("more workers move the choice towards heavier codecs", () => {
    expect(pick(400 * MB, 3, 1)).not.toBe(pick(400 * MB, 3, 16))
  })

  it("learns speed and gain from measured chunks", () => {
    const e = initialEstimates(3)
    const before = e.zstd3?.speed ?? 0
    for (let i = 0; i < 40; i++)
      learn(e, { codec: Codec.zstd, level: 3 }, { bytes: 1 << 20, nanos: 10_000_000, ratio: 6, sampleRatio: 3 })
    expect(e.zstd3?.speed).toBeLessThan(before)
    // 40 observations at weight 1/8 leave under 1 % of the prior.
    expect(Math.abs((e.zstd3?.speed ?? 0) / (((1 << 20) * 1e9) / 10_000_000) - 1)).toBeLessThan(0.01)
    expect(e.zstd3?.gain).toBeCloseTo(2, 1)
  })
})
