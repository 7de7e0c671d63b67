import { describe, expect, it } from "vitest"
import * as Y from "yjs"
import { type Change, NotOwner, ownerOf, Replica } from "../src/internal/crdt.js"

const replica = (id: string, inc: number, seen: Array<Change> = []) => new Replica(id, inc, (c) => seen.push(...c))

/** One push-pull anti-entropy exchange between a and b. */
const exchange = (a: Replica, b: Replica) => {
  for (const { o, u } of b.missing(a.digest())) expect(a.apply(o, u)._tag).toBe("Applied")
  for (const { o, u } of a.missing(b.digest())) expect(b.apply(o, u)._tag).toBe("Applied")
}

const dump = (r: Replica) => [...r.entries()].map(([, k, v]) => `${k}=${v}`).sort()

describe("Replica (Yjs YKeyValue per writer)", () => {
  it("owner of a key is its second segment", () => {
    expect(ownerOf("capacity/node-a")).toBe("node-a")
    expect(ownerOf("svc/node-a/api")).toBe("node-a")
    expect(ownerOf("bare")).toBeUndefined()
    expect(ownerOf("x/")).toBeUndefined()
  })

  it("writes spread by deltas and by state-vector anti-entropy; deletes are tombstones that spread", () => {
    const a = replica("a", 10)
    const b = replica("b", 20)
    const d = a.put("cap/a", "1")
    expect(d.byteLength).toBeLessThan(100)
    expect(b.apply("a", d)).toEqual({ _tag: "Applied", changed: true })
    expect(b.apply("a", d)).toEqual({ _tag: "Applied", changed: false })
    b.put("cap/b", "2")
    a.put("cap/a", "3")
    exchange(a, b)
    expect(dump(a)).toEqual(["cap/a=3", "cap/b=2"])
    expect(dump(b)).toEqual(dump(a))
    a.remove("cap/a")
    exchange(a, b)
    expect(b.get("cap/a")).toBeUndefined()
    expect(dump(b)).toEqual(["cap/b=2"])
    // Nothing left to send once equal.
    expect(a.missing(b.digest())).toEqual([])
    expect(b.behind(a.digest())).toBe(false)
  })

  it("a node cannot write another node's key, and a receiver refuses an update that does", () => {
    const a = replica("a", 10)
    const b = replica("b", 20)
    expect(() => a.put("cap/b", "x")).toThrow(NotOwner)
    expect(() => a.put("nokey", "x")).toThrow(NotOwner)
    // A buggy (or hostile) node a that writes b's key into its own document: a foreign replica
    // built without the check, whose update b must refuse whole.
    const rogue = new Replica(
      "a",
      11,
      () => {},
      undefined,
      () => "a",
    )
    rogue.put("cap/a", "fine")
    const bad = rogue.put("cap/b", "stolen")
    const r = b.apply("a", bad)
    expect(r._tag).toBe("Refused")
    expect(r._tag === "Refused" && r.reason).toContain("cap/b is owned by b, written into a's keys")
    expect(b.get("cap/b")).toBeUndefined()
    // The same update is also refused as a full-state sync, and nothing of it is applied.
    const full = rogue.missing([])
    expect(b.apply("a", full[0]!.u)._tag).toBe("Refused")
    expect(b.get("cap/a")).toBeUndefined()
    // Malformed and oversized updates: refused, nothing applied.
    expect(b.apply("a", new Uint8Array([1, 2, 3, 250, 250]))._tag).toBe("Refused")
    expect(b.apply("a", new Uint8Array(61 * 1024))._tag).toBe("Refused")
  })

  it("a restarted node with stale state (new incarnation): nothing lost, its new writes win", () => {
    const a = replica("a", 100)
    const b = replica("b", 200)
    a.put("cap/a", "v1")
    a.put("svc/a/x", "x1")
    const stale = a.snapshot()
    a.put("cap/a", "v2")
    a.put("svc/a/y", "y1")
    exchange(a, b)
    // a restarts from the stale snapshot with a larger client id, and writes before catching up.
    const inc = Replica.maxClient(stale, "a") + 1
    const a2 = replica("a", inc)
    for (const { o, u } of stale) a2.apply(o, u)
    expect(a2.get("cap/a")).toBe("v1")
    a2.put("cap/a", "v3")
    exchange(a2, b)
    for (const r of [a2, b]) {
      expect(r.get("cap/a")).toBe("v3")
      expect(r.get("svc/a/y")).toBe("y1")
      expect(r.get("svc/a/x")).toBe("x1")
    }
  })

  it("a restarted node deletes a key it has not caught up with yet: the delete wins once they sync", () => {
    const a = replica("a", 100)
    const b = replica("b", 200)
    a.put("svc/a/old", "1")
    exchange(a, b)
    const a2 = replica("a", 101)
    expect(a2.get("svc/a/old")).toBeUndefined()
    a2.remove("svc/a/old")
    exchange(a2, b)
    expect(b.get("svc/a/old")).toBeUndefined()
    expect(a2.get("svc/a/old")).toBeUndefined()
  })

  it("refuses updates that are not key-value entries of the kv array (a Y.Map, another root type)", () => {
    const b = replica("b", 2)
    const doc = new Y.Doc()
    doc.getMap("kv").set("cap/a", "x")
    expect(b.apply("a", Y.encodeStateAsUpdate(doc))._tag).toBe("Refused")
    const other = new Y.Doc()
    other.getArray("evil").push([{ key: "cap/a", val: "x" }])
    const r = b.apply("a", Y.encodeStateAsUpdate(other))
    expect(r._tag === "Refused" && r.reason).toContain('outside the "kv" array')
    const bad = new Y.Doc()
    bad.getArray("kv").push([{ key: "cap/a", val: { v: 1, r: "x" } }])
    expect(b.apply("a", Y.encodeStateAsUpdate(bad))._tag).toBe("Refused")
    expect([...b.entries()]).toEqual([])
  })

  it("change events: local and remote, with deletes", () => {
    const seen: Array<Change> = []
    const a = replica("a", 1)
    const b = replica("b", 2, seen)
    b.apply("a", a.put("k/a", "1"))
    b.apply("a", a.put("k/a", "2"))
    const del = a.remove("k/a")
    b.apply("a", del)
    expect(seen.map((c) => [c.key, c.value])).toEqual([
      ["k/a", "1"],
      ["k/a", "2"],
      ["k/a", undefined],
    ])
  })

  it("state stays near live data after many overwrites (YKeyValue, gc on)", () => {
    const a = replica("a", 1)
    const live = 100
    for (let i = 0; i < 20_000; i++) a.put(`k/a/${i % live}`, `value-${i}`)
    const liveBytes = [...a.entries()].reduce((n, [, k, v]) => n + k.length + v.length, 0)
    expect(a.size()).toBeLessThan(2 * liveBytes + 1024)
  })
})
