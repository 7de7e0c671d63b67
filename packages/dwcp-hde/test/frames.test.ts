import { describe, expect, it, layer } from "@effect/vitest"
import { Cause, Effect, Exit, Option } from "effect"
import fc from "fast-check"
import { compressSync as lz4Compress } from "lz4-napi"
import { Hde, HdeSettings } from "../src/index.js"
import { compress } from "../src/internal/codec.js"
import {
  CHUNK_FLAG_PAGED,
  CHUNK_HEADER_SIZE,
  Codec,
  DIGEST_SIZE,
  END_FRAME_SIZE,
  LENGTH_AT,
  STREAM_HEADER_SIZE,
  writeChunkHeader,
  writeEndFrame,
  writeStreamHeader,
} from "../src/internal/format.js"
import { Tag } from "../src/internal/pages.js"
import { memoryImage, text } from "./fixtures.js"

const settings = { ...HdeSettings.defaults, workers: 1, algorithm: "zstd" as const, chunk_size: 8192 }

/** Decodes and returns the FrameError; fails the test on success or on any other kind of failure. */
const frameError = (hde: Hde.Hde, bytes: Uint8Array) => {
  const exit = Effect.runSyncExit(hde.decode(bytes))
  if (Exit.isSuccess(exit)) throw new Error("decoded a bad stream")
  const failure = Cause.failureOption(exit.cause)
  if (Option.isNone(failure)) throw new Error(`not a typed failure: ${Cause.pretty(exit.cause)}`)
  expect(failure.value._tag).toBe("FrameError")
  return failure.value
}

const header = (maxChunkSize = 8192) =>
  writeStreamHeader({ pageShift: 12, maxChunkSize, dedupWindowPages: 16, baseDigest: undefined })

const chunkFrame = (
  fields: { codec: number; flags: number; originalSize: number; innerSize: number; seq?: number },
  payload: Uint8Array,
) => Buffer.concat([writeChunkHeader({ level: 3, seq: 0, ...fields }, payload), payload])

layer(Hde.layer(settings))("bad input", (it) => {
  it.effect("random, truncated and bit-flipped streams are rejected with the offset, never a crash", () =>
    Effect.gen(function* () {
      const hde = yield* Hde.Hde
      const samples = [yield* hde.encode(memoryImage(12)), yield* hde.encode(text(30_000))]
      for (const valid of samples) {
        expect((yield* hde.decode(valid)).length).toBeGreaterThan(0)
        fc.assert(
          fc.property(fc.nat({ max: valid.length - 1 }), (cut) => {
            const e = frameError(hde, valid.subarray(0, cut))
            expect(e.offset).toBeGreaterThanOrEqual(0)
            expect(e.offset).toBeLessThanOrEqual(cut)
          }),
          { numRuns: 150 },
        )
        fc.assert(
          fc.property(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 1, max: 255 }), (at, mask) => {
            const bad = Buffer.from(valid)
            bad[at] = (bad[at] ?? 0) ^ mask
            const e = frameError(hde, bad)
            expect(e.offset).toBeGreaterThanOrEqual(0)
            expect(e.offset).toBeLessThanOrEqual(valid.length)
          }),
          { numRuns: 300 },
        )
        fc.assert(
          fc.property(fc.nat({ max: valid.length }), fc.uint8Array({ minLength: 1, maxLength: 200 }), (at, junk) => {
            frameError(hde, Buffer.concat([valid.subarray(0, at), junk]))
          }),
          { numRuns: 150 },
        )
      }
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 4000 }), (junk) => {
          frameError(hde, junk)
          frameError(hde, Buffer.concat([header(), junk]))
        }),
        { numRuns: 200 },
      )
    }),
  )

  it.effect("a flipped payload byte is reported at its chunk's offset", () =>
    Effect.gen(function* () {
      const hde = yield* Hde.Hde
      const valid = yield* hde.encode(text(30_000))
      const secondChunk = STREAM_HEADER_SIZE + CHUNK_HEADER_SIZE + valid.readUInt32BE(STREAM_HEADER_SIZE + LENGTH_AT)
      const bad = Buffer.from(valid)
      const flip = secondChunk + CHUNK_HEADER_SIZE + 10
      bad.writeUInt8(bad.readUInt8(flip) ^ 1, flip)
      const e = frameError(hde, bad)
      // At the second chunk's checksum field.
      expect(e).toMatchObject({ protocol: "hde", reason: "BadChecksum", offset: secondChunk + 24 })
      expect(e).toMatchObject({ detail: expect.stringContaining("checksum") })
    }),
  )

  it.effect("declared sizes are bounded before anything is allocated or decompressed", () =>
    Effect.gen(function* () {
      const hde = yield* Hde.Hde
      const at = STREAM_HEADER_SIZE
      // A chunk larger than the stream's declared chunk size.
      const big = chunkFrame(
        { codec: Codec.none, flags: 0, originalSize: 1 << 30, innerSize: 1 << 30 },
        Buffer.alloc(16),
      )
      let e = frameError(hde, Buffer.concat([header(), big]))
      expect(e.offset).toBe(at + 16)
      // A stream header declaring chunk size 0.
      e = frameError(hde, header(0))
      expect(e.offset).toBe(CHUNK_HEADER_SIZE + 4)
      // A zstd bomb: 64 MiB of zeros in a few KiB, in a frame that claims 8 KiB.
      const bomb = compress(Codec.zstd, 19, Buffer.alloc(64 << 20))
      expect(bomb.length).toBeLessThan(8192)
      e = frameError(
        hde,
        Buffer.concat([
          header(),
          chunkFrame({ codec: Codec.zstd, flags: 0, originalSize: 8192, innerSize: 8192 }, bomb),
        ]),
      )
      expect(e.offset).toBe(at + CHUNK_HEADER_SIZE)
      expect(e).toMatchObject({ detail: expect.stringContaining("declares") })
      // The same with lz4: the block's own size prefix disagrees with the header.
      const lz = lz4Compress(Buffer.alloc(1 << 20))
      e = frameError(
        hde,
        Buffer.concat([header(), chunkFrame({ codec: Codec.lz4, flags: 0, originalSize: 8192, innerSize: 8192 }, lz)]),
      )
      expect(e.offset).toBe(at + CHUNK_HEADER_SIZE)
      // A dictionary (delta) chunk in a stream that has no base.
      e = frameError(
        hde,
        Buffer.concat([
          header(),
          chunkFrame({ codec: Codec.zstd, flags: 2 | 4, originalSize: 8192, innerSize: 8192 }, bomb),
        ]),
      )
      expect(e.offset).toBe(at + 9)
      // An lz4 block whose prefix is forged to match but whose data expands further.
      const forged = Buffer.from(lz)
      forged.writeUInt32LE(8192, 0)
      e = frameError(
        hde,
        Buffer.concat([
          header(),
          chunkFrame({ codec: Codec.lz4, flags: 0, originalSize: 8192, innerSize: 8192 }, forged),
        ]),
      )
      expect(e.offset).toBe(at + CHUNK_HEADER_SIZE)
    }),
  )

  it.effect("forged page streams (bad references, overruns, missing base) are rejected", () =>
    Effect.gen(function* () {
      const hde = yield* Hde.Hde
      const at = STREAM_HEADER_SIZE + CHUNK_HEADER_SIZE
      const paged = (inner: Buffer) =>
        frameError(
          hde,
          Buffer.concat([
            header(),
            chunkFrame(
              { codec: Codec.none, flags: CHUNK_FLAG_PAGED, originalSize: 8192, innerSize: inner.length },
              inner,
            ),
          ]),
        )
      const ref = (n: number) => {
        const b = Buffer.alloc(4)
        b.writeUInt32LE(n)
        return b
      }
      // Page 1 duplicates page 1 (itself), then page 0 duplicates a future page.
      for (const inner of [
        Buffer.concat([Buffer.from([Tag.zero, Tag.dup]), ref(1)]),
        Buffer.concat([Buffer.from([Tag.dup, Tag.zero]), ref(5)]),
        Buffer.from([Tag.literal, Tag.zero]), // literal without its bytes
        Buffer.from([9, Tag.zero]), // unknown tag
        Buffer.from([Tag.same, Tag.zero]), // same-as-base without a base
        Buffer.concat([Buffer.from([Tag.zero, Tag.zero]), Buffer.alloc(3)]), // trailing bytes
      ]) {
        const e = paged(inner)
        expect(e.offset).toBe(at)
      }
    }),
  )

  it.effect("chunks out of order, a wrong end frame and data after the end are rejected", () =>
    Effect.gen(function* () {
      const hde = yield* Hde.Hde
      const valid = yield* hde.encode(text(20_000))
      const decoded = yield* hde.decode(valid)
      expect(decoded.equals(text(20_000))).toBe(true)
      frameError(hde, Buffer.concat([valid, Buffer.from([0])]))
      const end = valid.subarray(valid.length - END_FRAME_SIZE)
      const digestAt = CHUNK_HEADER_SIZE + 12
      const wrongCount = writeEndFrame({
        chunkCount: 9,
        totalSize: 20_000,
        digest: end.subarray(digestAt, digestAt + DIGEST_SIZE),
      })
      let e = frameError(hde, Buffer.concat([valid.subarray(0, valid.length - END_FRAME_SIZE), wrongCount]))
      expect(e.offset).toBe(valid.length - END_FRAME_SIZE + CHUNK_HEADER_SIZE)
      const wrongDigest = writeEndFrame({ chunkCount: 3, totalSize: 20_000, digest: Buffer.alloc(DIGEST_SIZE, 1) })
      e = frameError(hde, Buffer.concat([valid.subarray(0, valid.length - END_FRAME_SIZE), wrongDigest]))
      expect(e).toMatchObject({ reason: "BadChecksum", detail: "end-to-end digest mismatch" })
      const page = Buffer.alloc(8192, 3)
      const c0 = chunkFrame({ codec: Codec.none, flags: 0, originalSize: 8192, innerSize: 8192, seq: 1 }, page)
      e = frameError(hde, Buffer.concat([header(), c0]))
      expect(e).toMatchObject({ offset: STREAM_HEADER_SIZE + 12, detail: "chunk sequence 1, expected 0" })
    }),
  )
})

describe("settings", () => {
  it("decodes defaults and rejects out-of-range values", () => {
    expect(HdeSettings.defaults).toEqual({
      algorithm: "adaptive",
      level: 3,
      enable_delta: true,
      delta_cache_size: 268435456,
      chunk_size: 1048576,
      workers: 0,
    })
    expect(Effect.runSync(HdeSettings.decode({ algorithm: "lz4", level: 9 })).level).toBe(9)
    // 0 is zstd's default level, as the design's 0-22 range has it.
    expect(HdeSettings.effectiveLevel(Effect.runSync(HdeSettings.decode({ level: 0 })))).toBe(3)
    for (const bad of [
      { level: 23 },
      { level: -1 },
      { algorithm: "lz4", level: 13 },
      { algorithm: "brotli" },
      { chunk_size: 100 },
      { workers: -1 },
    ])
      expect(Exit.isFailure(Effect.runSyncExit(HdeSettings.decode(bad))), JSON.stringify(bad)).toBe(true)
  })
})
