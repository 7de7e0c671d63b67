import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import * as Wire from "../src/Wire.js"

const id = "6a0f3a3e-6f0e-4b57-9a59-3a4d3c1b2a10"

describe("Wire", () => {
  it("frames round-trip through the reader, split anywhere, and leave QEMU's bytes after the hello as rest", () => {
    const bytes = Buffer.concat([
      Wire.frame({ _tag: "channel", migration: id, index: 2, zstd: 1 }),
      Buffer.from("QEVM..."),
    ])
    for (let cut = 0; cut <= bytes.length; cut++) {
      const r = new Wire.Reader()
      expect(Either.isRight(r.push(bytes.subarray(0, cut)))).toBe(true)
      let first = r.next()
      if (first === undefined) {
        r.push(bytes.subarray(cut))
        first = r.next()
      } else r.push(bytes.subarray(cut))
      expect(first).toEqual(Either.right({ _tag: "channel", migration: id, index: 2, zstd: 1 }))
      expect(Wire.decodeHello((first as Either.Right<unknown, unknown>).right)).toEqual(
        Either.right({ _tag: "channel", migration: id, index: 2, zstd: 1 }),
      )
      expect(r.rest().toString()).toBe("QEVM...")
    }
  })

  it("an oversized announcement is refused at its length, before the body is buffered", () => {
    const head = Buffer.alloc(4)
    head.writeUInt32BE(Wire.maxFrame + 1, 0)
    const r = new Wire.Reader()
    expect(Either.isLeft(r.push(head))).toBe(true)
    expect(() => Wire.frame({ _tag: "failed", detail: "x".repeat(Wire.maxFrame) })).toThrow(RangeError)
  })

  it("a hello naming no known message, a bad id or an out-of-range index does not decode", () => {
    expect(Either.isLeft(Wire.decodeHello({ _tag: "channel", migration: "../../etc", index: 0 }))).toBe(true)
    expect(Either.isLeft(Wire.decodeHello({ _tag: "channel", migration: id, index: 256 }))).toBe(true)
    expect(Either.isLeft(Wire.decodeHello({ _tag: "channel", migration: id, index: 0, zstd: 22 }))).toBe(true)
    // A hello without zstd is an uncompressed channel.
    expect(Wire.decodeHello({ _tag: "channel", migration: id, index: 0 })).toEqual(
      Either.right({ _tag: "channel", migration: id, index: 0, zstd: 0 }),
    )
    expect(Either.isLeft(Wire.decodeHello({ _tag: "shell", migration: id }))).toBe(true)
    // A prepare's traceparent is carried as it came: any value decodes (a bad one starts a new
    // trace at the destination, it never refuses a migration).
    const prepare = { _tag: "prepare", migration: id, spec: { id: "vm" }, term: 1, capabilities: [], channels: 1 }
    for (const traceparent of ["00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "garbage", 42, undefined]) {
      expect(Either.isRight(Wire.decodeHello({ ...prepare, traceparent }))).toBe(true)
    }
    expect(Either.isLeft(Wire.decodeControl({ _tag: "resumed" }))).toBe(true)
    const notJson = new Wire.Reader()
    const body = Buffer.from("{nope")
    const head = Buffer.alloc(4)
    head.writeUInt32BE(body.length, 0)
    notJson.push(Buffer.concat([head, body]))
    expect(Either.isLeft(notJson.next()!)).toBe(true)
  })
})
