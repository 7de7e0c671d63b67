import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, HashMap, Logger, Stream } from "effect"
import fc from "fast-check"
import { Hde, HdeSettings } from "../src/index.js"
import {
  CHUNK_HEADER_SIZE,
  FrameFault,
  LENGTH_AT,
  readChunkHeader,
  readStreamHeader,
  STREAM_HEADER_SIZE,
  writeChunkHeader,
} from "../src/internal/format.js"
import { Tag, xbzrleDecode, xbzrleEncode } from "../src/internal/pages.js"
import { memoryImage, mutate, randomBytes } from "./fixtures.js"

const limits = { maxChunkSize: 1 << 26, maxDedupWindow: 2 ** 40, maxSize: 2 ** 40, maxRatio: Number.POSITIVE_INFINITY }

const settings = (s: Partial<HdeSettings.CompressionSettings> = {}) => ({
  ...HdeSettings.defaults,
  workers: 1,
  algorithm: "zstd" as const,
  chunk_size: 65536,
  ...s,
})

describe("XBZRLE", () => {
  it("decodes what it encodes for any page and any set of changes", () => {
    const page = fc.uint8Array({ minLength: 1, maxLength: 4096 })
    fc.assert(
      fc.property(
        page,
        fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 }), fc.nat({ max: 40 })), { maxLength: 60 }),
        (old, edits) => {
          const next = Buffer.from(old)
          for (const [at, v, run] of edits)
            next.fill(v, at % next.length, Math.min(next.length, (at % next.length) + run))
          const out = new Uint8Array(next.length * 2 + 16)
          const n = xbzrleEncode(old, next, out, out.length)
          expect(n).toBeGreaterThanOrEqual(0)
          const target = Buffer.from(old)
          xbzrleDecode(out.subarray(0, n), target, 0)
          expect(target.equals(next)).toBe(true)
          if (next.equals(old)) expect(n).toBe(0)
        },
      ),
      { numRuns: 300 },
    )
  })

  it("gives up once the delta would not pay, and rejects deltas that run off the page", () => {
    const old = randomBytes(4096, 1)
    expect(xbzrleEncode(old, randomBytes(4096, 2), new Uint8Array(4096), 3072)).toBe(-1)
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), (junk) => {
        try {
          xbzrleDecode(junk, Buffer.alloc(64), 0)
        } catch (e) {
          expect(e).toBeInstanceOf(FrameFault)
        }
      }),
    )
  })
})

describe("delta against the previous version", () => {
  it.scoped("a changed version goes as a delta a fraction of its size, and decodes exactly", () =>
    Effect.gen(function* () {
      const sender = yield* Hde.make(settings())
      const receiver = yield* Hde.make(settings())
      const v1 = memoryImage(96)
      const v2 = mutate(v1, 8)
      const e1 = yield* sender.encode(v1, { objectId: "vm-1" })
      expect((yield* receiver.decode(e1, { objectId: "vm-1" })).equals(v1)).toBe(true)
      const e2 = yield* sender.encode(v2, { objectId: "vm-1" })
      expect((yield* receiver.decode(e2, { objectId: "vm-1" })).equals(v2)).toBe(true)
      const full = yield* (yield* Hde.make(settings({ enable_delta: false }))).encode(v2, { objectId: "vm-1" })
      expect(e2.length).toBeLessThan(full.length / 3)
      const s = yield* sender.stats
      expect(s.deltaCache).toMatchObject({ hits: 1, misses: 1, entries: 1, bytes: v2.length })
      // zstd takes the old range as a dictionary for changed pages; unchanged pages go as tags.
      expect(s.pages.delta).toBe(0)
      expect(s.pages.same).toBeGreaterThan(0)
      expect((yield* receiver.stats).receiveCache).toMatchObject({ entries: 1, bytes: v2.length })
    }),
  )

  it.scoped("lz4 and none, which take no dictionary, send changed pages as XBZRLE deltas", () =>
    Effect.gen(function* () {
      const v1 = memoryImage(64)
      const v2 = mutate(v1, 4)
      for (const algorithm of ["lz4", "none"] as const) {
        const hde = yield* Hde.make(settings({ algorithm }))
        yield* hde.decode(yield* hde.encode(v1, { objectId: "x" }), { objectId: "x" })
        const delta = yield* hde.encode(v2, { objectId: "x" })
        expect((yield* hde.decode(delta, { objectId: "x" })).equals(v2)).toBe(true)
        const pages = (yield* hde.stats).pages
        expect(pages.delta).toBeGreaterThan(0)
        expect(delta.length).toBeLessThan(v2.length / 8)
      }
    }),
  )

  it.scoped("pages that moved to another chunk go as references into the base, and decode exactly", () =>
    Effect.gen(function* () {
      const P = 4096
      // Distinct random pages, so nothing repeats within a version and the codec cannot help.
      const v1 = randomBytes(64 * P, 11)
      // The new version: the four 16-page chunks rotated by one chunk, and one page rewritten.
      const v2 = Buffer.concat([v1.subarray(48 * P), v1.subarray(0, 48 * P)])
      randomBytes(P, 12).copy(v2, 5 * P)
      const sender = yield* Hde.make(settings())
      const receiver = yield* Hde.make(settings())
      yield* receiver.decode(yield* sender.encode(v1, { objectId: "vm" }), { objectId: "vm" })
      const delta = yield* sender.encode(v2, { objectId: "vm" })
      expect((yield* receiver.decode(delta, { objectId: "vm" })).equals(v2)).toBe(true)
      const pages = (yield* sender.stats).pages
      expect(pages.moved).toBe(63)
      expect(delta.length).toBeLessThan(2 * P)
      // And back: the version the sender cached from this transfer indexes its pages too.
      const back = yield* sender.encode(v1, { objectId: "vm" })
      expect((yield* sender.stats).pages.moved - 63).toBe(63)
      expect((yield* receiver.decode(back, { objectId: "vm" })).equals(v1)).toBe(true)
    }),
  )

  it.scoped("a moved-page reference outside the base is rejected with its offset", () =>
    Effect.gen(function* () {
      const P = 4096
      const v1 = randomBytes(32 * P, 21)
      const v2 = Buffer.concat([v1.subarray(16 * P), v1.subarray(0, 16 * P)])
      const hde = yield* Hde.make(settings({ algorithm: "none" }))
      yield* hde.decode(yield* hde.encode(v1, { objectId: "o" }), { objectId: "o" })
      const delta = Buffer.from(yield* hde.encode(v2, { objectId: "o" }))
      // First chunk's page stream (codec none): 16 tags, then the aux words; point page 0 past the base.
      const at = STREAM_HEADER_SIZE + CHUNK_HEADER_SIZE
      expect(delta[at]).toBe(Tag.moved)
      delta.writeUInt32LE(1000, at + 16)
      // The frame re-signed, so that the page stream, not the checksum, is what is wrong.
      const stream = readStreamHeader(delta.subarray(CHUNK_HEADER_SIZE, STREAM_HEADER_SIZE), limits)
      const length = delta.readUInt32BE(STREAM_HEADER_SIZE + LENGTH_AT)
      const h = readChunkHeader(Buffer.from(delta.subarray(STREAM_HEADER_SIZE + 8, at - 4)), length, stream)
      writeChunkHeader(h, delta.subarray(at, at + h.encodedSize)).copy(delta, STREAM_HEADER_SIZE)
      const exit = yield* Effect.exit(hde.decode(delta, { objectId: "o" }))
      expect(Exit.isFailure(exit) && String(exit.cause)).toContain(
        `hde frame: Malformed at byte ${at}: page 0: moved from unknown base page 1000`,
      )
    }),
  )

  it.scoped("an unchanged version costs little more than headers", () =>
    Effect.gen(function* () {
      const hde = yield* Hde.make(settings())
      const v1 = memoryImage(64)
      yield* hde.decode(yield* hde.encode(v1, { objectId: "img" }), { objectId: "img" })
      const before = yield* hde.stats
      const again = yield* hde.encode(v1, { objectId: "img" })
      expect((yield* hde.decode(again, { objectId: "img" })).equals(v1)).toBe(true)
      expect(again.length).toBeLessThan(400)
      // All four chunks took the unchanged-chunk path: every page "same", no literal page.
      const after = yield* hde.stats
      expect(after.pages.same - before.pages.same).toBe(64)
      expect(after.pages.literal).toBe(before.pages.literal)
    }),
  )

  it.scoped("new versions shorter or longer than the old one decode exactly", () =>
    Effect.gen(function* () {
      const hde = yield* Hde.make(settings({ chunk_size: 16384 }))
      const v1 = mutate(memoryImage(40), 5)
      // Cuts inside a page, on a page and on a chunk boundary, and growths of each kind.
      for (const size of [
        v1.length - 1,
        v1.length - 4096,
        v1.length - 16384 - 100,
        5000,
        v1.length + 1,
        v1.length + 4096 + 17,
        v1.length * 2,
      ]) {
        const v2 = Buffer.alloc(size)
        v1.copy(v2, 0, 0, Math.min(size, v1.length))
        if (size > v1.length) randomBytes(size - v1.length, size).copy(v2, v1.length)
        for (let i = 100; i < size; i += 9000) v2[i] = (v2[i] ?? 0) ^ 0xff
        const id = `obj-${size}`
        yield* hde.decode(yield* hde.encode(v1, { objectId: id }), { objectId: id })
        const e2 = yield* hde.encode(v2, { objectId: id })
        expect((yield* hde.decode(e2, { objectId: id })).equals(v2), `size ${size}`).toBe(true)
      }
      expect((yield* hde.stats).pages.same).toBeGreaterThan(0)
    }),
  )

  it.scoped("a receiver without the base, or with another base, refuses the delta at the header", () =>
    Effect.gen(function* () {
      const hde = yield* Hde.make(settings())
      const fresh = yield* Hde.make(settings())
      const v1 = memoryImage(16)
      yield* hde.decode(yield* hde.encode(v1, { objectId: "a" }), { objectId: "a" })
      const delta = yield* hde.encode(mutate(v1, 3), { objectId: "a" })
      let exit = yield* Effect.exit(fresh.decode(delta, { objectId: "a" }))
      expect(exit).toMatchObject({ _tag: "Failure" })
      if (Exit.isFailure(exit)) expect(String(exit.cause)).toContain("no base")
      yield* fresh.decode(yield* fresh.encode(randomBytes(5000), { objectId: "a" }), { objectId: "a" })
      exit = yield* Effect.exit(fresh.decode(delta, { objectId: "a" }))
      expect(Exit.isFailure(exit) && String(exit.cause)).toContain("differs")
    }),
  )

  it.scoped("the cache is bounded: least recently used versions go, one larger than the cache is kept alone", () =>
    Effect.gen(function* () {
      const hde = yield* Hde.make(settings({ delta_cache_size: 300_000 }), { maxBaseSize: 500_000 })
      const img = (n: number) => memoryImage(30, n) // 122,880 bytes each
      for (const id of ["a", "b", "c"]) yield* hde.encode(img(id.charCodeAt(0)), { objectId: id })
      let s = (yield* hde.stats).deltaCache
      expect(s).toMatchObject({ entries: 2, evictions: 1, misses: 3, hits: 0, capacity: 300_000, ceiling: 500_000 })
      expect(s.bytes).toBeLessThanOrEqual(300_000)
      yield* hde.encode(img(1), { objectId: "a" }) // evicted: a miss
      yield* hde.encode(img(3), { objectId: "c" }) // still there: a hit
      yield* hde.encode(memoryImage(100), { objectId: "c" }) // hit; over the cache, kept alone
      s = (yield* hde.stats).deltaCache
      expect(s).toMatchObject({ hits: 2, misses: 4, entries: 1, bytes: 409_600 })
      yield* hde.encode(memoryImage(150), { objectId: "c" }) // hit; over maxBaseSize: not kept
      s = (yield* hde.stats).deltaCache
      expect(s).toMatchObject({ hits: 3, entries: 0, bytes: 0 })
    }),
  )
})

// Issue 23: the default delta_cache_size (256 MiB) turned delta off for a 768 MiB guest, and the
// only trace was a miss counter. Here at 1/1024 scale: a 256 KiB cache and a 384 KiB object.
describe("delta for objects larger than delta_cache_size", () => {
  const small = () => settings({ delta_cache_size: 256 * 1024 })
  const capture = () => {
    const lines: Array<{ level: string; message: string; annotations: Record<string, unknown> }> = []
    const logger = Logger.make(({ annotations, logLevel, message }) => {
      lines.push({
        level: logLevel.label,
        message: String(Array.isArray(message) ? message.join(" ") : message),
        annotations: Object.fromEntries(HashMap.toEntries(annotations)),
      })
    })
    return { lines, layer: Logger.replace(Logger.defaultLogger, logger) }
  }

  it.scoped("a guest larger than the cache still goes as a delta the second time, on both ends", () =>
    Effect.gen(function* () {
      const sender = yield* Hde.make(small())
      const receiver = yield* Hde.make(small())
      const v1 = memoryImage(96) // 384 KiB
      const v2 = mutate(v1, 8)
      const first = yield* sender.encodeTransfer(v1, { objectId: "vm-768" })
      expect(first.report.delta).toMatchObject({ _tag: "NoDelta", reason: "FirstTransfer" })
      expect(first.report.nextBase).toEqual({ _tag: "Kept", size: v1.length })
      expect((yield* receiver.decode(first.bytes, { objectId: "vm-768" })).equals(v1)).toBe(true)
      const second = yield* sender.encodeTransfer(v2, { objectId: "vm-768" })
      expect(second.report.delta).toEqual({ _tag: "Delta", baseSize: v1.length })
      expect(second.report.bytesOut).toBe(second.bytes.length)
      expect((yield* receiver.decode(second.bytes, { objectId: "vm-768" })).equals(v2)).toBe(true)
      const full = yield* (yield* Hde.make(settings({ enable_delta: false }))).encode(v2)
      expect(second.bytes.length).toBeLessThan(full.length / 3)
      expect((yield* sender.stats).deltaCache).toMatchObject({ hits: 1, misses: 1, entries: 1, bytes: v2.length })
    }),
  )

  it.scoped("when delta cannot be used the report names why, and a log line says so", () =>
    Effect.gen(function* () {
      const log = capture()
      const sender = yield* Hde.make(small(), { maxBaseSize: 300 * 1024 })
      const v1 = memoryImage(96)
      const first = yield* sender.encodeTransfer(v1, { objectId: "vm-big" }).pipe(Effect.provide(log.layer))
      expect(first.report.nextBase).toMatchObject({ _tag: "NotKept", reason: "TooLarge" })
      const second = yield* sender.encodeTransfer(mutate(v1, 8), { objectId: "vm-big" }).pipe(Effect.provide(log.layer))
      expect(second.report.delta).toMatchObject({ _tag: "NoDelta", reason: "BaseTooLarge" })
      if (second.report.delta._tag === "NoDelta")
        expect(second.report.delta.detail).toBe(
          "the previous version (at least 0.38 MiB) was larger than the delta cache keeps (0.29 MiB)",
        )
      const warned = log.lines.filter((l) => l.level === "WARN")
      expect(warned.map((l) => l.annotations)).toEqual([
        { objectId: "vm-big", reason: "TooLarge" },
        { objectId: "vm-big", reason: "BaseTooLarge" },
        { objectId: "vm-big", reason: "TooLarge" },
      ])
      expect(warned[1]?.message).toContain("hde: delta not used for vm-big: the previous version")
      expect(log.lines.find((l) => l.level === "INFO")?.annotations).toEqual({
        objectId: "vm-big",
        reason: "FirstTransfer",
      })
    }),
  )

  it.scoped("evicted, not named, disabled: each has its reason; the stream form reports too", () =>
    Effect.gen(function* () {
      const sender = yield* Hde.make(settings({ delta_cache_size: 300_000 }))
      const img = (n: number) => memoryImage(30, n)
      for (const id of ["a", "b", "c"]) yield* sender.encode(img(id.charCodeAt(0)), { objectId: id })
      const evicted = yield* sender.encodeTransfer(img(1), { objectId: "a" })
      expect(evicted.report.delta).toMatchObject({ _tag: "NoDelta", reason: "Evicted" })
      const anonymous = yield* sender.encodeTransfer(img(1))
      expect(anonymous.report.delta).toMatchObject({ _tag: "NoDelta", reason: "NoObjectId" })
      expect(anonymous.report.nextBase).toMatchObject({ _tag: "NotKept", reason: "NoObjectId" })
      const off = yield* Hde.make(settings({ enable_delta: false }))
      yield* off.encode(img(1), { objectId: "a" })
      expect((yield* off.encodeTransfer(img(1), { objectId: "a" })).report.delta).toMatchObject({
        _tag: "NoDelta",
        reason: "Disabled",
      })
      const reports: Array<Hde.TransferReport> = []
      const out = yield* Stream.make(img(1).subarray(0, 50_000), img(1).subarray(50_000)).pipe(
        sender.encodeStream({ objectId: "a", report: (r) => Effect.sync(() => reports.push(r)) }),
        Stream.runFold(0, (n, b) => n + b.length),
      )
      expect(reports).toEqual([
        {
          objectId: "a",
          delta: { _tag: "Delta", baseSize: img(1).length },
          nextBase: { _tag: "Kept", size: img(1).length },
          bytesIn: img(1).length,
          bytesOut: out,
        },
      ])
    }),
  )
})
