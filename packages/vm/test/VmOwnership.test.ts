import { describe, expect, it } from "@effect/vitest"
import { Database } from "@novacron/database"
import { LocalStore } from "@novacron/dwcp-ass"
import { Context, Effect, Layer } from "effect"
import { layer, VmOwnership } from "../src/VmOwnership.js"

// Two nodes on one cluster state (the local store stands for etcd here; its contract is dwcp-ass's).
const state = LocalStore.layer().pipe(Layer.provide(Database.layerSqlite({ path: ":memory:" })))
const owners = Layer.merge(
  Layer.map(layer("node-a"), (ctx) => Context.make(A, Context.get(ctx, VmOwnership))),
  Layer.map(layer("node-b"), (ctx) => Context.make(B, Context.get(ctx, VmOwnership))),
).pipe(Layer.provide(state))
class A extends Context.Tag("A")<A, VmOwnership["Type"]>() {}
class B extends Context.Tag("B")<B, VmOwnership["Type"]>() {}

describe("VmOwnership.layer", () => {
  it.effect("terms grow with each acquisition; another node is refused; a stale term fails assert", () =>
    Effect.gen(function* () {
      const a = yield* A
      const b = yield* B
      expect(yield* a.acquire("vm-1")).toBe(1)
      expect(yield* a.acquire("vm-1")).toBe(2)
      yield* a.assert("vm-1", 2)
      const stale = yield* Effect.flip(a.assert("vm-1", 1))
      expect(stale.message).toBe("vm vm-1: ownership: term 1 is stale: node node-a holds term 2")
      const refused = yield* Effect.flip(b.acquire("vm-1"))
      expect(refused.message).toBe("vm vm-1: ownership: owned by node node-a (term 2)")
      yield* a.release("vm-1")
      expect((yield* Effect.flip(a.assert("vm-1", 2))).message).toContain("(released)")
      // Released: the next owner continues the sequence, so the old holder's term stays stale.
      expect(yield* b.acquire("vm-1")).toBe(3)
      expect((yield* Effect.flip(a.acquire("vm-1"))).message).toContain("owned by node node-b")
    }).pipe(Effect.provide(owners)),
  )

  it.effect("concurrent acquisitions get distinct terms", () =>
    Effect.gen(function* () {
      const a = yield* A
      const terms = yield* Effect.all(
        Array.from({ length: 8 }, () => a.acquire("vm-2")),
        { concurrency: "unbounded" },
      )
      expect([...terms].sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6, 7, 8])
    }).pipe(Effect.provide(owners)),
  )

  it.effect(
    "takeOver moves the VM from exactly the source's term: the source is fenced, a stale or released term is refused",
    () =>
      Effect.gen(function* () {
        const a = yield* A
        const b = yield* B
        const t = yield* a.acquire("vm-3")
        const stale = yield* Effect.flip(b.takeOver("vm-3", t - 1 + 2))
        expect(stale.message).toBe(`vm vm-3: ownership: cannot take over term ${t + 1}: node node-a holds term ${t}`)
        expect(yield* b.takeOver("vm-3", t)).toBe(t + 1)
        yield* b.assert("vm-3", t + 1)
        expect((yield* Effect.flip(a.assert("vm-3", t))).message).toContain(`node node-b holds term ${t + 1}`)
        // A second destination racing with the same source term loses.
        expect((yield* Effect.flip(a.takeOver("vm-3", t))).message).toContain("cannot take over")
        yield* b.release("vm-3")
        expect((yield* Effect.flip(a.takeOver("vm-3", t + 1))).message).toContain("(released)")
        expect((yield* Effect.flip(a.takeOver("vm-none", 1))).message).toContain("no owner recorded")
      }).pipe(Effect.provide(owners)),
  )
})
