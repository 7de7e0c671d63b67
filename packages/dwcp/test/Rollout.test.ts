import { describe, expect, it } from "vitest"
import * as Rollout from "../src/Rollout.js"

describe("v3 rollout bucket", () => {
  it("gives a node the same bucket on every boot and every build, and spreads node ids evenly over 0..99", () => {
    // Pinned: the first 4 bytes of sha256(node id), big-endian, mod 100. A change of hash, seed or
    // byte order would move nodes in or out of a running rollout on upgrade; a random or
    // per-process bucket would move them on every restart.
    expect(["node-17", "node-a", "host-0", ""].map(Rollout.rolloutBucket)).toEqual([69, 44, 2, 10])
    const deciles = new Array<number>(10).fill(0)
    for (let i = 0; i < 10_000; i++) {
      const b = Rollout.rolloutBucket(`host-${i}`)
      expect(b).toBeGreaterThanOrEqual(0)
      expect(b).toBeLessThan(100)
      deciles[Math.floor(b / 10)]! += 1
    }
    // 1,000 expected per decile; a fair split stays well within ±15 %.
    for (const n of deciles) expect(Math.abs(n - 1000)).toBeLessThan(150)
  })
})
