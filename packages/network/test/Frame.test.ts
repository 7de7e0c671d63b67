import { describe, expect, it } from "@effect/vitest"
import { splitAt } from "@novacron/testing"
import * as fc from "fast-check"
import * as Frame from "../src/Frame.js"

const MAX = 4096

const frameArb = fc.record({
  type: fc.integer({ min: 0, max: 255 }),
  flags: fc.integer({ min: 0, max: 0xffff }),
  payload: fc.uint8Array({ maxLength: 600 }),
})

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
        const { frames: out, error } = decodeAll(splitAt(bytes, cuts))
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
        const { error } = decodeAll(splitAt(Buffer.from(bytes), cuts))
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
    big.writeUInt32BE(MAX + 1, Frame.LENGTH_OFFSET)
    const d = Frame.decoder(MAX)
    const r = d.push(Buffer.concat([ok, big]))
    expect(r.frames.length).toBe(1)
    expect(r.error).toMatchObject({ reason: "TooLarge", offset: ok.length + Frame.LENGTH_OFFSET })
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
    expect(decodeAll([good, version]).error).toMatchObject({ reason: "BadVersion", offset: good.length + 2 })
    const payload = Buffer.from(good)
    payload[payload.length - 1]! ^= 0xff
    expect(decodeAll([payload]).error).toMatchObject({ reason: "BadChecksum", offset: 10 })
  })
})

describe("Frame codec edges (issue 29)", () => {
  it("max_frame_size is inclusive, when encoding and when decoding", () => {
    const exact = Frame.encode({ type: 16, flags: 0, payload: Buffer.alloc(MAX, 7) }, MAX)
    const r = Frame.decoder(MAX).push(exact)
    expect(r.error).toBeUndefined()
    expect(r.frames[0]!.payload.byteLength).toBe(MAX)
    expect(() => Frame.encode({ type: 16, flags: 0, payload: Buffer.alloc(MAX + 1) }, MAX)).toThrow(
      `payload of ${MAX + 1} bytes exceeds max_frame_size ${MAX}`,
    )
    // The default bound is the 32-bit length field: 2^32 bytes are refused before any allocation.
    const huge = { byteLength: 2 ** 32 } as Uint8Array
    expect(() => Frame.encode({ type: 16, flags: 0, payload: huge })).toThrow(
      "payload of 4294967296 bytes exceeds max_frame_size 4294967295",
    )
  })

  it("refuses types and flags outside their fields, naming the value", () => {
    const payload = Buffer.alloc(0)
    for (const type of [-1, 256, 1.5, Number.NaN]) {
      expect(() => Frame.encode({ type, flags: 0, payload })).toThrow(`frame type ${type} out of range`)
    }
    for (const flags of [-1, 0x10000, 0.5]) {
      expect(() => Frame.encode({ type: 16, flags, payload })).toThrow(`frame flags ${flags} out of range`)
    }
    for (const [type, flags] of [
      [0, 0],
      [255, 0xffff],
    ] as const) {
      const [f] = Frame.decoder(MAX).push(Frame.encode({ type, flags, payload })).frames
      expect(f).toMatchObject({ type, flags })
    }
  })

  it("a decoded payload is its own memory, not a view of the pushed chunk", () => {
    const bytes = Buffer.from(Frame.encode({ type: 16, flags: 0, payload: Buffer.from("original") }))
    const [frame] = Frame.decoder(MAX).push(bytes).frames
    bytes.fill(0)
    expect(Buffer.from(frame!.payload).toString()).toBe("original")
  })

  it("tracks offset and buffered bytes, and the limit can be changed between frames", () => {
    const d = Frame.decoder(16)
    expect(d.maxFrameSize).toBe(16)
    const small = Frame.encode({ type: 16, flags: 0, payload: Buffer.alloc(16) })
    expect(d.push(small.subarray(0, 20)).frames).toEqual([])
    // The header (14 bytes) and 6 payload bytes are held.
    expect({ offset: d.offset, buffered: d.buffered }).toEqual({ offset: 20, buffered: 20 })
    expect(d.push(small.subarray(20)).frames.length).toBe(1)
    expect({ offset: d.offset, buffered: d.buffered }).toEqual({ offset: 30, buffered: 0 })
    const big = Frame.encode({ type: 16, flags: 0, payload: Buffer.alloc(100) })
    d.maxFrameSize = 100
    expect(d.maxFrameSize).toBe(100)
    expect(d.push(big).frames.length).toBe(1)
    d.maxFrameSize = 99
    expect(d.push(big).error).toMatchObject({
      reason: "TooLarge",
      offset: 30 + big.length + Frame.LENGTH_OFFSET,
      detail: "payload length 100 exceeds max_frame_size 99",
    })
  })

  it("stays failed: push yields no frames and end() returns the same error", () => {
    const d = Frame.decoder(MAX)
    const bad = Buffer.from(Frame.encode({ type: 16, flags: 0, payload: Buffer.from("x") }))
    bad[0] = 0x47
    const { error } = d.push(bad)
    expect(error).toMatchObject({ reason: "BadMagic", detail: "magic 0x4743, expected 0x4e43", protocol: "network" })
    expect(error?.message).toBe("network frame: BadMagic at byte 0: magic 0x4743, expected 0x4e43")
    expect(Frame.format).toMatchObject({ protocol: "network", magic: 0x4e43, version: 2, fieldsSize: 2 })
    const good = Frame.encode({ type: 16, flags: 0, payload: Buffer.from("y") })
    expect(d.push(good)).toEqual({ frames: [], error })
    expect(d.end()).toBe(error)
  })

  it("names what was cut off, and the version and checksum found", () => {
    const good = Frame.encode({ type: 17, flags: 3, payload: Buffer.from("hello") })
    expect(decodeAll([good.subarray(0, 5)]).error).toMatchObject({
      detail: "stream ended inside a frame header (5 of 14 bytes)",
    })
    expect(decodeAll([good.subarray(0, 16)]).error).toMatchObject({
      detail: "stream ended inside a payload (2 of 5 bytes)",
    })
    const version = Buffer.from(good)
    version[2] = 9
    expect(decodeAll([version]).error).toMatchObject({ detail: "version 9, expected 2" })
    const payload = Buffer.from(good)
    payload[payload.length - 1]! ^= 0xff
    const header = good.readUInt32BE(10).toString(16)
    expect(decodeAll([payload]).error?.detail).toMatch(new RegExp(`^checksum 0x[0-9a-f]+, header says 0x${header}$`))
    expect(decodeAll([good]).error).toBeUndefined()
  })

  it("json and parseJson: control payloads are JSON objects, nothing else", () => {
    const f = Frame.json(Frame.FrameType.Hello, { node_id: "n" })
    expect(f).toMatchObject({ type: Frame.FrameType.Hello, flags: 0 })
    expect(Buffer.from(f.payload).toString("utf8")).toBe('{"node_id":"n"}')
    expect(Frame.parseJson(f.payload)).toEqual({ node_id: "n" })
    expect(Frame.parseJson(Buffer.from("{}"))).toEqual({})
    for (const text of ["null", "[]", "[1]", "3", '"s"', "true", "{", ""]) {
      expect(Frame.parseJson(Buffer.from(text))).toBeUndefined()
    }
  })
})
