// PBFT mode: the state API contract against four members over mTLS on loopback.
import * as fs from "node:fs"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Option } from "effect"
import { contract } from "./support/contract.js"
import { clusterLayer, IDS, makePki, startCluster } from "./support/pbftCluster.js"

const pki = makePki(IDS)
const six = ["node-a", "node-b", "node-c", "node-d", "node-e", "node-f"]
const pki6 = makePki(six)
afterAll(() => {
  fs.rmSync(pki.dir, { recursive: true, force: true })
  fs.rmSync(pki6.dir, { recursive: true, force: true })
})

contract({
  name: "pbft (4 members, mTLS on loopback)",
  layer: () => clusterLayer(pki),
  ttl: Duration.seconds(1),
  shortHistory: () => clusterLayer(pki, { history: 3 }),
})

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
})
