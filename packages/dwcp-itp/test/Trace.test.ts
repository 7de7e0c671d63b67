import { existsSync } from "node:fs"
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { nodes, pods, traceDir } from "../bench/trace.js"
import * as Scheduler from "../src/Scheduler.js"

const present = existsSync(traceDir)
if (!present && process.env.CI) throw new Error(`cluster trace missing at ${traceDir}`)

// Outside CI the trace may be absent (it is not part of the package).
describe.skipIf(!present)("the Alibaba openb trace", () => {
  it("replays 3,000 workloads over 1,523 hosts without over-committing, the same way twice", () => {
    const hosts = nodes()
    const list = pods("openb_pod_list_gpushare40.csv").slice(0, 3000)
    const replay = () => {
      const s = Scheduler.make({ seed: 3, policy: "fragmentation" })
      for (const h of hosts) expect(Either.isRight(s.join(h))).toBe(true)
      const out = list.map((p) => {
        const r = s.place(p)
        return Either.isRight(r) ? `${r.right.allocation.host}/${r.right.allocation.gpus.map((g) => g.index)}` : "-"
      })
      return { s, out }
    }
    const a = replay()
    expect(a.s.hosts()).toHaveLength(1523)
    expect(a.out.filter((x) => x !== "-").length).toBeGreaterThan(2900)
    for (const h of a.s.hosts()) {
      expect(h.cpuFree).toBeGreaterThanOrEqual(0)
      expect(h.memoryFree).toBeGreaterThanOrEqual(0)
      for (const g of h.gpuFree) expect(g).toBeGreaterThanOrEqual(0)
    }
    expect(replay().out).toEqual(a.out)
  })
})
