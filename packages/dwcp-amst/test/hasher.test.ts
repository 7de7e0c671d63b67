// The digests against one-shot references: the SHA-256 worker's shared ring (wrap-around, full ring
// falling back to transferred copies, input buffers reused by the caller right after `update`).
import { createHash } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import fc from "fast-check"
import { makeHasher, RING_SIZE, RingSpace } from "../src/internal/hasher.js"
import { payload, xxh } from "./helpers.js"

describe("hasher", () => {
  it("the ring never hands out bytes of a region not freed yet, and is full only when it must be", () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.integer({ min: 1, max: 40 }), fc.constant(0)), { maxLength: 200 }), (ops) => {
        const size = 64
        const ring = new RingSpace(size)
        const live: Array<{ at: number; n: number; skip: number }> = []
        for (const op of ops) {
          if (op === 0) {
            const r = live.shift()
            if (r) ring.free(r.n + r.skip)
            continue
          }
          const r = ring.place(op)
          const used = live.reduce((a, x) => a + x.n + x.skip, 0)
          if (r === undefined) {
            // Refused only when no contiguous run of `op` free bytes exists.
            const taken = new Array<boolean>(size).fill(false)
            for (const x of live) for (let i = 0; i < x.n; i++) taken[x.at + i] = true
            let run = 0
            let best = 0
            for (const t of taken) {
              run = t ? 0 : run + 1
              best = Math.max(best, run)
            }
            expect(op > best || used + op > size).toBe(true)
            continue
          }
          expect(r.at + op).toBeLessThanOrEqual(size)
          for (const x of live) expect(r.at + op <= x.at || x.at + x.n <= r.at).toBe(true)
          live.push({ at: r.at, n: op, skip: r.skip })
        }
      }),
      { seed: 83, numRuns: 300 },
    )
  })

  it.live("SHA-256 through the shared ring equals a one-shot SHA-256, whatever the sizes and backlog", () =>
    Effect.promise(async () => {
      const data = payload(6 * RING_SIZE, 81)
      const sizes = [1, 4096, 262_144, RING_SIZE / 2 + 3, 777_777, RING_SIZE, 65_536, 3_000_001]
      const h = makeHasher("sha256")
      // One scratch buffer for every update, overwritten at once: the hasher must have its own copy.
      const scratch = Buffer.alloc(RING_SIZE)
      let at = 0
      for (let i = 0; at < data.length; i++) {
        const n = Math.min(sizes[i % sizes.length]!, data.length - at)
        data.copy(scratch, 0, at, at + n)
        h.update(scratch.subarray(0, n))
        scratch.fill(0xee, 0, n)
        at += n
        // Let the backlog build up (ring full: the fallback path) and drain now and then.
        if (i % 7 === 6) await h.room()
      }
      expect(await h.digest()).toBe(createHash("sha256").update(data).digest("hex"))
      expect(await makeHasher("sha256").digest()).toBe(createHash("sha256").digest("hex"))
    }),
  )

  it.live("XXH3-64 incrementally equals XXH3-64 in one call", () =>
    Effect.promise(async () => {
      const data = payload(3_000_001, 82)
      const h = makeHasher("xxh3-64")
      for (let at = 0; at < data.length; at += 65_537) h.update(data.subarray(at, at + 65_537))
      expect(h.started).toBe(false)
      expect(await h.digest()).toBe(xxh(data))
      expect(await makeHasher("xxh3-64").digest()).toBe(xxh(Buffer.alloc(0)))
    }),
  )
})
