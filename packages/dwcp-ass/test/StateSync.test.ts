import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Database } from "@novacron/database"
import { Effect, Layer } from "effect"
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

  it.live(
    "pbft: the node's certificate from <data_dir>/tls names it among pbft_members; a list without it is refused",
    () =>
      Effect.gen(function* () {
        const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "novacron-statesync-"))
        yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dataDir, { recursive: true, force: true })))
        const ca = makeCa(path.join(dataDir, "ca"), "cluster-ca")
        const tls = path.join(dataDir, "tls")
        const own = ca.issue(tls, "node-b")
        fs.renameSync(own.cert, path.join(tls, "node.crt"))
        fs.renameSync(own.key, path.join(tls, "node.key"))
        fs.copyFileSync(ca.cert, path.join(tls, "ca.crt"))
        const members = (ids: ReadonlyArray<string>) => ids.map((id, i) => `${id}@127.0.0.1:${7950 + i}`)
        const build = (ids: ReadonlyArray<string>) =>
          StateStore.StateStore.pipe(
            Effect.provide(
              StateSync.layer(
                ConsensusSettings.decode({ algorithm: "pbft", pbft_members: members(ids), pbft_bind: "127.0.0.1:0" }),
                {
                  data_dir: dataDir,
                },
              ).pipe(Layer.provide(Database.layerSqlite({ path: ":memory:" }))),
            ),
          )
        expect(
          StateSync.modeOf(
            ConsensusSettings.decode({ algorithm: "pbft", pbft_members: members(["a", "b", "c", "d"]) }),
          ),
        ).toBe("pbft")
        // listens on any free port (pbft_bind); the other members are not started
        const s = yield* build(["node-a", "node-b", "node-c", "node-d"])
        expect(s.mode).toBe("pbft")
        const stranger = yield* Effect.flip(build(["node-a", "node-x", "node-c", "node-d"]))
        expect(stranger.message).toContain(
          "this node (node-b, its certificate's common name) is not in dwcp.consensus.pbft_members",
        )
      }).pipe(Effect.scoped),
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
