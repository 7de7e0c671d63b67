import { describe, expect, it } from "@effect/vitest"
import type { FilterPlugin, ScorePlugin } from "../src/Plugin.js"
import { cluster, left, right } from "./helpers.js"

const hosts = ["h1", "h2", "h3", "h4"].map((id, i) => ({ id, cpuMilli: 8000 * (i + 1), memoryMib: 16384 }))

describe("plugin extension points", () => {
  it("runs extra filters after the built-in ones and reports what they removed", () => {
    const noEven: FilterPlugin = { name: "NoEven", filter: (h) => Number(h.id.slice(1)) % 2 === 1 }
    const s = cluster(hosts, { filters: [noEven], policy: "binpack" })
    const p = right(s.place({ id: "w", cpuMilli: 10000, memoryMib: 1 }, { explain: true }))
    expect(p.allocation.host).toBe("h3")
    expect(p.explanation.filters.find((f) => f.name === "Resources")).toMatchObject({ removed: 1, hosts: ["h1"] })
    expect(p.explanation.filters.find((f) => f.name === "NoEven")).toMatchObject({ removed: 2, hosts: ["h2", "h4"] })
    expect(p.explanation.feasible).toBe(1)
  })

  it("uses extra scorers through a custom policy, weighted and normalised", () => {
    const prefer: ScorePlugin = { name: "PreferH2", score: (h) => (h.id === "h2" ? 1 : 0) }
    const s = cluster(hosts, {
      scorers: [prefer],
      policies: {
        custom: {
          name: "custom",
          scorers: [
            { plugin: "PreferH2", weight: 3 },
            { plugin: "LeastAllocated", weight: 1 },
          ],
          gpuPick: "tightest",
        },
      },
    })
    const p = right(s.place({ id: "w", cpuMilli: 1000, memoryMib: 1 }, { policy: "custom" }))
    expect(p.allocation.host).toBe("h2")
    expect(p.explanation.policy).toBe("custom")
    expect(p.explanation.ranking[0]).toMatchObject({ host: "h2", scores: { PreferH2: 100 } })
    expect(p.explanation.ranking[0]!.total).toBeGreaterThanOrEqual(300)
  })

  it("commit re-checks every filter for a host outside the ranking", () => {
    const s = cluster(hosts, { top: 1, policy: "binpack" })
    const ev = right(s.evaluate({ id: "w", cpuMilli: 12000, memoryMib: 1 }))
    expect(ev.explanation.ranking).toHaveLength(1)
    // h1 has 8 cores: it cannot take 12.
    expect(left(s.commit(ev, "h1", "test"))._tag).toBe("Unschedulable")
    const ok = right(s.commit(ev, "h4", "test"))
    expect(ok.allocation.host).toBe("h4")
    expect(ok.explanation.optimizer).toEqual({ name: "test", chose: "h4" })
  })
})
