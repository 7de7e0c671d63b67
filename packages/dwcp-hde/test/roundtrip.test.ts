import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"
import { Hde, HdeSettings } from "../src/index.js"
import { analyse } from "../src/internal/chunk.js"
import { compress, decompress } from "../src/internal/codec.js"
import { CHUNK_HEADER_SIZE, Codec, END_FRAME_SIZE, STREAM_HEADER_SIZE } from "../src/internal/format.js"
import { emptyStats, encodePages, isZeroAt, wordsOf } from "../src/internal/pages.js"
import { memoryImage, randomBytes, text } from "./fixtures.js"

const inputs = {
  empty: Buffer.alloc(0),
  tiny: Buffer.from("x"),
  text: text(150_000),
  random: randomBytes(70_000),
  memory: memoryImage(40),
}

const settings = (s: Partial<HdeSettings.CompressionSettings>) => ({ ...HdeSettings.defaults, workers: 1, ...s })

describe("zero pages", () => {
  it("one non-zero byte anywhere makes a page non-zero, whatever the chunk's alignment and length", () => {
    for (const offset of [0, 1, 2, 4]) {
      for (const length of [8192, 8190, 4097]) {
        for (const at of [0, 1, 2047, 4093, 4095, 4096, length - 1]) {
          const chunk = new Uint8Array(length + 8).subarray(offset, offset + length)
          chunk[at] = 1
          const pageOf = at >> 12
          const fps = analyse(chunk, 4096).fingerprints
          // A full non-zero page has a fingerprint; a zero or partial page has none (-1).
          for (let p = 0; p < fps.length; p++) {
            const full = (p + 1) * 4096 <= length
            expect(fps[p] !== -1, `offset ${offset} length ${length} byte ${at} page ${p}`).toBe(p === pageOf && full)
            expect(isZeroAt(chunk, wordsOf(chunk), p * 4096, Math.min(length, (p + 1) * 4096))).toBe(p !== pageOf)
          }
          const stats = emptyStats()
          const pages = Math.ceil(length / 4096)
          const none = new Int32Array(pages).fill(-1)
          encodePages({ chunk, pageSize: 4096, dupRefs: none, baseRefs: none, base: undefined, xbzrle: false }, stats)
          expect(stats.zero).toBe(pages - 1)
        }
      }
    }
  })
})

describe("round trips", () => {
  for (const algorithm of ["none", "lz4", "zstd", "adaptive"] as const) {
    it.scoped(`${algorithm}: every input, chunk size and page mode`, () =>
      Effect.gen(function* () {
        for (const [chunk_size, pages] of [
          [4096, true],
          [10_000, true],
          [10_000, false],
          [1_048_576, true],
        ] as const) {
          {
            const hde = yield* Hde.make(settings({ algorithm, chunk_size, level: algorithm === "zstd" ? 9 : 3 }), {
              pages,
            })
            for (const [name, data] of Object.entries(inputs)) {
              const encoded = yield* hde.encode(data)
              const decoded = yield* hde.decode(encoded)
              expect(decoded.equals(data), `${name} chunk ${chunk_size} pages ${pages}`).toBe(true)
            }
            const stats = yield* hde.stats
            expect(stats.chunks).toBeGreaterThan(0)
            if (algorithm !== "adaptive")
              expect(Object.keys(stats.codecs).every((k) => k === "none" || k.startsWith(algorithm))).toBe(true)
          }
        }
      }),
    )
  }

  it("every zstd level from 1 to 22 round-trips and higher levels do not compress worse than level 1", () => {
    const data = text(40_000)
    const sizes: Array<number> = []
    for (let level = 1; level <= 22; level++) {
      const encoded = compress(Codec.zstd, level, data)
      expect(decompress(Codec.zstd, encoded, data.length, 0).equals(data)).toBe(true)
      sizes.push(encoded.length)
    }
    expect(Math.max(...sizes.slice(1))).toBeLessThanOrEqual(sizes[0] ?? 0)
    expect(sizes[18]).toBeLessThan(sizes[0] ?? 0)
  })

  it.scoped("the service honours the configured zstd level", () =>
    Effect.gen(function* () {
      const data = text(200_000)
      const size = (level: number) =>
        Effect.gen(function* () {
          const hde = yield* Hde.make(settings({ algorithm: "zstd", level, chunk_size: 65536 }))
          const encoded = yield* hde.encode(data)
          expect((yield* hde.decode(encoded)).equals(data)).toBe(true)
          expect((yield* hde.stats).codecs).toEqual({ [`zstd${level}`]: 4 })
          return encoded.length
        })
      expect(yield* size(19)).toBeLessThan(yield* size(1))
    }),
  )

  it.scoped("level 0 is zstd's own default level (3), as the design's 0-22 range means it", () =>
    Effect.gen(function* () {
      const data = text(200_000)
      const codecs = (level: number) =>
        Effect.gen(function* () {
          const hde = yield* Hde.make(settings({ algorithm: "zstd", level, chunk_size: 65536 }))
          const encoded = yield* hde.encode(data)
          expect((yield* hde.decode(encoded)).equals(data)).toBe(true)
          return (yield* hde.stats).codecs
        })
      expect(yield* codecs(0)).toEqual({ zstd3: 4 })
      expect(yield* codecs(0)).toEqual(yield* codecs(3))
    }),
  )

  it.scoped("zero and duplicate pages are eliminated within a transfer, across chunks", () =>
    Effect.gen(function* () {
      const hde = yield* Hde.make(settings({ algorithm: "none", chunk_size: 16384 }))
      const page = text(4096)
      const P = 4096
      // 12 pages: [text, zero, zero, text(dup), random, text(dup) ...] over three chunks of 4 pages.
      const data = Buffer.alloc(12 * P)
      for (const p of [0, 3, 5, 9, 11]) page.copy(data, p * P)
      randomBytes(P).copy(data, 4 * P)
      const encoded = yield* hde.encode(data)
      expect((yield* hde.decode(encoded)).equals(data)).toBe(true)
      const stats = yield* hde.stats
      expect(stats.pages).toEqual({ zero: 6, dup: 4, same: 0, delta: 0, moved: 0, literal: 2 })
      // Uncompressed, yet the 12 pages travel as 2 pages plus headers, tags and references.
      expect(encoded.length).toBeLessThan(2 * P + 300)
    }),
  )

  it.scoped("duplicates never point further back than the window the decoder keeps", () =>
    Effect.gen(function* () {
      const P = 4096
      const page = randomBytes(P, 9)
      const data = Buffer.alloc(40 * P, 1)
      page.copy(data, 0)
      page.copy(data, 39 * P) // 39 pages back: outside an 8-page window
      page.copy(data, 6 * P) // 6 back from 0: inside
      for (let p = 1; p < 40; p++) if (p !== 6 && p !== 39) data.writeUInt32LE(p, p * P)
      const hde = yield* Hde.make(settings({ algorithm: "none", chunk_size: 8192 }), { dedupWindow: 8 * P })
      const encoded = yield* hde.encode(data)
      expect((yield* hde.decode(encoded)).equals(data)).toBe(true)
      expect((yield* hde.stats).pages.dup).toBe(1)
    }),
  )

  it.scoped("streams: any input chunking in, any frame split in, same bytes out", () =>
    Effect.gen(function* () {
      const hde = yield* Hde.make(settings({ algorithm: "zstd", chunk_size: 8192 }))
      const data = memoryImage(20)
      const pieces = (b: Buffer, sizes: ReadonlyArray<number>) => {
        const out: Array<Uint8Array> = []
        for (let at = 0, i = 0; at < b.length; i++) {
          const n = sizes[i % sizes.length] ?? 1
          out.push(b.subarray(at, at + n))
          at += n
        }
        return out
      }
      const encoded = Buffer.concat(
        Chunk.toReadonlyArray(
          yield* Stream.runCollect(hde.encodeStream()(Stream.fromIterable(pieces(data, [1, 5000, 77, 12000])))),
        ),
      )
      expect(encoded.equals(yield* hde.encode(data))).toBe(true)
      const decoded = yield* Stream.runCollect(
        hde.decodeStream()(Stream.fromIterable(pieces(encoded, [3, 1, 999, 24, 52]))),
      )
      expect(Buffer.concat(Chunk.toReadonlyArray(decoded)).equals(data)).toBe(true)
    }),
  )

  it.scoped("adaptive mode compresses hard on a slow link and lightly or not at all on a fast one", () =>
    Effect.gen(function* () {
      const hde = yield* Hde.make(settings({ algorithm: "adaptive", chunk_size: 65536 }))
      const data = text(1_048_576)
      yield* hde.setLinkSpeed(1e6) // 8 Mbit/s WAN
      const slow = yield* hde.encode(data)
      const slowCodecs = { ...(yield* hde.stats).codecs }
      yield* hde.setLinkSpeed(1e11) // far faster than any compressor
      const fast = yield* hde.encode(data)
      const after = (yield* hde.stats).codecs
      expect((yield* hde.decode(slow)).equals(data)).toBe(true)
      expect((yield* hde.decode(fast)).equals(data)).toBe(true)
      expect(Object.keys(slowCodecs).every((k) => k.startsWith("zstd"))).toBe(true)
      expect(after.none ?? 0).toBe(16)
      expect(fast.length).toBeGreaterThan(data.length)
      expect(slow.length).toBeLessThan(data.length / 3)
    }),
  )

  it.scoped("adaptive mode sends incompressible data as it is", () =>
    Effect.gen(function* () {
      const hde = yield* Hde.make(settings({ algorithm: "adaptive", chunk_size: 65536 }))
      yield* hde.setLinkSpeed(1e6)
      const data = randomBytes(262_144)
      const encoded = yield* hde.encode(data)
      expect((yield* hde.stats).codecs).toEqual({ none: 4 })
      expect(encoded.length).toBe(data.length + STREAM_HEADER_SIZE + 4 * CHUNK_HEADER_SIZE + END_FRAME_SIZE)
    }),
  )
})
