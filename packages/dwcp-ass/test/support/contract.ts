// The behaviour every mode's StateStore must have, run against each implementation.
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Duration, Effect, Exit, Fiber, type Layer, Option, Ref, Schema, Scope, Stream } from "effect"
import { Keyspace, StateStore } from "../../src/index.js"

export interface ContractOptions {
  readonly name: string
  /** A store isolated from the other tests (fresh database or own etcd namespace). */
  readonly layer: () => Layer.Layer<StateStore.StateStore, unknown>
  /** Shortest lease TTL the store honours. */
  readonly ttl: Duration.Duration
  readonly timeout?: number
  /** A store that keeps only the last 3 revisions of watch history (stores that bound it in memory). */
  readonly shortHistory?: (() => Layer.Layer<StateStore.StateStore, unknown>) | undefined
}

const S = StateStore.StateStore

export const contract = (o: ContractOptions) =>
  describe(`${o.name}: state API contract`, () => {
    const run = <A, E>(self: Effect.Effect<A, E, StateStore.StateStore | Scope.Scope>) =>
      self.pipe(Effect.scoped, Effect.provide(o.layer()))
    const t = o.timeout ?? 20_000

    it.live(
      "put and get: revisions and versions",
      () =>
        run(
          Effect.gen(function* () {
            const s = yield* S
            expect(Option.isNone(yield* s.get("a/x"))).toBe(true)
            const r1 = yield* s.put("a/x", "1")
            const r2 = yield* s.put("a/x", "2")
            expect(r2).toBeGreaterThan(r1)
            const e = Option.getOrThrow(yield* s.get("a/x"))
            expect(e).toMatchObject({ key: "a/x", value: "2", createRevision: r1, modRevision: r2, version: 2 })
            expect(e.lease).toBeUndefined()
          }),
        ),
      t,
    )

    it.live(
      "compareAndSet: on the current mod revision only; 0 means absent",
      () =>
        run(
          Effect.gen(function* () {
            const s = yield* S
            const r1 = yield* s.compareAndSet("a/c", 0, "first")
            const again = yield* Effect.flip(s.compareAndSet("a/c", 0, "second"))
            expect(again).toMatchObject({ _tag: "CompareFailed", key: "a/c", expected: 0, actual: r1 })
            const r2 = yield* s.compareAndSet("a/c", r1, "second")
            const stale = yield* Effect.flip(s.compareAndSet("a/c", r1, "third"))
            expect(stale).toMatchObject({ _tag: "CompareFailed", actual: r2 })
            expect(Option.getOrThrow(yield* s.get("a/c")).value).toBe("second")
          }),
        ),
      t,
    )

    it.live(
      "delete, then the key is absent for compareAndSet",
      () =>
        run(
          Effect.gen(function* () {
            const s = yield* S
            yield* s.put("a/d", "v")
            expect(yield* s.delete("a/d")).toBe(true)
            expect(yield* s.delete("a/d")).toBe(false)
            expect(Option.isNone(yield* s.get("a/d"))).toBe(true)
            const r = yield* s.compareAndSet("a/d", 0, "again")
            expect(Option.getOrThrow(yield* s.get("a/d"))).toMatchObject({ createRevision: r, version: 1 })
          }),
        ),
      t,
    )

    it.live(
      "list: the prefix only, ordered by key, at one revision",
      () =>
        run(
          Effect.gen(function* () {
            const s = yield* S
            yield* s.put("vm/b", "2")
            yield* s.put("vm/a", "1")
            const last = yield* s.put("vmx", "other")
            const snap = yield* s.list("vm/")
            expect(snap.entries.map((e) => [e.key, e.value])).toEqual([
              ["vm/a", "1"],
              ["vm/b", "2"],
            ])
            expect(snap.revision).toBeGreaterThanOrEqual(last)
          }),
        ),
      t,
    )

    it.live(
      "watch from a revision: every later change of the prefix, in order",
      () =>
        run(
          Effect.gen(function* () {
            const s = yield* S
            const from = yield* s.put("w/a", "0")
            yield* s.put("w/a", "1")
            yield* s.put("other", "x")
            const fiber = yield* s.watch("w/", from).pipe(Stream.take(4), Stream.runCollect, Effect.fork)
            yield* s.put("w/b", "2")
            yield* s.delete("w/a")
            const last = yield* s.put("w/b", "3")
            const events = Chunk.toReadonlyArray(yield* Fiber.join(fiber))
            expect(
              events.map((e) =>
                e._tag === "Put"
                  ? `put ${e.entry.key}=${e.entry.value}`
                  : e._tag === "Delete"
                    ? `del ${e.key}`
                    : "reset",
              ),
            ).toEqual(["put w/a=1", "put w/b=2", "del w/a", "put w/b=3"])
            const end = events[3]!
            expect(end._tag === "Put" && end.entry.modRevision).toBe(last)
          }),
        ),
      t,
    )

    it.live(
      "lease: bound keys go when the scope closes and when keepalives stop",
      () =>
        run(
          Effect.gen(function* () {
            const s = yield* S
            const scope = yield* Scope.make()
            const l = yield* s.lease(o.ttl).pipe(Scope.extend(scope))
            yield* s.put("l/a", "v", { lease: l })
            expect(Option.getOrThrow(yield* s.get("l/a")).lease).toBe(l.id)
            yield* Scope.close(scope, Exit.void)
            expect(Option.isNone(yield* s.get("l/a"))).toBe(true)

            const paused = yield* Ref.make(false)
            const l2 = yield* s.lease(o.ttl, { keepAlive: Effect.map(Ref.get(paused), (p) => !p) })
            yield* s.put("l/b", "v", { lease: l2 })
            yield* Effect.sleep(Duration.times(o.ttl, 1.5))
            expect(yield* l2.valid).toBe(true) // keepalives hold it past its TTL
            yield* Ref.set(paused, true)
            yield* l2.lost
            // The store drops the key within a TTL (+ etcd's own rounding and checks).
            let gone = false
            for (let i = 0; i < 60 && !gone; i++) {
              gone = Option.isNone(yield* s.get("l/b"))
              if (!gone) yield* Effect.sleep(Duration.millis(100))
            }
            expect(gone).toBe(true)
          }),
        ),
      t,
    )

    it.live(
      "campaign: the oldest candidate leads; the next one leads after it resigns, with a larger token",
      () =>
        run(
          Effect.gen(function* () {
            const s = yield* S
            const scope1 = yield* Scope.make()
            const first = yield* s.campaign("e1", "node-1", { ttl: o.ttl }).pipe(Scope.extend(scope1))
            expect(Option.getOrThrow(yield* s.leader("e1")).value).toBe("node-1")
            const second = yield* s.campaign("e1", "node-2", { ttl: o.ttl }).pipe(Effect.fork)
            yield* Effect.sleep(Duration.millis(300))
            expect(second.unsafePoll()).toBeNull() // still waiting
            yield* s.put("e1-data", "by-1", { fence: first })
            yield* Scope.close(scope1, Exit.void)
            const l2 = yield* Fiber.join(second)
            expect(l2.token).toBeGreaterThan(first.token)
            expect(Option.getOrThrow(yield* s.leader("e1")).value).toBe("node-2")
            const refused = yield* Effect.flip(s.put("e1-data", "by-1-late", { fence: first }))
            expect(refused).toMatchObject({ _tag: "Deposed", election: "e1", token: first.token })
            yield* s.put("e1-data", "by-2", { fence: l2 })
            expect(Option.getOrThrow(yield* s.get("e1-data")).value).toBe("by-2")
          }),
        ),
      t,
    )

    it.live(
      "fencing: a leader whose keepalives stall is deposed by itself; the store refuses its writes; a new leader takes over",
      () =>
        run(
          Effect.gen(function* () {
            const s = yield* S
            const paused = yield* Ref.make(false)
            const lease = yield* s.lease(o.ttl, { keepAlive: Effect.map(Ref.get(paused), (p) => !p) })
            const old = yield* s.campaign("e2", "old", { lease })
            yield* s.put("owner/vm-1", "old", { fence: old })
            yield* Ref.set(paused, true)
            yield* old.deposed
            expect(yield* old.isLeader).toBe(false)
            const next = yield* s.campaign("e2", "new", { ttl: o.ttl })
            expect(next.token).toBeGreaterThan(old.token)
            // Locally refused (lease no longer valid) ...
            const local = yield* Effect.flip(s.put("owner/vm-1", "old-late", { fence: old }))
            expect(local._tag).toBe("Deposed")
            // ... and by the store, even for a writer that still believes it leads.
            const believer = { ...old, isLeader: Effect.succeed(true) }
            const remote = yield* Effect.flip(s.put("owner/vm-1", "old-late", { fence: believer }))
            expect(remote._tag).toBe("Deposed")
            const cas = yield* Effect.flip(s.compareAndSet("owner/vm-1", 0, "x", { fence: believer }))
            expect(cas._tag).toBe("Deposed")
            yield* s.put("owner/vm-1", "new", { fence: next })
            expect(Option.getOrThrow(yield* s.get("owner/vm-1")).value).toBe("new")
          }),
        ),
      t,
    )

    it.live(
      "keyspace: decoded values; a stored value that does not decode is a typed error naming key and revision",
      () =>
        run(
          Effect.gen(function* () {
            const s = yield* S
            const vms = Keyspace.make("vm/", Schema.Struct({ owner: Schema.String, vcpus: Schema.Int }))
            const r = yield* vms.put("a", { owner: "n1", vcpus: 2 })
            const got = Option.getOrThrow(yield* vms.get("a"))
            expect(got).toMatchObject({ id: "a", key: "vm/a", value: { owner: "n1", vcpus: 2 }, modRevision: r })
            yield* vms.compareAndSet("a", r, { owner: "n2", vcpus: 2 })
            const bad = yield* s.put("vm/b", JSON.stringify({ owner: "n1", vcpus: "two" }))
            const err = yield* Effect.flip(vms.get("b"))
            expect(err).toMatchObject({ _tag: "StateDecodeError", key: "vm/b", revision: bad })
            expect(err.message).toContain("vcpus")
            const listed = yield* Effect.flip(vms.list)
            expect(listed._tag).toBe("StateDecodeError")
            yield* s.put("vm/c", "not json")
            expect((yield* Effect.flip(vms.get("c")))._tag).toBe("StateDecodeError")
          }),
        ),
      t,
    )

    if (o.shortHistory !== undefined) {
      const short = o.shortHistory
      it.live(
        "watch from a revision older than the kept history starts with a Reset snapshot",
        () =>
          Effect.gen(function* () {
            const s = yield* S
            const from = yield* s.put("h/a", "0")
            for (let i = 1; i <= 5; i++) yield* s.put("h/a", String(i))
            yield* s.put("h/b", "b")
            const events = yield* s.watch("h/", from).pipe(Stream.take(2), Stream.runCollect, Effect.fork)
            yield* Effect.sleep(Duration.millis(100)) // subscribed: h/c comes as a change, not in the snapshot
            yield* s.put("h/c", "c")
            const [reset, next] = Chunk.toReadonlyArray(yield* Fiber.join(events))
            expect(reset?._tag).toBe("Reset")
            if (reset?._tag === "Reset")
              expect(reset.snapshot.entries.map((e) => [e.key, e.value])).toEqual([
                ["h/a", "5"],
                ["h/b", "b"],
              ])
            expect(next?._tag === "Put" && next.entry.key).toBe("h/c")
          }).pipe(Effect.scoped, Effect.provide(short())),
        t,
      )
    }
  })
