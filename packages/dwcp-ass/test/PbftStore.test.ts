// PBFT mode: the state API contract against four members over mTLS on loopback.
import * as fs from "node:fs"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Option } from "effect"
import { contract } from "./support/contract.js"
import { clusterLayer, IDS, makePki, startCluster } from "./support/pbftCluster.js"

const pki = makePki(IDS)
afterAll(() => fs.rmSync(pki.dir, { recursive: true, force: true }))

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
})
