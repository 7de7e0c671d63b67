import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Database } from "@novacron/database"
import { Effect, Exit, Layer } from "effect"
import { ConsensusSettings, StateStore, StateSync } from "../src/index.js"
import { makeCa } from "./support/certs.js"

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

  it.effect("pbft is refused with ModeNotBuilt naming the key", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(
        StateStore.StateStore.pipe(
          Effect.provide(
            StateSync.layer(ConsensusSettings.decode({ algorithm: "pbft" })).pipe(
              Layer.provide(Database.layerSqlite({ path: ":memory:" })),
            ),
          ),
        ),
      )
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit) && exit.cause._tag === "Fail") {
        expect(exit.cause.error._tag).toBe("ModeNotBuilt")
        expect(exit.cause.error.message).toContain(`dwcp.consensus.algorithm = "pbft"`)
      } else expect.fail("expected a ModeNotBuilt failure")
    }),
  )

  it.live("gossip: the node's own certificate from <data_dir>/tls, a wildcard bind needs gossip_advertise", () =>
    Effect.gen(function* () {
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "novacron-statesync-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dataDir, { recursive: true, force: true })))
      const ca = makeCa(path.join(dataDir, "ca"), "cluster-ca")
      const tls = path.join(dataDir, "tls")
      ca.issue(tls, "node")
      fs.copyFileSync(ca.cert, path.join(tls, "ca.crt"))
      const build = (raw: Record<string, unknown>) =>
        StateStore.StateStore.pipe(
          Effect.provide(
            StateSync.layer(ConsensusSettings.decode({ algorithm: "gossip", ...raw }), { data_dir: dataDir }).pipe(
              Layer.provide(Database.layerSqlite({ path: ":memory:" })),
            ),
          ),
        )
      expect(StateSync.modeOf(ConsensusSettings.decode({ algorithm: "gossip" }))).toBe("gossip")
      const s = yield* build({ gossip_bind: "127.0.0.1:0" })
      expect(s.mode).toBe("gossip")
      const wild = yield* Effect.flip(build({}))
      expect(wild.message).toContain("set dwcp.consensus.gossip_advertise")
      expect(() => ConsensusSettings.decode({ gossip_seeds: ["10.0.0.5"] })).toThrow(/expected host:port/)
    }).pipe(Effect.scoped),
  )
})
