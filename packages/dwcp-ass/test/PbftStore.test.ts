// PBFT mode: the state API contract against four members over mTLS on loopback.
import * as fs from "node:fs"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Chunk, Duration, Effect, Option, Stream } from "effect"
import { contract } from "./support/contract.js"
import { clusterLayer, IDS, makePki, startCluster } from "./support/pbftCluster.js"

const pki = makePki(IDS)
const six = ["node-a", "node-b", "node-c", "node-d", "node-e", "node-f"]
const pki6 = makePki(six)
afterAll(() => {
  fs.rmSync(pki.dir, { recursive: true, force: true })
  fs.rmSync(pki6.dir, { recursive: true, force: true })
})

contract({ name: "pbft (4 members, mTLS on loopback)", layer: () => clusterLayer(pki), ttl: Duration.seconds(1) })

describe("pbft store", () => {
  it.live("a write through one member is read through every other", () =>
    Effect.gen(function* () {
      const members = yield* startCluster(pki)
      const rev = yield* members[0]!.store.put("x", "1")
      for (const m of members) expect(Option.getOrThrow(yield* m.store.get("x")).modRevision).toBe(rev)
      expect(members[0]!.store.mode).toBe("pbft")
    }).pipe(Effect.scoped),
  )

  it.live(
    "5 and 6 members, the view-0 primary silent: writes go on after the view change, every member reads them",
    () =>
      Effect.gen(function* () {
        for (const ids of [six.slice(0, 5), six]) {
          const members = yield* Effect.scoped(
            Effect.gen(function* () {
              // node-a is replica 0, the primary of view 0: listed, never started.
              const up = yield* startCluster(pki6, { ids, absent: ["node-a"] })
              expect(up.map((m) => m.replica.f)).toEqual(up.map(() => 1))
              const rev = yield* up[0]!.store.put("k", String(ids.length))
              for (const m of up) {
                expect(Option.getOrThrow(yield* m.store.get("k"))).toMatchObject({
                  value: String(ids.length),
                  modRevision: rev,
                })
                expect(m.replica.status().view).toBeGreaterThan(0)
              }
              return up.length
            }),
          )
          expect(members).toBe(ids.length - 1)
        }
      }),
  )

  it.live("watch from a revision older than the kept history starts with a Reset snapshot", () =>
    Effect.gen(function* () {
      const members = yield* startCluster(pki, { history: 3 })
      const s = members[1]!.store
      const from = yield* s.put("h/a", "0")
      for (let i = 1; i <= 5; i++) yield* s.put("h/a", String(i))
      yield* s.put("h/b", "b")
      const events = yield* s.watch("h/", from).pipe(Stream.take(2), Stream.runCollect, Effect.fork)
      yield* Effect.sleep(Duration.millis(100)) // subscribed: h/c comes as a change, not in the snapshot
      yield* s.put("h/c", "c")
      const [reset, next] = Chunk.toReadonlyArray(yield* events.await.pipe(Effect.flatten))
      expect(reset?._tag).toBe("Reset")
      if (reset?._tag === "Reset")
        expect(reset.snapshot.entries.map((e) => [e.key, e.value])).toEqual([
          ["h/a", "5"],
          ["h/b", "b"],
        ])
      expect(next?._tag === "Put" && next.entry.key).toBe("h/c")
    }).pipe(Effect.scoped),
  )
})
