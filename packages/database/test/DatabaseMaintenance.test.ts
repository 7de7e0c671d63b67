import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { BackgroundJobs } from "@novacron/init"
import { service, tempDir } from "@novacron/testing"
import BetterSqlite3 from "better-sqlite3"
import { Context, Effect, Layer, TestClock } from "effect"
import * as Database from "../src/Database.js"
import * as DatabaseMaintenance from "../src/DatabaseMaintenance.js"
import { pgSchema, pgUrl, redisPrefix, redisUrl } from "./helpers.js"

const open = <E>(layer: Layer.Layer<Database.Database, E>) =>
  Effect.map(Layer.build(layer), (c) => Context.get(c, Database.Database)).pipe(Effect.orDie)

const havePostgres = await service("PostgreSQL", pgUrl)
const haveRedis = await service("Redis", redisUrl)

describe("Database.maintenance", () => {
  it.scoped("sqlite: PRAGMA optimize and a passive checkpoint move the WAL into the database file", () =>
    Effect.gen(function* () {
      const file = path.join(yield* tempDir, "state.db")
      const db = yield* open(Database.layerSqlite({ path: file }))
      for (let i = 0; i < 200; i++) yield* db.kv.set(`k${i}`, "x".repeat(200))
      const report = yield* db.maintenance
      expect(report.backend).toBe("sqlite")
      expect(report.actions).toEqual(["PRAGMA optimize", "PRAGMA wal_checkpoint(PASSIVE)"])
      expect(report.details).toMatchObject({ busy: false })
      expect(report.details.checkpointed_pages).toBe(report.details.wal_pages)
      // What the checkpoint wrote is in the main file: a reader that ignores the WAL would see it.
      const raw = new BetterSqlite3(file, { readonly: true })
      try {
        expect(raw.pragma("journal_mode", { simple: true })).toBe("wal")
        expect((raw.prepare("SELECT count(*) AS n FROM kv").get() as { n: number }).n).toBe(200)
      } finally {
        raw.close()
      }
    }),
  )

  it.scoped.skipIf(!havePostgres)("postgres: ANALYZE of the schema's tables", () =>
    Effect.gen(function* () {
      const schema = yield* pgSchema
      const db = yield* open(Database.layerPostgres({ url: pgUrl, max: 2, schema }))
      yield* db.kv.set("a", "1")
      const report = yield* db.maintenance
      expect(report).toEqual({
        backend: "postgres",
        actions: ["ANALYZE nodes, tasks, checkpoints, kv"],
        details: { schema },
      })
    }),
  )

  it.scoped.skipIf(!haveRedis)("redis: nothing to do, said so", () =>
    Effect.gen(function* () {
      const prefix = yield* redisPrefix
      const db = yield* open(Database.layerRedis({ url: redisUrl, prefix }))
      expect((yield* db.maintenance).actions).toEqual([])
    }),
  )
})

describe("DatabaseMaintenance component", () => {
  it.scoped("runs the upkeep on its interval as a background job, and a failing run does not stop it", () =>
    Effect.gen(function* () {
      const real = yield* open(Database.layerSqlite({ path: ":memory:" }))
      let runs = 0
      let failNext = true
      const db: Database.Repository = {
        ...real,
        maintenance: Effect.suspend(() => {
          runs++
          if (failNext) {
            failNext = false
            return real.health.pipe(Effect.zipRight(Effect.die(new Error("disk I/O error"))))
          }
          return real.maintenance
        }),
      }
      const jobs = yield* BackgroundJobs.make
      yield* Layer.build(DatabaseMaintenance.component("1 hour").layer).pipe(
        Effect.provideService(Database.Database, db),
        Effect.provideService(BackgroundJobs.BackgroundJobs, jobs),
      )
      expect(runs).toBe(0)
      yield* TestClock.adjust("1 hour")
      yield* TestClock.adjust("1 hour")
      expect(runs).toBe(2)
      const [status] = yield* jobs.status
      expect(status).toMatchObject({ name: "database-maintenance", runs: 2, failures: 1, consecutiveFailures: 0 })
      // The last error stays visible in /status after the job recovered.
      expect(status?.lastError).toBe("disk I/O error")
    }),
  )
})
