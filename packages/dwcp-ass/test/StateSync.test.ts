import { describe, expect, it } from "@effect/vitest"
import { Database } from "@novacron/database"
import { Effect, Exit, Layer } from "effect"
import { ConsensusSettings, StateStore, StateSync } from "../src/index.js"

describe("StateSync: the store the settings ask for", () => {
  it("no etcd endpoints: local mode; endpoints: Raft mode on etcd", () => {
    expect(StateSync.modeOf(ConsensusSettings.decode({}))).toBe("local")
    expect(StateSync.modeOf(ConsensusSettings.decode({ etcd_endpoints: ["http://10.0.0.5:2379"] }))).toBe("etcd")
  })

  it.effect("local mode runs on the node database", () =>
    Effect.gen(function* () {
      const s = yield* StateStore.StateStore
      expect(s.mode).toBe("local")
    }).pipe(
      Effect.provide(
        StateSync.layer(ConsensusSettings.decode({})).pipe(Layer.provide(Database.layerSqlite({ path: ":memory:" }))),
      ),
    ),
  )

  it.effect("gossip and pbft are refused with ModeNotBuilt naming the key", () =>
    Effect.gen(function* () {
      for (const algorithm of ["gossip", "pbft"] as const) {
        const exit = yield* Effect.exit(
          StateStore.StateStore.pipe(
            Effect.provide(
              StateSync.layer(ConsensusSettings.decode({ algorithm })).pipe(
                Layer.provide(Database.layerSqlite({ path: ":memory:" })),
              ),
            ),
          ),
        )
        expect(Exit.isFailure(exit)).toBe(true)
        if (Exit.isFailure(exit) && exit.cause._tag === "Fail") {
          expect(exit.cause.error._tag).toBe("ModeNotBuilt")
          expect(exit.cause.error.message).toContain(`dwcp.consensus.algorithm = "${algorithm}"`)
        } else expect.fail("expected a ModeNotBuilt failure")
      }
    }),
  )
})
