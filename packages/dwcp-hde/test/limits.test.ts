// Issue 18: a hostile sender gets nothing. Each test is one of the review's probes, turned into
// an assertion on the typed error (which limit, which chunk, which byte) and on how much the
// decoder produced or copied, never on time.
import { describe, expect, it, vi } from "@effect/vitest"
import { Cause, Effect, Exit, Option, Stream } from "effect"
import { Hde, HdeSettings } from "../src/index.js"
import { analyse, digestOf } from "../src/internal/chunk.js"
import { compress } from "../src/internal/codec.js"
import {
  CHUNK_FLAG_PAGED,
  CHUNK_HEADER_SIZE,
  Codec,
  END_FRAME_SIZE,
  STREAM_HEADER_SIZE,
  writeChunkHeader,
  writeEndFrame,
  writeStreamHeader,
} from "../src/internal/format.js"
import { Tag } from "../src/internal/pages.js"
import { randomBytes, text } from "./fixtures.js"

const MiB = 1 << 20
const settings = (s: Partial<HdeSettings.CompressionSettings> = {}) => ({
  ...HdeSettings.defaults,
  workers: 1,
  algorithm: "zstd" as const,
  chunk_size: 8192,
  ...s,
})

const streamHeader = (maxChunkSize: number, pageShift = 12, dedupWindowPages = 0) =>
  writeStreamHeader({ pageShift, maxChunkSize, dedupWindowPages, baseDigest: undefined })

/** A chunk frame of `size` zero bytes: one zero tag per page, zstd'd when `packed`. */
const zeroChunk = (seq: number, size: number, pageShift: number, packed: boolean): Buffer => {
  const tags = Buffer.alloc(Math.ceil(size / 2 ** pageShift), Tag.zero)
  const payload = packed ? compress(Codec.zstd, 19, tags) : tags
  const codec = packed ? Codec.zstd : Codec.none
  const fields = { codec, flags: CHUNK_FLAG_PAGED, level: 0, seq, originalSize: size, innerSize: tags.length }
  return Buffer.concat([writeChunkHeader(fields, payload), payload])
}

/** A valid stream of `chunks` chunks of `size` zero bytes, end frame and digest included. */
const zeros = (o: { chunks: number; size: number; pageShift?: number; packed?: boolean; maxChunkSize?: number }) => {
  const pageShift = o.pageShift ?? 12
  const frames = Array.from({ length: o.chunks }, (_, i) => zeroChunk(i, o.size, pageShift, o.packed ?? true))
  const chunkDigest = analyse(Buffer.alloc(o.size), 2 ** pageShift).digest
  const digest = digestOf(Buffer.concat(Array.from({ length: o.chunks }, () => chunkDigest)))
  const end = writeEndFrame({ chunkCount: o.chunks, totalSize: o.chunks * o.size, digest })
  const pieces = [streamHeader(o.maxChunkSize ?? o.size, pageShift), ...frames, end]
  // `pieces`: one frame per piece, so that what was decoded before a failure shows.
  return { wire: Buffer.concat(pieces), frames, pieces }
}

/** Decodes `pieces` as a stream, counting the bytes that come out before it ends or fails. */
const drain = (hde: Hde.Hde, pieces: ReadonlyArray<Uint8Array>, options?: Hde.TransferOptions) =>
  Effect.gen(function* () {
    let out = 0
    const exit = yield* Effect.exit(
      hde
        .decodeStream(options)(Stream.fromIterable(pieces))
        .pipe(Stream.runForEach((c) => Effect.sync(() => (out += c.length)))),
    )
    return { exit, out }
  })

/** The typed failure of `exit`; fails the test on success or a defect. */
const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error("decoded a stream that should have been refused")
  const f = Cause.failureOption(exit.cause)
  if (Option.isNone(f)) throw new Error(`not a typed failure: ${Cause.pretty(exit.cause)}`)
  return f.value
}

describe("output budget", () => {
  it.scoped(
    "1.3 KB that decodes to 2 GiB today fails at the second chunk with LimitError maxRatio",
    () =>
      Effect.gen(function* () {
        // A receiver that accepts the sender's 64 MiB chunks; every other limit at its default.
        const hde = yield* Hde.make(settings(), { maxChunkSize: 64 * MiB })
        const { wire, frames, pieces } = zeros({ chunks: 32, size: 64 * MiB })
        expect(wire.length).toBeLessThan(2048)
        const { exit, out } = yield* drain(hde, pieces)
        const e = failureOf(exit)
        expect(e).toMatchObject({ _tag: "LimitError", limit: "maxRatio", chunk: 1, value: 128 * MiB })
        const chunk1 = STREAM_HEADER_SIZE + (frames[0]?.length ?? 0)
        // At the chunk's original size field.
        expect(e).toMatchObject({ offset: chunk1 + 16 })
        // ratio 4096 x bytes received + one declared chunk of slack
        expect(e).toMatchObject({ max: Math.floor(4096 * (chunk1 + (frames[1]?.length ?? 0)) + 64 * MiB) })
        expect(e.message).toContain("maxRatio")
        expect(e.message).toContain("chunk 1")
        // Only the first chunk, inside the slack, was ever produced.
        expect(out).toBe(64 * MiB)
        // The same bytes to a receiver with default limits are refused at the header.
        const strict = yield* Hde.make(settings())
        const refused = yield* drain(strict, [wire])
        expect(failureOf(refused.exit)).toMatchObject({
          _tag: "LimitError",
          limit: "maxChunkSize",
          offset: CHUNK_HEADER_SIZE + 4,
          value: 64 * MiB,
          max: 8192,
          chunk: undefined,
        })
        expect(refused.out).toBe(0)
      }),
    120_000,
  )

  it.scoped("a declared maxSize bounds the output exactly and lifts the ratio budget", () =>
    Effect.gen(function* () {
      const hde = yield* Hde.make(settings(), { maxChunkSize: MiB })
      // 8 MiB of zero pages of 64 KiB in 348 bytes: a ratio of 24,000, far over the default 4096.
      const { wire, frames, pieces } = zeros({ chunks: 8, size: MiB, pageShift: 16, packed: false })
      expect(failureOf((yield* drain(hde, [wire])).exit)).toMatchObject({ limit: "maxRatio", chunk: 1 })
      const ok = yield* drain(hde, [wire], { maxSize: 8 * MiB })
      expect(Exit.isSuccess(ok.exit)).toBe(true)
      expect(ok.out).toBe(8 * MiB)
      const over = yield* drain(hde, pieces, { maxSize: 8 * MiB - 1 })
      const chunk7 = STREAM_HEADER_SIZE + frames.slice(0, 7).reduce((n, f) => n + f.length, 0)
      expect(failureOf(over.exit)).toMatchObject({
        _tag: "LimitError",
        limit: "maxSize",
        chunk: 7,
        offset: chunk7 + 16,
        value: 8 * MiB,
        max: 8 * MiB - 1,
      })
      expect(over.out).toBe(7 * MiB)
      // A ratio given with the size still applies.
      const both = yield* drain(hde, [wire], { maxSize: 8 * MiB, maxRatio: 4096 })
      expect(failureOf(both.exit)).toMatchObject({ limit: "maxRatio", chunk: 1 })
      // The service-wide total applies to transfers that declare no size.
      const capped = yield* Hde.make(settings(), { maxChunkSize: MiB, maxTotalSize: 3 * MiB, maxRatio: 1e9 })
      expect(failureOf((yield* drain(capped, [wire])).exit)).toMatchObject({ limit: "maxSize", chunk: 3 })
      // `decode` returns one Buffer: the same limits, typed.
      expect(failureOf(yield* Effect.exit(hde.decode(wire)))).toMatchObject({ _tag: "LimitError", limit: "maxRatio" })
      expect((yield* hde.decode(wire, { maxSize: 8 * MiB })).length).toBe(8 * MiB)
    }),
  )

  it.scoped("the ratio's slack is one declared chunk, plus the base version for a delta", () =>
    Effect.gen(function* () {
      const hde = yield* Hde.make(settings())
      // Uncompressed zero chunks of 4 KiB (29 bytes each) under a header declaring 8 KiB chunks.
      const { wire, pieces } = zeros({ chunks: 3, size: 4096, packed: false, maxChunkSize: 8192 })
      // maxRatio 0: the slack alone, 8192 bytes, holds chunks 0 and 1 exactly, not chunk 2.
      const r = yield* drain(hde, pieces, { maxRatio: 0 })
      expect(failureOf(r.exit)).toMatchObject({ limit: "maxRatio", chunk: 2, value: 12288, max: 8192 })
      expect(r.out).toBe(8192)
      // Chunk 2 ends at byte 135: 31 x 135 + 8192 = 12377 holds its 12288 bytes, 30 x 135 + 8192 does not.
      expect(Exit.isSuccess((yield* drain(hde, [wire], { maxRatio: 31 })).exit)).toBe(true)
      expect(failureOf((yield* drain(hde, [wire], { maxRatio: 30 })).exit)).toMatchObject({ max: 12242 })
      // A delta of an unchanged object rebuilds the base: its size is slack too.
      const data = text(65536)
      const first = yield* hde.encode(data, { objectId: "vm" })
      const second = yield* hde.encode(data, { objectId: "vm" })
      expect(second.length).toBeLessThan(2048)
      const cold = yield* drain(hde, [first], { maxRatio: 0 })
      expect(failureOf(cold.exit)).toMatchObject({ limit: "maxRatio", chunk: 1 })
      expect((yield* hde.decode(first, { objectId: "vm" })).equals(data)).toBe(true)
      const warm = yield* drain(hde, [second], { objectId: "vm", maxRatio: 0 })
      expect(Exit.isSuccess(warm.exit)).toBe(true)
      expect(warm.out).toBe(65536)
    }),
  )
})

describe("header limits", () => {
  it.scoped("the dedup window is bounded in bytes at the stream's page size", () =>
    Effect.gen(function* () {
      const end = writeEndFrame({ chunkCount: 0, totalSize: 0, digest: digestOf(Buffer.alloc(0)) })
      const stream = (pageShift: number, pages: number) => Buffer.concat([streamHeader(8192, pageShift, pages), end])
      // The review's probe: 65,536 pages passed a limit computed for 4 KiB pages; at 64 KiB that is 4 GiB.
      const hde = yield* Hde.make(settings())
      expect(failureOf(yield* Effect.exit(hde.decode(stream(16, 65536))))).toMatchObject({
        _tag: "LimitError",
        limit: "maxDedupWindow",
        offset: CHUNK_HEADER_SIZE + 8,
        value: 4096 * MiB,
        max: 64 * MiB,
        chunk: undefined,
      })
      const small = yield* Hde.make(settings(), { maxDedupWindow: MiB })
      expect(Exit.isSuccess(yield* Effect.exit(small.decode(stream(16, 16))))).toBe(true)
      expect(Exit.isSuccess(yield* Effect.exit(small.decode(stream(12, 256))))).toBe(true)
      expect(failureOf(yield* Effect.exit(small.decode(stream(16, 17))))).toMatchObject({
        limit: "maxDedupWindow",
        value: 17 * 65536,
        max: MiB,
      })
      expect(failureOf(yield* Effect.exit(small.decode(stream(12, 257))))).toMatchObject({ value: 257 * 4096 })
      // The default follows this service's own window when that is larger.
      const wide = yield* Hde.make(settings(), { dedupWindow: 128 * MiB })
      expect(Exit.isSuccess(yield* Effect.exit(wide.decode(stream(16, 2048))))).toBe(true)
      expect(failureOf(yield* Effect.exit(wide.decode(stream(16, 2049))))).toMatchObject({ max: 128 * MiB })
    }),
  )

  it.scoped("maxChunkSize defaults to the configured chunk size", () =>
    Effect.gen(function* () {
      const end = writeEndFrame({ chunkCount: 0, totalSize: 0, digest: digestOf(Buffer.alloc(0)) })
      const hde = yield* Hde.make(settings({ chunk_size: 16384 }))
      expect(Exit.isSuccess(yield* Effect.exit(hde.decode(Buffer.concat([streamHeader(16384), end]))))).toBe(true)
      const e = failureOf(yield* Effect.exit(hde.decode(Buffer.concat([streamHeader(16385), end]))))
      expect(e).toMatchObject({ _tag: "LimitError", limit: "maxChunkSize", offset: 32, value: 16385, max: 16384 })
      expect(e.message).toBe(
        "decode limit maxChunkSize exceeded at byte 32 (stream header): declared chunk size 16385 over the limit maxChunkSize 16384",
      )
    }),
  )
})

describe("pieces", () => {
  it.scoped("a large frame fed in 64 KiB pieces is joined once, not once per piece", () =>
    Effect.gen(function* () {
      const hde = yield* Hde.make(settings({ algorithm: "none", chunk_size: 4 * MiB }), { pages: false })
      const data = randomBytes(4 * MiB, 5)
      const wire = yield* hde.encode(data)
      expect(wire.length).toBe(STREAM_HEADER_SIZE + CHUNK_HEADER_SIZE + 4 * MiB + END_FRAME_SIZE)
      const pieces: Array<Buffer> = []
      for (let at = 0; at < wire.length; at += 65536) pieces.push(wire.subarray(at, at + 65536))
      // Every join of received bytes goes through Buffer.concat; count what it copies.
      const concat = Buffer.concat
      let joined = 0
      const spy = vi.spyOn(Buffer, "concat").mockImplementation((list, n) => {
        const r = concat(list, n)
        joined += r.length
        return r
      })
      const out: Array<Uint8Array> = []
      const exit = yield* Effect.exit(
        hde
          .decodeStream()(Stream.fromIterable(pieces))
          .pipe(Stream.runForEach((c) => Effect.sync(() => out.push(c)))),
      ).pipe(Effect.ensuring(Effect.sync(() => spy.mockRestore())))
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(concat(out).equals(data)).toBe(true)
      // Each byte at most once (the old decoder re-joined everything pending: 130 MiB here).
      expect(joined).toBeGreaterThan(0)
      expect(joined).toBeLessThanOrEqual(wire.length)
    }),
  )
})
