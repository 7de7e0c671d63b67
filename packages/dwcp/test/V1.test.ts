import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as V1 from "../src/V1.js"

const compress = (d: Uint8Array) => V1.compression.encode(d, { compression: { algorithm: "zstd", level: 3 } })

describe("v1 compression: zstd level 3 in 1 MiB chunks", () => {
  it.effect("round-trips 3.5 MiB and compresses a page-like pattern", () =>
    Effect.gen(function* () {
      const data = Buffer.alloc(3.5 * 1024 * 1024)
      for (let i = 0; i < data.length; i += 4096) data.writeUInt32BE(i, i)
      const enc = yield* compress(data)
      expect(enc.length).toBeLessThan(data.length / 10)
      expect(Buffer.from(yield* V1.compression.decode(enc, data.length)).equals(data)).toBe(true)
    }),
  )

  it.effect("refuses more output than maxSize before inflating it, naming the byte", () =>
    Effect.gen(function* () {
      const enc = yield* compress(Buffer.alloc(2 * 1024 * 1024))
      const e = yield* Effect.flip(V1.compression.decode(enc, 1024 * 1024))
      expect(e).toMatchObject({ _tag: "BadPayload", reason: `payload exceeds ${1024 * 1024} bytes` })
      expect(e._tag === "BadPayload" && e.offset).toBeGreaterThan(0)
    }),
  )

  it.effect("a truncated or corrupt stream fails with what and where", () =>
    Effect.gen(function* () {
      const enc = Buffer.from(yield* compress(Buffer.alloc(100_000, 1)))
      const cut = yield* Effect.flip(V1.compression.decode(enc.subarray(0, enc.length - 3), 1 << 20))
      expect(cut).toMatchObject({ _tag: "BadPayload", offset: 0, reason: expect.stringContaining("runs past the end") })
      const bad = Buffer.from(enc)
      bad.fill(0xee, 4, 12)
      expect(yield* Effect.flip(V1.compression.decode(bad, 1 << 20))).toMatchObject({ _tag: "BadPayload", offset: 0 })
    }),
  )
})

describe("v1 placement: first fit", () => {
  const hosts = [
    { id: "small", cpuMilli: 500, memoryMib: 512 },
    { id: "cordoned", cpuMilli: 8000, memoryMib: 8192, schedulable: false },
    { id: "ssd", cpuMilli: 4000, memoryMib: 4096, labels: { disk: "ssd" } },
    { id: "big", cpuMilli: 8000, memoryMib: 16384 },
  ]
  it.effect("the first host in order with room, schedulable, with the selected labels", () =>
    Effect.gen(function* () {
      expect(yield* V1.placement.place({ id: "w", cpuMilli: 1000, memoryMib: 1024 }, hosts)).toBe("ssd")
      expect(yield* V1.placement.place({ id: "w", cpuMilli: 6000, memoryMib: 1024 }, hosts)).toBe("big")
      expect(
        yield* V1.placement.place({ id: "w", cpuMilli: 100, memoryMib: 100, nodeSelector: { disk: "ssd" } }, hosts),
      ).toBe("ssd")
      const e = yield* Effect.flip(V1.placement.place({ id: "w", cpuMilli: 9000, memoryMib: 1 }, hosts))
      expect(e).toMatchObject({ _tag: "NoHostFits", workload: "w" })
    }),
  )
})
