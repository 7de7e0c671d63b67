import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import * as Frame from "../src/Frame.js"

const MAX = 4096

const frameArb = fc.record({
  type: fc.integer({ min: 0, max: 255 }),
  flags: fc.integer({ min: 0, max: 0xffff }),
  payload: fc.uint8Array({ maxLength: 600 }),
})

/** Splits bytes into chunks at the given cut points. */
const chunked = (bytes: Buffer, cuts: ReadonlyArray<number>): Array<Buffer> => {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)
  const out: Array<Buffer> = []
  let prev = 0
  for (const p of [...points, bytes.length]) {
    out.push(bytes.subarray(prev, p))
    prev = p
  }
  return out
}

const decodeAll = (chunks: ReadonlyArray<Uint8Array>, max = MAX) => {
  const d = Frame.decoder(max)
  const frames: Array<Frame.Frame> = []
  for (const chunk of chunks) {
    const r = d.push(chunk)
    frames.push(...r.frames)
    if (r.error) return { frames, error: r.error }
  }
  return { frames, error: d.end() }
}

const same = (a: Frame.Frame, b: Frame.Frame) =>
  a.type === b.type && a.flags === b.flags && Buffer.from(a.payload).equals(Buffer.from(b.payload))

describe("Frame codec", () => {
  it("round-trips any frame sequence however the bytes are split", () => {
    fc.assert(
      fc.property(fc.array(frameArb, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 30 }), (frames, cuts) => {
        const bytes = Buffer.concat(frames.map((f) => Frame.encode(f)))
        const { frames: out, error } = decodeAll(chunked(bytes, cuts))
        expect(error).toBeUndefined()
        expect(out.length).toBe(frames.length)
        for (const [i, f] of out.entries()) expect(same(f, frames[i]!)).toBe(true)
      }),
      { numRuns: 300 },
    )
  })

  it("random bytes never throw: they decode or fail with a typed error at an offset inside the stream", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), fc.array(fc.nat(), { maxLength: 10 }), (bytes, cuts) => {
        const { error } = decodeAll(chunked(Buffer.from(bytes), cuts))
        if (bytes.length === 0) expect(error).toBeUndefined()
        else {
          expect(error?._tag).toBe("FrameError")
          expect(error!.offset).toBeGreaterThanOrEqual(0)
          expect(error!.offset).toBeLessThan(bytes.length)
        }
      }),
      { numRuns: 1000 },
    )
  })

  it("random bytes after valid frames: the valid frames come out, then a typed error", () => {
    fc.assert(
      fc.property(
        fc.array(frameArb, { minLength: 1, maxLength: 5 }),
        fc.uint8Array({ minLength: 1, maxLength: 300 }),
        (frames, junk) => {
          const prefix = Buffer.concat(frames.map((f) => Frame.encode(f)))
          const { frames: out, error } = decodeAll([prefix, junk])
          expect(out.length).toBe(frames.length)
          expect(error).toBeDefined()
          expect(error!.offset).toBeGreaterThanOrEqual(prefix.length)
        },
      ),
      { numRuns: 300 },
    )
  })

  it("a stream cut anywhere inside a frame reports Truncated at that frame's first byte", () => {
    fc.assert(
      fc.property(fc.array(frameArb, { minLength: 1, maxLength: 8 }), fc.nat(), (frames, cut) => {
        const encoded = frames.map((f) => Frame.encode(f))
        const bytes = Buffer.concat(encoded)
        const at = cut % bytes.length
        // Where the frame containing byte `at` starts, and how many frames end at or before `at`.
        let start = 0
        let complete = 0
        for (const e of encoded) {
          if (start + e.length > at) break
          start += e.length
          complete++
        }
        const { frames: out, error } = decodeAll([bytes.subarray(0, at)])
        expect(out.length).toBe(complete)
        if (at === start) expect(error).toBeUndefined()
        else expect(error).toMatchObject({ _tag: "FrameError", reason: "Truncated", offset: start })
      }),
      { numRuns: 500 },
    )
  })

  it("any single flipped bit in a frame is detected", () => {
    fc.assert(
      fc.property(frameArb, fc.nat(), fc.integer({ min: 0, max: 7 }), (frame, pos, bit) => {
        const bytes = Buffer.from(Frame.encode(frame))
        bytes[pos % bytes.length]! ^= 1 << bit
        const { frames, error } = decodeAll([bytes])
        expect(frames).toEqual([])
        expect(error?._tag).toBe("FrameError")
      }),
      { numRuns: 1000 },
    )
  })

  it("refuses an oversized length from the header alone, naming the length field's offset", () => {
    const ok = Frame.encode({ type: 16, flags: 0, payload: Buffer.alloc(10) })
    const big = Buffer.from(Frame.encode({ type: 16, flags: 0, payload: Buffer.alloc(0) }))
    big.writeUInt32BE(MAX + 1, 6)
    const d = Frame.decoder(MAX)
    const r = d.push(Buffer.concat([ok, big]))
    expect(r.frames.length).toBe(1)
    expect(r.error).toMatchObject({ reason: "Oversized", offset: ok.length + 6 })
    expect(r.error!.message).toContain(`exceeds max_frame_size ${MAX}`)
    // Stays failed.
    expect(d.push(ok).error).toBe(r.error)
    expect(() => Frame.encode({ type: 16, flags: 0, payload: Buffer.alloc(MAX + 1) }, MAX)).toThrow(RangeError)
  })

  it("names bad magic, unsupported version and checksum mismatch with their offsets", () => {
    const good = Frame.encode({ type: 17, flags: 3, payload: Buffer.from("hello") })
    const magic = Buffer.from(good)
    magic[0] = 0x47
    expect(decodeAll([magic]).error).toMatchObject({ reason: "BadMagic", offset: 0 })
    const version = Buffer.from(good)
    version[2] = 9
    expect(decodeAll([good, version]).error).toMatchObject({ reason: "UnsupportedVersion", offset: good.length + 2 })
    const payload = Buffer.from(good)
    payload[payload.length - 1]! ^= 0xff
    expect(decodeAll([payload]).error).toMatchObject({ reason: "ChecksumMismatch", offset: 10 })
  })
})
