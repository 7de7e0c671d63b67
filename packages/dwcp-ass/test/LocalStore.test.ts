import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Database } from "@novacron/database"
import { Duration, Effect, Layer, Option } from "effect"
import { LocalStore, StateStore } from "../src/index.js"
import { contract } from "./support/contract.js"

contract({
  name: "local (SQLite in memory)",
  layer: () => LocalStore.layer().pipe(Layer.provide(Database.layerSqlite({ path: ":memory:" }))),
  // Not shorter: under a loaded CI machine a starved keepalive fiber would depose a healthy leader.
  ttl: Duration.seconds(1),
  shortHistory: () => LocalStore.layer({ history: 3 }).pipe(Layer.provide(Database.layerSqlite({ path: ":memory:" }))),
})

describe("local mode", () => {
  it.live("state survives a restart on the same file; keys of leases do not; revisions go on", () =>
    Effect.gen(function* () {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ass-local-"))
      const live = () =>
        LocalStore.layer().pipe(Layer.provide(Database.layerSqlite({ path: path.join(dir, "state.db") })))
      const first = yield* Effect.gen(function* () {
        const s = yield* StateStore.StateStore
        yield* s.put("vm/a", "1")
        const l = yield* s.lease(Duration.seconds(30))
        return yield* s.put("node/self", "up", { lease: l })
      }).pipe(Effect.scoped, Effect.provide(live()))
      yield* Effect.gen(function* () {
        const s = yield* StateStore.StateStore
        expect(Option.getOrThrow(yield* s.get("vm/a")).value).toBe("1")
        expect(Option.isNone(yield* s.get("node/self"))).toBe(true)
        expect(yield* s.put("vm/a", "2")).toBeGreaterThan(first)
      }).pipe(Effect.scoped, Effect.provide(live()))
      fs.rmSync(dir, { recursive: true, force: true })
    }),
  )
})
