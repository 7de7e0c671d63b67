import { describe, expect, it } from "@effect/vitest"
import { splitAt } from "../src/index.js"

const text = (pieces: ReadonlyArray<Buffer>) => pieces.map((p) => p.toString())

describe("splitAt", () => {
  it("cuts at each point in order, ignoring duplicates and order of the cuts", () => {
    expect(text(splitAt(Buffer.from("abcdef"), [4, 2, 4]))).toEqual(["ab", "cd", "ef"])
  })

  it("takes cuts modulo length + 1, so a cut at 0 or the end is an empty read", () => {
    // 7 % 7 = 0 and 6 is the end: both ends give empty pieces a decoder must take.
    expect(text(splitAt(Buffer.from("abcdef"), [7, 6, 9]))).toEqual(["", "ab", "cdef", ""])
    expect(text(splitAt(Buffer.from("abc"), []))).toEqual(["abc"])
    expect(text(splitAt(Buffer.alloc(0), [5]))).toEqual(["", ""])
  })

  it("gives views on the bytes of a Uint8Array, not copies", () => {
    const backing = new Uint8Array([9, 1, 2, 3, 4, 9])
    const bytes = backing.subarray(1, 5)
    const pieces = splitAt(bytes, [1])
    expect(pieces.map((p) => [...p])).toEqual([[1], [2, 3, 4]])
    bytes[0] = 7
    expect(pieces[0]![0]).toBe(7)
  })
})
