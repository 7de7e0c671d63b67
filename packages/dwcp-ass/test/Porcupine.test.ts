import { describe, expect, it } from "vitest"
import { check, type Operation, type RegisterInput, type RegisterOutput, register } from "./support/porcupine.js"

type Op = Operation<RegisterInput, RegisterOutput>
const w = (client: number, call: number, ret: number, value: string, key = "k"): Op => ({
  key,
  client,
  call,
  ret,
  input: { op: "write", value },
  output: ret === Infinity ? undefined : true,
})
const r = (client: number, call: number, ret: number, seen: string | null, key = "k"): Op => ({
  key,
  client,
  call,
  ret,
  input: { op: "read" },
  output: seen,
})
const cas = (
  client: number,
  call: number,
  ret: number,
  from: string | null,
  to: string,
  ok: boolean | undefined,
): Op => ({
  key: "k",
  client,
  call,
  ret,
  input: { op: "cas", from, to },
  output: ok,
})

describe("linearizability checker (register with CAS)", () => {
  it("accepts a sequential history and concurrent ones with a valid order", () => {
    expect(check(register, [w(0, 0, 1, "a"), r(1, 2, 3, "a"), w(0, 4, 5, "b"), r(1, 6, 7, "b")]).ok).toBe(true)
    // The read overlaps both writes: either value (or the initial null) is fine.
    expect(check(register, [w(0, 0, 10, "a"), r(1, 1, 2, null), r(2, 3, 4, "a")]).ok).toBe(true)
    // Two overlapping writes, then reads agree on the last one.
    expect(check(register, [w(0, 0, 5, "a"), w(1, 1, 6, "b"), r(2, 7, 8, "a"), r(3, 9, 10, "a")]).ok).toBe(true)
  })

  it("rejects a stale read after a completed write", () => {
    const res = check(register, [w(0, 0, 1, "a"), w(0, 2, 3, "b"), r(1, 4, 5, "a")])
    expect(res.ok).toBe(false)
    expect(res.failures).toEqual(["k"])
  })

  it("rejects reads that go back in time (a then b then a)", () => {
    expect(check(register, [w(0, 0, 10, "a"), w(1, 0, 10, "b"), r(2, 11, 12, "b"), r(3, 13, 14, "a")]).ok).toBe(false)
  })

  it("rejects two successful CAS from the same value", () => {
    expect(check(register, [w(0, 0, 1, "a"), cas(1, 2, 5, "a", "b", true), cas(2, 2, 5, "a", "c", true)]).ok).toBe(
      false,
    )
    // One wins, one fails: fine.
    expect(
      check(register, [w(0, 0, 1, "a"), cas(1, 2, 5, "a", "b", true), cas(2, 2, 5, "a", "c", false), r(0, 6, 7, "b")])
        .ok,
    ).toBe(true)
  })

  it("rejects a lost acknowledged write", () => {
    expect(check(register, [w(0, 0, 1, "a"), r(1, 2, 3, null)]).ok).toBe(false)
  })

  it("an unknown write may take effect late, or never, but not before its call", () => {
    expect(check(register, [w(0, 0, Infinity, "a"), r(1, 5, 6, null), r(1, 7, 8, "a")]).ok).toBe(true)
    expect(check(register, [w(0, 0, Infinity, "a"), r(1, 5, 6, null)]).ok).toBe(true)
    expect(check(register, [r(1, 0, 1, "a"), w(0, 2, Infinity, "a")]).ok).toBe(false)
    // Once seen, it cannot vanish again.
    expect(check(register, [w(0, 0, Infinity, "a"), r(1, 5, 6, "a"), r(1, 7, 8, null)]).ok).toBe(false)
  })

  it("an unknown CAS either applied or did nothing", () => {
    expect(check(register, [w(0, 0, 1, "a"), cas(1, 2, Infinity, "a", "b", undefined), r(2, 10, 11, "b")]).ok).toBe(
      true,
    )
    expect(check(register, [w(0, 0, 1, "a"), cas(1, 2, Infinity, "a", "b", undefined), r(2, 10, 11, "a")]).ok).toBe(
      true,
    )
    expect(check(register, [w(0, 0, 1, "x"), cas(1, 2, Infinity, "a", "b", undefined), r(2, 10, 11, "b")]).ok).toBe(
      false,
    )
  })

  it("checks keys separately: a bad key is named, a good one is not", () => {
    const res = check(register, [
      w(0, 0, 1, "a", "x"),
      r(1, 2, 3, "a", "x"),
      w(0, 0, 1, "a", "y"),
      r(1, 2, 3, null, "y"),
    ])
    expect(res.failures).toEqual(["y"])
  })

  it("decides a larger concurrent history (memoisation keeps it small)", () => {
    const ops: Array<Op> = []
    // 6 clients, 40 rounds: every round all write concurrently, then one reads the winner.
    for (let round = 0; round < 40; round++) {
      const t = round * 10
      for (let c = 0; c < 6; c++) ops.push(w(c, t, t + 5, `v${round}-${c}`))
      ops.push(r(6, t + 6, t + 7, `v${round}-${round % 6}`))
    }
    // Within a search budget that the unmemoised search exceeds (it revisits the same states).
    expect(check(register, ops, 50_000).ok).toBe(true)
    ops.push(r(6, 1000, 1001, "v3-1"))
    // Refuting it means exhausting the orders of every round: decided only thanks to memoisation.
    const bad = check(register, ops, 200_000)
    expect(bad.failures).toEqual(["k"])
    expect(bad.undecided).toEqual([])
  })
})
