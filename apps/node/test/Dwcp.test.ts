import { Config } from "@novacron/config"
import { Placement } from "@novacron/dwcp-itp"
import { Context, Effect, Layer } from "effect"
import { describe, expect, it } from "vitest"
import { plan, rolloutBucket } from "../src/Dwcp.js"

const settings = (sets: ReadonlyArray<string>) =>
  Effect.runPromise(Config.load({ env: {}, flags: sets.flatMap((s) => ["--set", s]) })).then((l) => l.settings)

describe("v3 rollout", () => {
  it("gives a node the same bucket on every boot and every build, and spreads node ids evenly over 0..99", () => {
    // Pinned: the first 4 bytes of sha256(node id), big-endian, mod 100. A change of hash, seed or
    // byte order would move nodes in or out of a running rollout on upgrade; a random or
    // per-process bucket would move them on every restart.
    expect(["node-17", "node-a", "host-0", ""].map(rolloutBucket)).toEqual([69, 44, 2, 10])
    const deciles = new Array<number>(10).fill(0)
    for (let i = 0; i < 10_000; i++) {
      const b = rolloutBucket(`host-${i}`)
      expect(b).toBeGreaterThanOrEqual(0)
      expect(b).toBeLessThan(100)
      deciles[Math.floor(b / 10)]! += 1
    }
    // 1,000 expected per decile; a fair split stays well within ±15 %.
    for (const n of deciles) expect(Math.abs(n - 1000)).toBeLessThan(150)
  })

  it("adds nothing when no v3 flag is set, whatever the rollout", async () => {
    expect(await plan(await settings(["dwcp.v3_rollout_percentage=100"]))).toEqual({ components: [], notes: [] })
  })

  it("turns a part on only for nodes whose bucket is below the percentage", async () => {
    const ids = Array.from({ length: 200 }, (_, i) => `n${i}`)
    const inside = ids.find((id) => rolloutBucket(id) < 30)!
    const outside = ids.find((id) => rolloutBucket(id) >= 30)!
    const base = ["dwcp.enable_v3_placement=true", "dwcp.v3_rollout_percentage=30"]
    const on = await plan(await settings([...base, `system.node_id=${inside}`]))
    expect(on.components.map((c) => c.name)).toEqual(["dwcp-itp"])
    expect(on.notes).toEqual([])
    const off = await plan(await settings([...base, `system.node_id=${outside}`]))
    expect(off.components).toEqual([])
    expect(off.notes[0]).toContain(`node ${outside} is outside the v3 rollout`)
  })

  it("a section its owner's schema refuses is named as refused settings, not as a package that did not load", async () => {
    const s = await settings(["dwcp.enable_v3_compression=true", "dwcp.v3_rollout_percentage=100"])
    const bad = { ...s, dwcp: { ...s.dwcp, compression: { ...s.dwcp.compression, workers: -1 } } }
    const p = await plan(bad)
    expect(p.components).toEqual([])
    expect(p.notes).toHaveLength(1)
    expect(p.notes[0]).toMatch(/^dwcp: enable_v3_compression is set, but its settings were refused \(.*workers/s)
  })

  it("passes dwcp.placement through to the placement service", async () => {
    const p = await plan(
      await settings([
        "dwcp.enable_v3_placement=true",
        "dwcp.v3_rollout_percentage=100",
        "dwcp.placement.policy=spread",
      ]),
    )
    const policy = await Effect.runPromise(
      Effect.scoped(
        Effect.flatMap(Layer.build(p.components[0]!.layer as Layer.Layer<Placement.Placement>), (ctx) =>
          Effect.succeed(Context.get(ctx, Placement.Placement).policy),
        ),
      ),
    )
    expect(policy).toBe("spread")
  })
})
