import { crc32 } from "node:zlib"
import { describe, expect, it } from "@effect/vitest"
import { fuzzSeed, splitAt } from "@novacron/testing"
import { Either } from "effect"
import * as fc from "fast-check"
import { Wire, WireError } from "../src/index.js"

// A fixed seed: the properties check the same inputs on every run (FUZZ_SEED explores others).
const seed = fuzzSeed(20261207)
const runs = { seed, numRuns: 300 }

// Plain objects, not Wire.format(...): nothing of the module under test runs at import, so Stryker
// runs each mutant against the tests that cover it (a module-level call would make it "static").
const Demo: Wire.Format = { protocol: "demo", magic: 0x4e57, version: 3, fieldsSize: 6 }
const Typed: Wire.Format = {
  protocol: "typed",
  magic: 0xa57d,
  version: 1,
  fieldsSize: 0,
  isType: (t) => t === 1 || t === 2,
}
const MAX = 4096

interface Spec {
  readonly type: number
  readonly fields: Uint8Array
  readonly payload: Uint8Array
}

const specArb = fc.record({
  type: fc.integer({ min: 0, max: 255 }),
  fields: fc.uint8Array({ minLength: 6, maxLength: 6 }),
  payload: fc.uint8Array({ maxLength: 600 }),
})

const encodeSpec = (s: Spec) => Wire.encode(Demo, s.type, s.payload, (h, at) => h.set(s.fields, at))

const decodeChunks = (chunks: ReadonlyArray<Uint8Array>, options: Wire.DecoderOptions = { maxPayload: MAX }) => {
  const d = Wire.decoder(Demo, options)
  const frames: Array<Wire.Frame> = []
  for (const chunk of chunks) {
    const r = d.push(chunk)
    frames.push(...r.frames)
    if (r.error) return { frames, error: r.error }
  }
  return { frames, error: d.end() }
}

const same = (f: Wire.Frame, s: Spec) =>
  f.type === s.type && f.fields.equals(Buffer.from(s.fields)) && f.payload.equals(Buffer.from(s.payload))

/** Decodes `bytes` and returns the error; fails the test if there is none. */
const errorOf = (format: Wire.Format, bytes: Uint8Array, maxPayload = MAX): WireError.FrameError => {
  const r = Wire.decodeAll(format, bytes, { maxPayload })
  if (Either.isRight(r)) throw new Error("decoded without an error")
  return r.left
}

/** A valid frame of 23 bytes (payload "first"), built inside each test. */
const makeGood = () => encodeSpec({ type: 9, fields: Buffer.from([1, 2, 3, 4, 5, 6]), payload: Buffer.from("first") })

describe("Wire codec", () => {
  it("round-trips any frame sequence however the bytes are split", () => {
    fc.assert(
      fc.property(fc.array(specArb, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 30 }), (specs, cuts) => {
        const bytes = Buffer.concat(specs.map(encodeSpec))
        let at = 0
        const offsets = specs.map((s) => {
          const start = at
          at += 18 + s.payload.length
          return start
        })
        for (const copy of [false, true]) {
          const { frames, error } = decodeChunks(splitAt(bytes, cuts), { maxPayload: MAX, copy })
          expect(error).toBeUndefined()
          expect(frames.length).toBe(specs.length)
          for (const [i, f] of frames.entries()) {
            expect(same(f, specs[i] as Spec)).toBe(true)
            expect(f.offset).toBe(offsets[i])
          }
        }
      }),
      runs,
    )
  })

  it("split at every byte boundary, and byte by byte, gives the same frames", () => {
    const specs: Array<Spec> = [
      { type: 0, fields: new Uint8Array(6), payload: new Uint8Array(0) },
      { type: 255, fields: Uint8Array.from([9, 8, 7, 6, 5, 4]), payload: Buffer.from("hello, wire") },
      { type: 17, fields: Uint8Array.from([1, 1, 1, 1, 1, 1]), payload: Buffer.alloc(300, 0xab) },
    ]
    const bytes = Buffer.concat(specs.map(encodeSpec))
    for (let cut = 0; cut <= bytes.length; cut++) {
      const { frames, error } = decodeChunks([bytes.subarray(0, cut), bytes.subarray(cut)])
      expect(error).toBeUndefined()
      expect(frames.map((f, i) => same(f, specs[i] as Spec))).toEqual([true, true, true])
    }
    const bytewise = decodeChunks([...bytes].map((b) => Uint8Array.of(b)))
    expect(bytewise.error).toBeUndefined()
    expect(bytewise.frames.map((f, i) => same(f, specs[i] as Spec))).toEqual([true, true, true])
  })

  it("random bytes never throw: a typed FrameError at an offset inside the stream, or nothing", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), fc.array(fc.nat(), { maxLength: 10 }), (bytes, cuts) => {
        const { frames, error } = decodeChunks(splitAt(Buffer.from(bytes), cuts))
        if (bytes.length === 0) expect(error).toBeUndefined()
        else {
          expect(error).toBeInstanceOf(WireError.FrameError)
          expect(error?.protocol).toBe("demo")
          expect(error?.offset).toBeGreaterThanOrEqual(0)
          expect(error?.offset).toBeLessThan(bytes.length)
          expect(frames.length).toBe(0)
        }
      }),
      runs,
    )
  })

  it("a valid stream with one byte changed or cut short fails with a FrameError, never a defect", () => {
    fc.assert(
      fc.property(
        fc.array(specArb, { minLength: 1, maxLength: 5 }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        fc.nat(),
        (specs, at, xor, cut) => {
          const bytes = Buffer.concat(specs.map(encodeSpec))
          const flipped = Buffer.from(bytes)
          const i = at % bytes.length
          flipped[i] = (flipped[i] as number) ^ xor
          const e1 = errorOf(Demo, flipped)
          expect(e1.offset).toBeLessThanOrEqual(bytes.length)
          // Cut anywhere but at a frame boundary.
          const ends = new Set(specs.map((_, k) => Buffer.concat(specs.slice(0, k + 1).map(encodeSpec)).length))
          const short = bytes.subarray(0, cut % bytes.length)
          if (short.length > 0 && !ends.has(short.length)) expect(errorOf(Demo, short).reason).toBe("Truncated")
        },
      ),
      runs,
    )
  })
})

describe("Wire header checks", () => {
  it("bad magic: reason, offset of the frame, expected and actual", () => {
    const good = makeGood()
    const bad = encodeSpec({ type: 1, fields: new Uint8Array(6), payload: new Uint8Array(1) })
    bad[1] = 0x00
    const e = errorOf(Demo, Buffer.concat([good, bad]))
    expect(e).toMatchObject({
      _tag: "FrameError",
      reason: "BadMagic",
      offset: good.length,
      expected: 0x4e57,
      actual: 0x4e00,
    })
    expect(e.message).toBe(`demo frame: BadMagic at byte ${good.length}: magic 0x4e00, expected 0x4e57`)
    const bad0 = Buffer.from(good)
    bad0[0] = 0x00
    expect(errorOf(Demo, bad0)).toMatchObject({ reason: "BadMagic", offset: 0, actual: 0x0057 })
  })

  it("bad version at the version byte", () => {
    const good = makeGood()
    const bad = Buffer.from(good)
    bad[2] = 4
    const e = errorOf(Demo, Buffer.concat([good, bad]))
    expect(e).toMatchObject({ reason: "BadVersion", offset: good.length + 2, expected: 3, actual: 4 })
    expect(e.detail).toBe("version 4, expected 3")
  })

  it("an unknown type is refused at the type byte when the format lists its types", () => {
    const ok = Wire.encode(Typed, 2, Buffer.from("x"))
    const bad = Wire.encode(Typed, 3, Buffer.from("x"))
    const e = errorOf(Typed, Buffer.concat([ok, bad]))
    expect(e).toMatchObject({
      reason: "BadType",
      protocol: "typed",
      offset: ok.length + 3,
      detail: "unknown frame type 3",
    })
    expect(Either.isRight(Wire.decodeAll(Typed, Buffer.concat([ok, ok]), { maxPayload: 10 }))).toBe(true)
    // Without a list, any type decodes.
    expect(
      Either.isRight(
        Wire.decodeAll(Demo, encodeSpec({ type: 200, fields: new Uint8Array(6), payload: new Uint8Array(0) }), {
          maxPayload: 0,
        }),
      ),
    ).toBe(true)
  })

  it("a length over the bound is refused from the header alone, nothing buffered", () => {
    const good = makeGood()
    const d = Wire.decoder(Demo, { maxPayload: 100 })
    const head = Wire.encodeHeader(Demo, 1, Buffer.alloc(101))
    const r = d.push(Buffer.concat([good, head]))
    expect(r.frames.length).toBe(1)
    expect(r.error).toMatchObject({ reason: "TooLarge", offset: good.length + 4, expected: 100, actual: 101 })
    expect(r.error?.detail).toBe("payload length 101 exceeds the limit 100")
    const named = Wire.decoder(Demo, { maxPayload: 100, limitName: "max_frame_size" }).push(head).error
    expect(named?.detail).toBe("payload length 101 exceeds max_frame_size 100")
    expect(d.buffered).toBe(0)
    // Exactly the bound is accepted.
    expect(Either.isRight(Wire.decodeAll(Demo, Wire.encode(Demo, 1, Buffer.alloc(100)), { maxPayload: 100 }))).toBe(
      true,
    )
    // A 4 GiB claim costs nothing either.
    const huge = Buffer.from(head)
    huge.writeUInt32BE(2 ** 32 - 1, 4)
    expect(errorOf(Demo, huge, 1 << 20)).toMatchObject({ reason: "TooLarge", actual: 2 ** 32 - 1 })
  })

  it("a checksum mismatch in the header or the payload is reported at the checksum field", () => {
    const good = makeGood()
    for (const at of [3, 5, 8, 13, good.length - 1]) {
      const bad = Buffer.from(good)
      bad[at] = (bad[at] as number) ^ 0x10
      const e = errorOf(Demo, Buffer.concat([good, bad]), 1 << 20)
      // A changed length may make it TooLarge or Truncated instead; type, fields and payload are the checksum's.
      if (at !== 5) {
        expect(e.reason).toBe("BadChecksum")
        expect(e.offset).toBe(good.length + 14)
        expect(e.expected).toBe(`0x${good.readUInt32BE(14).toString(16)}`)
        expect(e.actual).not.toBe(e.expected)
      } else expect(["TooLarge", "Truncated", "BadChecksum"]).toContain(e.reason)
    }
  })

  it("the checksum covers magic through fields and then the payload", () => {
    const good = makeGood()
    const expected = crc32(good.subarray(18), crc32(good.subarray(0, 14)))
    expect(good.readUInt32BE(14)).toBe(expected)
  })

  it("a check hook refuses a header before its payload is buffered", () => {
    const good = makeGood()
    const d = Wire.decoder(Demo, {
      maxPayload: MAX,
      check: (h) =>
        h.type === 66
          ? new WireError.FrameError({
              protocol: "demo",
              reason: "Malformed",
              offset: h.offset + 3,
              detail: "no 66 here",
            })
          : undefined,
    })
    const bad = encodeSpec({ type: 66, fields: new Uint8Array(6), payload: Buffer.alloc(50) })
    const r = d.push(Buffer.concat([good, bad.subarray(0, 20)]))
    expect(r.frames.length).toBe(1)
    expect(r.error).toMatchObject({ reason: "Malformed", offset: good.length + 3, detail: "no 66 here" })
    expect(d.buffered).toBe(0)
    expect(d.error).toBe(r.error)
  })
})

describe("Wire decoder state", () => {
  it("stays failed: later bytes give the same error, end() too", () => {
    const good = makeGood()
    const d = Wire.decoder(Demo, { maxPayload: MAX })
    const bad = Buffer.from(good)
    bad[2] = 9
    const e = d.push(bad).error
    expect(e?.reason).toBe("BadVersion")
    expect(d.push(good)).toEqual({ frames: [], error: e })
    expect(d.end()).toBe(e)
    expect(() => d.next()).toThrow(e as Error)
    expect(d.buffered).toBe(0)
  })

  it("end() inside a header or a payload is Truncated at the frame's start", () => {
    const good = makeGood()
    const d1 = Wire.decoder(Demo, { maxPayload: MAX })
    d1.push(Buffer.concat([good, good.subarray(0, 5)]))
    expect(d1.end()).toMatchObject({
      reason: "Truncated",
      offset: good.length,
      detail: "stream ended inside a frame header (5 of 18 bytes)",
    })
    const d2 = Wire.decoder(Demo, { maxPayload: MAX })
    d2.push(Buffer.concat([good, good.subarray(0, 20)]))
    expect(d2.end()).toMatchObject({
      reason: "Truncated",
      offset: good.length,
      detail: "stream ended inside a payload (2 of 5 bytes)",
    })
    const d3 = Wire.decoder(Demo, { maxPayload: MAX })
    d3.push(good)
    expect(d3.end()).toBeUndefined()
  })

  it("offset, position and buffered follow the stream", () => {
    const good = makeGood()
    const d = Wire.decoder(Demo, { maxPayload: MAX })
    d.push(good.subarray(0, 10))
    expect([d.offset, d.position, d.buffered]).toEqual([10, 0, 10])
    d.push(good.subarray(10, 20))
    expect([d.offset, d.position, d.buffered]).toEqual([20, 0, 20])
    d.push(Buffer.concat([good.subarray(20), good.subarray(0, 3)]))
    expect([d.offset, d.position, d.buffered]).toEqual([good.length + 3, good.length, 3])
  })

  it("next() reads one frame at a time, so a bound raised after a frame applies to the next", () => {
    const good = makeGood()
    const d = Wire.decoder(Demo, { maxPayload: 8 })
    const big = encodeSpec({ type: 2, fields: new Uint8Array(6), payload: Buffer.alloc(64, 1) })
    d.write(Buffer.concat([good, big]))
    expect(d.next()?.payload.toString()).toBe("first")
    d.maxPayload = 64
    expect(d.next()?.payload.length).toBe(64)
    expect(d.next()).toBeUndefined()
    // With push() the small bound applies to the whole read.
    expect(Wire.decoder(Demo, { maxPayload: 8 }).push(Buffer.concat([good, big])).error?.reason).toBe("TooLarge")
  })

  it("a frame within one read is a view of it; copy (or a frame across reads) gives the decoder's own bytes", () => {
    const good = makeGood()
    // Big enough not to come from Node's shared pool, so the checks below are about this read only.
    const read = Buffer.concat([good, good, Buffer.alloc(8192)]).subarray(0, 2 * good.length)
    const views = Wire.decoder(Demo, { maxPayload: MAX }).push(read).frames
    const copies = Wire.decoder(Demo, { maxPayload: MAX, copy: true }).push(read).frames
    expect(views.map((f) => f.owned)).toEqual([false, false])
    expect(copies.map((f) => f.owned)).toEqual([true, true])
    read.fill(0x41)
    expect(views.map((f) => f.payload.toString())).toEqual(["AAAAA", "AAAAA"])
    expect(copies.map((f) => f.payload.toString())).toEqual(["first", "first"])
    const d = Wire.decoder(Demo, { maxPayload: MAX })
    const a = good.subarray(0, 20)
    d.push(a)
    const [f] = d.push(good.subarray(20)).frames
    expect(f?.owned).toBe(true)
    expect(f?.payload.toString()).toBe("first")
  })

  it("failWith stops the decoder with a protocol's own error", () => {
    const good = makeGood()
    const d = Wire.decoder(Demo, { maxPayload: MAX })
    const mine = new WireError.FrameError({ protocol: "demo", reason: "Malformed", offset: 18, detail: "bad JSON" })
    d.push(good.subarray(0, 3))
    expect(d.failWith(mine)).toBe(mine)
    expect([d.error, d.buffered, d.end()]).toEqual([mine, 0, mine])
  })
})

describe("Wire decoder details", () => {
  it("frames that each fill one read are views of it, header fields included; an empty read changes nothing", () => {
    const big = (b: Buffer) => {
      // Outside Node's shared pool, so that a view and a copy can be told apart by writing to the read.
      const own = Buffer.from(new ArrayBuffer(b.length))
      b.copy(own)
      return own
    }
    const a = big(encodeSpec({ type: 1, fields: new Uint8Array(6), payload: Buffer.alloc(100, 1) }))
    const b = big(encodeSpec({ type: 2, fields: new Uint8Array(6), payload: Buffer.alloc(100, 2) }))
    const d = Wire.decoder(Demo, { maxPayload: MAX })
    const [fa] = d.push(a).frames
    expect(d.push(new Uint8Array(0))).toEqual({ frames: [] })
    const [fb] = d.push(b).frames
    expect([fa?.owned, fb?.owned]).toEqual([false, false])
    b.fill(0x41)
    expect([...(fb?.fields ?? [])]).toEqual([0x41, 0x41, 0x41, 0x41, 0x41, 0x41])
    expect(fb?.payload[0]).toBe(0x41)
    // An empty payload at the very end of what was pushed.
    const empty = Wire.decoder(Demo, { maxPayload: MAX }).push(
      encodeSpec({ type: 3, fields: new Uint8Array(6), payload: new Uint8Array(0) }),
    )
    expect(empty.frames.map((f) => [f.payload.length, f.owned])).toEqual([[0, true]])
  })

  it("the checksum error names both values", () => {
    const good = makeGood()
    const bad = Buffer.from(good)
    bad[20] = (bad[20] as number) ^ 1
    const expected = good.readUInt32BE(14)
    const actual = crc32(bad.subarray(18), crc32(bad.subarray(0, 14)))
    const e = errorOf(Demo, bad)
    expect(e.detail).toBe(`checksum 0x${actual.toString(16)}, header says 0x${expected.toString(16)}`)
    expect([e.expected, e.actual]).toEqual([`0x${expected.toString(16)}`, `0x${actual.toString(16)}`])
  })

  it("a check hook that throws something else is a defect, not a FrameError", () => {
    const boom = new TypeError("bug in the protocol's check")
    const d = Wire.decoder(Demo, {
      maxPayload: MAX,
      check: () => {
        throw boom
      },
    })
    expect(() => d.push(makeGood())).toThrow(boom)
  })
})

describe("Wire encoding", () => {
  it("writes magic, version, type, length, fields and checksum big-endian", () => {
    const b = Wire.encode(Demo, 0x2a, Buffer.from("abc"), (h, at) => h.writeUInt16BE(0x0102, at))
    expect([...b.subarray(0, 14)]).toEqual([0x4e, 0x57, 3, 0x2a, 0, 0, 0, 3, 1, 2, 0, 0, 0, 0])
    expect(b.subarray(18).toString()).toBe("abc")
    expect(Wire.headerSize(Demo)).toBe(18)
    expect(Wire.FIELDS_OFFSET).toBe(8)
  })

  it("encodeHeader plus the payload is encode, without copying the payload", () => {
    const payload = Buffer.from("payload")
    const h = Wire.encodeHeader(Demo, 5, payload, (b, at) => b.fill(7, at, at + 6))
    expect(Buffer.concat([h, payload]).equals(Wire.encode(Demo, 5, payload, (b, at) => b.fill(7, at, at + 6)))).toBe(
      true,
    )
    expect(h.length).toBe(18)
  })

  it("refuses a type outside a byte and formats out of range", () => {
    expect(() => Wire.encode(Demo, 256, new Uint8Array(0))).toThrow(RangeError)
    expect(() => Wire.encode(Demo, -1, new Uint8Array(0))).toThrow("frame type -1 out of range")
    expect(() => Wire.encodeHeader(Demo, 1.5, new Uint8Array(0))).toThrow(RangeError)
    expect(() => Wire.format({ protocol: "x", magic: 0x10000, version: 1, fieldsSize: 0 })).toThrow(
      "magic 65536 is not a u16",
    )
    expect(() => Wire.format({ protocol: "x", magic: -1, version: 1, fieldsSize: 0 })).toThrow(RangeError)
    expect(() => Wire.format({ protocol: "x", magic: 1, version: 256, fieldsSize: 0 })).toThrow(
      "version 256 is not a u8",
    )
    expect(() => Wire.format({ protocol: "x", magic: 1, version: -1, fieldsSize: 0 })).toThrow(RangeError)
    expect(() => Wire.format({ protocol: "x", magic: 1, version: 1, fieldsSize: -1 })).toThrow(
      "fieldsSize -1 is not a size",
    )
    expect(() => Wire.format({ protocol: "x", magic: 1, version: 1, fieldsSize: 0.5 })).toThrow(RangeError)
    expect(Wire.format({ protocol: "x", magic: 0xffff, version: 255, fieldsSize: 0 }).magic).toBe(0xffff)
    const lowest = { protocol: "x", magic: 0, version: 0, fieldsSize: 0 }
    expect(Wire.format(lowest)).toBe(lowest)
    expect(() => Wire.format({ protocol: "x", magic: 1.5, version: 1, fieldsSize: 0 })).toThrow(RangeError)
    expect(() => Wire.format({ protocol: "x", magic: 1, version: 1.5, fieldsSize: 0 })).toThrow(RangeError)
  })

  it("the length bound is the u32 field: 2^32 - 1 passes the check, 2^32 does not", () => {
    const fake = (n: number) => ({ byteLength: n }) as Uint8Array
    expect(() => Wire.encodeHeader(Demo, 1, fake(2 ** 32))).toThrow("payload of 4294967296 bytes over 2^32 - 1")
    expect(() => Wire.encode(Demo, 1, fake(2 ** 32 + 1))).toThrow(RangeError)
    // Inclusive: the fake payload gets past the bound (and then fails where its bytes are read).
    expect(() => Wire.encodeHeader(Demo, 1, fake(2 ** 32 - 1))).not.toThrow(/over 2\^32 - 1/)
  })

  it("types at both ends of a byte encode", () => {
    for (const type of [0, 255]) {
      const b = Wire.encode(Demo, type, Buffer.from("x"))
      expect(b[3]).toBe(type)
      expect(b.length).toBe(19)
    }
  })

  it("zero-fills unwritten fields", () => {
    const b = Wire.encode(Demo, 1, new Uint8Array(0))
    expect([...b.subarray(8, 14)]).toEqual([0, 0, 0, 0, 0, 0])
  })
})

describe("ListenError", () => {
  it("names the address and why", () => {
    const e = new WireError.ListenError({ address: "0.0.0.0", port: 7700, reason: "address in use" })
    expect(e._tag).toBe("ListenError")
    expect(e.message).toBe("cannot listen on 0.0.0.0:7700: address in use")
  })
})
