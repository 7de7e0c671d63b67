import * as net from "node:net"
import { describe, expect, it } from "@effect/vitest"
import { splitAt } from "@novacron/testing"
import { Effect, Queue } from "effect"
import fc from "fast-check"
import { Frame, Receiver, Sender, Source } from "../src/index.js"
import { digestOf, payload, settings, tmp } from "./helpers.js"

const frameArb = fc.record({
  type: fc.constantFrom(...Object.values(Frame.FrameType)),
  transferId: fc.uint8Array({ minLength: 16, maxLength: 16 }).map((a) => Buffer.from(a)),
  seq: fc.nat({ max: 2 ** 32 - 1 }),
  offset: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
  payload: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
})

describe("Frame", () => {
  it("round-trips any frames however the bytes are split", () => {
    fc.assert(
      fc.property(fc.array(frameArb, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 10 }), (frames, cuts) => {
        const wire = Buffer.concat(frames.map(Frame.encodeToBuffer))
        const d = new Frame.Decoder(1024)
        const got = splitAt(wire, cuts).flatMap((piece) => d.push(piece))
        expect(
          got.map(({ at: _, ...f }) => ({
            ...f,
            transferId: Buffer.from(f.transferId),
            payload: Buffer.from(f.payload),
          })),
        ).toEqual(frames)
        expect(d.buffered).toBe(0)
      }),
    )
  })

  it("reports any corrupted byte as a FrameError inside the corrupted frame, never another exception", () => {
    fc.assert(
      fc.property(
        fc.array(frameArb, { minLength: 1, maxLength: 5 }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (frames, where, xor) => {
          const encoded = frames.map(Frame.encodeToBuffer)
          const wire = Buffer.concat(encoded)
          const pos = where % wire.length
          wire[pos] = wire[pos]! ^ xor
          // Start of the frame holding the corrupted byte.
          let start = 0
          for (const e of encoded) {
            if (pos < start + e.length) break
            start += e.length
          }
          const d = new Frame.Decoder(1024)
          try {
            d.push(wire)
          } catch (e) {
            expect(e).toBeInstanceOf(Frame.FrameError)
            // The offending field: the magic, version, type, length, transfer offset, or the checksum.
            expect((e as Frame.FrameError).offset - start).toBeOneOf([0, 2, 3, 4, 28, 36])
            return
          }
          // A flipped length byte can make the decoder wait for more bytes; it never yields a bad frame.
          expect(d.buffered).toBeGreaterThan(0)
        },
      ),
    )
  })

  it("never throws anything but FrameError on arbitrary bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
        const d = new Frame.Decoder(64)
        try {
          d.push(Buffer.from(bytes))
        } catch (e) {
          expect(e).toBeInstanceOf(Frame.FrameError)
        }
      }),
    )
  })

  it("refuses a frame larger than the limit before reading its payload", () => {
    const f = Frame.encodeToBuffer({
      type: 3,
      transferId: Buffer.alloc(16),
      seq: 0,
      offset: 0,
      payload: Buffer.alloc(100),
    })
    const d = new Frame.Decoder(99)
    expect(() => d.push(f.subarray(0, Frame.HEADER_SIZE))).toThrow(/payload length 100 exceeds maxFrameSize 99/)
  })
})

const frame = (over: Partial<Frame.Frame> = {}): Frame.Frame => ({
  type: Frame.FrameType.DATA,
  transferId: Buffer.alloc(16, 1),
  seq: 3,
  offset: 3 * 4096,
  payload: Buffer.from("chunk bytes"),
  ...over,
})

/** The error `push` throws for `wire`. */
const failure = (wire: Buffer, limit = 1024): Frame.FrameError => {
  const d = new Frame.Decoder(limit)
  try {
    d.push(wire)
  } catch (e) {
    return e as Frame.FrameError
  }
  throw new Error("decoded without error")
}

describe("Frame decoder errors", () => {
  // A good frame first, so every error must name the second frame's offset (encoded inside the
  // tests, where mutation testing sees which test covers the encoder).
  const at = Frame.HEADER_SIZE
  const bad = (edit: (b: Buffer) => void) => {
    const lead = Frame.encodeToBuffer(frame({ type: Frame.FrameType.ACK, payload: Buffer.alloc(0) }))
    const b = Frame.encodeToBuffer(frame())
    edit(b)
    return Buffer.concat([lead, b])
  }

  it("names the reason and the offset of a bad header field (checked before the checksum)", () => {
    expect(failure(bad((b) => (b[0] = b[0]! ^ 0xff)))).toMatchObject({
      _tag: "FrameError",
      protocol: "amst",
      reason: "BadMagic",
      offset: at,
      message: `amst frame: BadMagic at byte ${at}: magic 0x5a7d, expected 0xa57d`,
    })
    expect(failure(bad((b) => (b[1] = b[1]! ^ 0xff)))).toMatchObject({ reason: "BadMagic", offset: at, actual: 0xa582 })
    expect(failure(bad((b) => (b[2] = 9)))).toMatchObject({
      reason: "BadVersion",
      offset: at + 2,
      message: `amst frame: BadVersion at byte ${at + 2}: version 9, expected 3`,
    })
    expect(failure(bad((b) => (b[3] = 0)))).toMatchObject({
      reason: "BadType",
      offset: at + 3,
      message: `amst frame: BadType at byte ${at + 3}: unknown frame type 0`,
    })
    expect(
      failure(
        bad(() => {}),
        10,
      ),
    ).toMatchObject({
      reason: "TooLarge",
      offset: at + Frame.LENGTH_OFFSET,
      message: `amst frame: TooLarge at byte ${at + 4}: payload length 11 exceeds maxFrameSize 10`,
    })
    // An offset beyond 2^53 cannot be a byte position; exactly 2^53 - 1 still decodes.
    const over = BigInt(Number.MAX_SAFE_INTEGER) + 1n
    expect(failure(bad((b) => b.writeBigUInt64BE(over, Frame.OFFSET_OFFSET)))).toMatchObject({
      reason: "Malformed",
      offset: at + Frame.OFFSET_OFFSET,
      message: `amst frame: Malformed at byte ${at + 28}: transfer offset ${over} over 2^53 - 1`,
    })
    const max = Frame.encodeToBuffer(frame({ offset: Number.MAX_SAFE_INTEGER }))
    expect(new Frame.Decoder(1024).push(max)[0]!.offset).toBe(Number.MAX_SAFE_INTEGER)
  })

  it("names a checksum mismatch in header or payload", () => {
    for (const pos of [25, 45]) {
      expect(failure(bad((b) => (b[pos] = b[pos]! ^ 1)))).toMatchObject({
        reason: "BadChecksum",
        offset: at + 36,
        message: expect.stringMatching(
          new RegExp(`^amst frame: BadChecksum at byte ${at + 36}: checksum 0x[0-9a-f]+, header says 0x`),
        ),
      })
    }
  })

  it("stays failed: later bytes, even a good frame, get the same error", () => {
    const d = new Frame.Decoder(1024)
    const wire = bad((b) => (b[2] = 9))
    expect(() => d.push(wire)).toThrow(/BadVersion/)
    expect(d.buffered).toBe(0)
    const again = (() => {
      try {
        d.push(Frame.encodeToBuffer(frame()))
      } catch (e) {
        return e
      }
    })()
    expect(again).toMatchObject({ reason: "BadVersion", offset: at + 2 })
  })

  it("hands out views of the bytes read, not copies, and tracks its position", () => {
    const d = new Frame.Decoder(1024)
    // Each read in its own memory (small buffers share Node's pool, where any copy would too).
    const read = (b: Buffer) => {
      const own = Buffer.from(new ArrayBuffer(b.length))
      b.copy(own)
      return own
    }
    // A header-only frame in a read of exactly 40 bytes, then a data frame in one read.
    const ack = read(Frame.encodeToBuffer(frame({ type: Frame.FrameType.ACK, payload: Buffer.alloc(0) })))
    const [a] = d.push(ack)
    expect(a!.transferId.buffer).toBe(ack.buffer)
    const data = read(Frame.encodeToBuffer(frame()))
    const [f] = d.push(data)
    expect(f!.payload.buffer).toBe(data.buffer)
    expect(f!.payload.toString()).toBe("chunk bytes")
    expect(f!.at).toBe(ack.length)
    expect(d.position).toBe(ack.length + data.length)
    // Split reads are joined, and the position counts whole frames only.
    expect(d.push(data.subarray(0, 50))).toEqual([])
    expect(d.buffered).toBe(50)
    expect(d.position).toBe(ack.length + data.length)
    expect(d.push(data.subarray(50))[0]!.payload.toString()).toBe("chunk bytes")
  })

  it("the payload bound can be raised once a stream is admitted", () => {
    const d = new Frame.Decoder(4)
    expect(d.maxPayload).toBe(4)
    d.maxPayload = 1024
    expect(d.maxPayload).toBe(1024)
    expect(d.push(Frame.encodeToBuffer(frame()))[0]?.payload.toString()).toBe("chunk bytes")
    expect(Frame.format).toMatchObject({ protocol: "amst", magic: 0xa57d, version: 3, fieldsSize: 28 })
  })

  it("pads a transfer id shorter than 16 bytes with zeros", () => {
    const [f] = new Frame.Decoder(1024).push(Frame.encodeToBuffer(frame({ transferId: Buffer.from([1, 2, 3]) })))
    expect([...f!.transferId]).toEqual([1, 2, 3, ...Array(13).fill(0)])
  })

  it("parseJson decodes a control payload or fails with Malformed at the given offset", () => {
    expect(Frame.parseJson(frame({ payload: Buffer.from('{"a":1}') }), 0)).toEqual({ a: 1 })
    expect(() => Frame.parseJson(frame({ payload: Buffer.from("{nope") }), 77)).toThrow(
      expect.objectContaining({
        _tag: "FrameError",
        reason: "Malformed",
        offset: 77,
        message: "amst frame: Malformed at byte 77: control frame is not JSON",
      }),
    )
  })
})

const rawSend = (port: number, bytes: Buffer) =>
  Effect.async<boolean>((resume) => {
    const s = net.connect({ host: "127.0.0.1", port }, () => s.write(bytes))
    s.on("error", () => {})
    s.on("close", () => resume(Effect.succeed(true)))
    const t = setTimeout(() => {
      s.destroy()
      resume(Effect.succeed(false))
    }, 3000)
    s.on("close", () => clearTimeout(t))
  })

const hello = (over: Record<string, unknown> = {}) =>
  Frame.encodeToBuffer({
    type: Frame.FrameType.HELLO,
    transferId: Buffer.alloc(16, 7),
    seq: 0,
    offset: 0,
    payload: Buffer.from(JSON.stringify({ name: "x.bin", size: 10, chunkSize: 4, stream: 0, ...over })),
  })

describe("Receiver against malformed input", () => {
  it.live("closes the connection with a typed error naming the offset, and keeps serving", () =>
    Effect.gen(function* () {
      const dir = yield* tmp
      const rx = yield* Receiver.listen({ dir, maxFrameSize: 4096 })
      const cases = fc.sample(
        fc.oneof(
          // garbage
          fc.uint8Array({ minLength: 40, maxLength: 200 }).map((a) => ({ bytes: Buffer.from(a), at: 0 })),
          // a good HELLO then a corrupted frame
          fc
            .uint8Array({ minLength: 40, maxLength: 100 })
            .map((a) => ({ bytes: Buffer.concat([hello(), Buffer.from(a)]), at: hello().length })),
          // schema-invalid control payloads
          fc.constantFrom(
            { bytes: hello({ size: -1 }), at: 0 },
            { bytes: hello({ name: "../../etc/passwd" }), at: 0 },
            { bytes: hello({ chunkSize: "big" }), at: 0 },
          ),
        ),
        { numRuns: 12, seed: 7 },
      )
      for (const c of cases) {
        const closed = yield* rawSend(rx.port, c.bytes)
        expect(closed).toBe(true)
        const f = yield* Queue.take(rx.faults)
        expect(["FrameError", "ProtocolError"]).toContain((f.error as { _tag?: string })._tag)
        expect((f.error as Frame.FrameError).offset).toBe(c.at)
        expect(f.error.message).toMatch(/offset|at byte/)
      }
      // DATA with a wrong offset for its sequence number after a valid HELLO.
      const bad = Frame.encodeToBuffer({
        type: Frame.FrameType.DATA,
        transferId: Buffer.alloc(16, 7),
        seq: 1,
        offset: 0,
        payload: Buffer.alloc(4),
      })
      yield* rawSend(rx.port, Buffer.concat([hello({ name: "y.bin" }), bad]))
      const f = yield* Queue.take(rx.faults)
      expect((f.error as { _tag?: string })._tag).toBe("ProtocolError")
      expect((f.error as Frame.FrameError).offset).toBe(hello({ name: "y.bin" }).length)
      // Still serving real transfers.
      const data = payload(200_000, 11)
      const r = yield* Sender.send({
        host: rx.host,
        port: rx.port,
        source: Source.fromBuffer(data, "ok.bin"),
        settings: settings({ chunk_size: 4096 }),
      })
      // A sender whose chunks exceed the receiver's frame limit is told so, not cut off in a loop.
      const big = yield* Effect.either(
        Sender.send({ host: rx.host, port: rx.port, source: Source.fromBuffer(data, "big.bin"), settings: settings() }),
      )
      expect(big._tag === "Left" && big.left.reason === "remote" && /frame limit/.test(big.left.message)).toBe(true)
      expect(yield* rx.awaitCompleted(r.transferId)).toMatchObject({
        digest: digestOf(data, r.integrity),
        integrity: r.integrity,
      })
    }).pipe(Effect.scoped),
  )
})
