import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { service, tempDir } from "@novacron/testing"
import BetterSqlite3 from "better-sqlite3"
import { Context, Effect, Either, Exit, Layer } from "effect"
import { Redis } from "ioredis"
import postgres from "postgres"
import * as Database from "../src/Database.js"
import * as Pg from "../src/internal/postgres.js"
import * as Migration from "../src/Migration.js"
import * as StorageSettings from "../src/StorageSettings.js"
import { pgSchema, pgUrl, redisPrefix, redisUrl, unique } from "./helpers.js"

const pgUp = await service("PostgreSQL", pgUrl)
const redisUp = await service("Redis", redisUrl)

const v1: Migration.Migration = { version: 1, name: "first", up: "CREATE TABLE a (x INTEGER);" }
const v2: Migration.Migration = { version: 2, name: "second", up: "CREATE TABLE b (y INTEGER);" }
const edited: Migration.Migration = { ...v1, up: "CREATE TABLE a (x INTEGER, z INTEGER);" }
const applied = (m: Migration.Migration): Migration.Applied => ({
  version: m.version,
  name: m.name,
  checksum: Migration.checksum(m),
})

/** The failure of building a layer, or "ok". */
const buildFailure = <E>(layer: Layer.Layer<Database.Database, E>) =>
  Effect.scoped(Layer.build(layer)).pipe(
    Effect.exit,
    Effect.map((exit) => (Exit.isSuccess(exit) ? "ok" : Exit.isFailure(exit) ? exit.cause : exit)),
  )

describe("Migration.plan", () => {
  it("returns pending migrations in version order", () => {
    expect(Migration.plan([v2, v1], [])).toEqual(Either.right([v1, v2]))
    expect(Migration.plan([v2, v1], [applied(v1)])).toEqual(Either.right([v2]))
    expect(Migration.plan([v1, v2], [applied(v1), applied(v2)])).toEqual(Either.right([]))
  })

  it("refuses an applied migration whose text changed, naming it", () => {
    const r = Migration.plan([edited, v2], [applied(v1)])
    expect(Either.isLeft(r)).toBe(true)
    const e = Either.getLeft(r).pipe((o) => (o._tag === "Some" ? o.value : undefined))!
    expect(e.reason).toBe("checksum-mismatch")
    expect(e.version).toBe(1)
    expect(e.message).toMatch(/migration 1 "first" was edited after it was applied/)
  })

  it("refuses unknown applied versions, gaps below the applied ones and duplicate versions", () => {
    const reason = (r: ReturnType<typeof Migration.plan>) => (Either.isLeft(r) ? r.left.reason : "ok")
    expect(reason(Migration.plan([v1], [applied(v1), applied(v2)]))).toBe("unknown-applied")
    expect(reason(Migration.plan([v1, v2], [applied(v2)]))).toBe("out-of-order")
    expect(reason(Migration.plan([v1, { ...v2, version: 1 }], []))).toBe("invalid-list")
  })
})

describe("sqlite", () => {
  it.scoped("the embedded default is <data_dir>/novacron.db in WAL mode", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const dataDir = path.join(dir, "data")
      yield* Effect.scoped(
        Effect.gen(function* () {
          const db = Context.get(
            yield* Layer.build(Database.layer(StorageSettings.defaults, { data_dir: dataDir })),
            Database.Database,
          )
          yield* db.kv.set("k", "v")
          const h = yield* db.health
          expect(h.details.journal_mode).toBe("wal")
          expect(fs.existsSync(path.join(dataDir, "novacron.db-wal"))).toBe(true)
        }),
      )
      const raw = new BetterSqlite3(path.join(dataDir, "novacron.db"), { readonly: true })
      expect(raw.pragma("journal_mode", { simple: true })).toBe("wal")
      expect(raw.prepare("SELECT value FROM kv WHERE key = 'k'").get()).toEqual({ value: "v" })
      expect(raw.prepare("SELECT version, name FROM novacron_migrations").all()).toEqual([
        { version: 1, name: "initial" },
      ])
      raw.close()
    }),
  )

  it.scoped("an edited applied migration is refused at the next open, and nothing else is applied", () =>
    Effect.gen(function* () {
      const file = path.join(yield* tempDir, "m.db")
      expect(yield* buildFailure(Database.layerSqlite({ path: file, migrations: [v1] }))).toBe("ok")
      const cause = yield* buildFailure(Database.layerSqlite({ path: file, migrations: [edited, v2] }))
      expect(String(cause)).toMatch(/MigrationError.*migration 1 "first" was edited after it was applied/s)
      const raw = new BetterSqlite3(file, { readonly: true })
      expect(raw.prepare("SELECT version FROM novacron_migrations").all()).toEqual([{ version: 1 }])
      expect(raw.prepare("SELECT name FROM sqlite_master WHERE name = 'b'").all()).toEqual([])
      raw.close()
      // The original text still opens, and applies v2.
      expect(yield* buildFailure(Database.layerSqlite({ path: file, migrations: [v1, v2] }))).toBe("ok")
    }),
  )

  it.scoped("a failing migration rolls back with its record", () =>
    Effect.gen(function* () {
      const file = path.join(yield* tempDir, "f.db")
      const bad: Migration.Migration = { version: 2, name: "bad", up: "CREATE TABLE c (x); SELECT * FROM nope;" }
      const cause = yield* buildFailure(Database.layerSqlite({ path: file, migrations: [v1, bad] }))
      expect(String(cause)).toMatch(/DatabaseError.*no such table: nope/s)
      const raw = new BetterSqlite3(file, { readonly: true })
      expect(raw.prepare("SELECT count(*) AS n FROM novacron_migrations").get()).toEqual({ n: 0 })
      expect(raw.prepare("SELECT name FROM sqlite_master WHERE name IN ('a', 'c')").all()).toEqual([])
      raw.close()
    }),
  )
})

describe.skipIf(!pgUp)("postgres", () => {
  const withSql = <A>(f: (sql: postgres.Sql) => Promise<A>) =>
    Effect.acquireUseRelease(
      Effect.sync(() => postgres(pgUrl, { max: 2, onnotice: () => {} })),
      (sql) => Effect.promise(() => f(sql)),
      (sql) => Effect.promise(() => sql.end()),
    )

  it.scoped("an edited applied migration is refused with a clear error", () =>
    Effect.gen(function* () {
      const schema = yield* pgSchema
      const opts = { url: pgUrl, max: 2, schema }
      expect(yield* buildFailure(Database.layerPostgres({ ...opts, migrations: [v1] }))).toBe("ok")
      const cause = yield* buildFailure(Database.layerPostgres({ ...opts, migrations: [edited, v2] }))
      expect(String(cause)).toMatch(/MigrationError.*migration 1 "first" was edited after it was applied/s)
      const rows = yield* withSql((sql) => sql.unsafe(`SELECT version, checksum FROM "${schema}".novacron_migrations`))
      expect(rows.map((r) => [r.version, r.checksum])).toEqual([[1, Migration.checksum(v1)]])
    }),
  )

  // The migration is not idempotent (CREATE TABLE without IF NOT EXISTS) and slow, so two
  // unserialized migrators both see it pending and one fails; serialized, the second finds it applied.
  const slow: Migration.Migration = {
    version: 1,
    name: "slow",
    up: "CREATE TABLE s (x INTEGER); SELECT pg_sleep(0.3);",
  }
  const twoMigrators = (lock: boolean) =>
    Effect.gen(function* () {
      const schema = yield* pgSchema
      const sqlA = yield* Pg.acquirePool({ url: pgUrl, max: 1, schema })
      const sqlB = yield* Pg.acquirePool({ url: pgUrl, max: 1, schema })
      const results = yield* Effect.all(
        [Pg.migrate(sqlA, schema, [slow], { lock }), Pg.migrate(sqlB, schema, [slow], { lock })].map(Effect.either),
        { concurrency: 2 },
      )
      const rows = yield* withSql((sql) => sql.unsafe(`SELECT version FROM "${schema}".novacron_migrations`))
      return { results, recorded: rows.length }
    })

  it.scoped("two concurrent migrators serialize on the advisory lock: one applies, the other finds it done", () =>
    Effect.gen(function* () {
      const { results, recorded } = yield* twoMigrators(true)
      expect(results.map((r) => (Either.isRight(r) ? r.right : "failed")).sort()).toEqual([0, 1])
      expect(recorded).toBe(1)
    }),
  )

  it.scoped("control: without the lock the same two migrators collide", () =>
    Effect.gen(function* () {
      const { results } = yield* twoMigrators(false)
      expect(results.filter(Either.isLeft).length).toBe(1)
    }),
  )

  it.scoped("the pool never holds more than storage.max_connections sessions", () =>
    Effect.gen(function* () {
      const app = unique("novacron_pool")
      const sql = yield* Pg.acquirePool({ url: pgUrl, max: 3, applicationName: app })
      let peak = 0
      let running = true
      const sample = withSql(async (probe) => {
        while (running) {
          const [row] = await probe`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = ${app}`
          peak = Math.max(peak, row!.n as number)
          await new Promise((r) => setTimeout(r, 20))
        }
      })
      const sampler = yield* Effect.fork(sample)
      const done = yield* Effect.promise(() =>
        Promise.all(
          Array.from({ length: 12 }, (_, i) => sql`SELECT pg_sleep(0.15), ${i}::int AS i`.then((r) => r[0]!.i)),
        ),
      )
      running = false
      yield* sampler.await
      expect(done).toEqual(Array.from({ length: 12 }, (_, i) => i))
      expect(peak).toBe(3)
    }),
  )

  it.scoped("closing the scope ends every session of the pool", () =>
    Effect.gen(function* () {
      const schema = yield* pgSchema
      const app = unique("novacron_close")
      yield* Effect.scoped(
        Effect.gen(function* () {
          const db = Context.get(
            yield* Layer.build(Database.layerPostgres({ url: pgUrl, max: 3, schema, applicationName: app })),
            Database.Database,
          )
          yield* Effect.all([db.kv.set("a", "1"), db.kv.set("b", "2"), db.kv.list("")], { concurrency: 3 })
        }),
      )
      const [row] = yield* withSql(
        (sql) => sql`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = ${app}`,
      )
      expect(row!.n).toBe(0)
    }),
  )
})

describe.skipIf(!redisUp)("redis", () => {
  const r1: Migration.Migration = {
    version: 1,
    name: "seed",
    up: "redis.call('SET', ARGV[1] .. 'seeded', '1') return 1",
  }

  it.scoped("migrations run as Lua under the prefix; an edited one is refused", () =>
    Effect.gen(function* () {
      const prefix = yield* redisPrefix
      expect(yield* buildFailure(Database.layerRedis({ url: redisUrl, prefix, migrations: [r1] }))).toBe("ok")
      const cause = yield* buildFailure(
        Database.layerRedis({ url: redisUrl, prefix, migrations: [{ ...r1, up: `${r1.up} ` }] }),
      )
      expect(String(cause)).toMatch(/MigrationError.*migration 1 "seed" was edited/s)
      const client = new Redis(redisUrl)
      const [seeded, lock] = yield* Effect.promise(() =>
        Promise.all([client.get(`${prefix}seeded`), client.exists(`${prefix}migrations:lock`)]),
      )
      yield* Effect.promise(() => client.quit())
      expect([seeded, lock]).toEqual(["1", 0])
    }),
  )

  it.live("concurrent migrators apply a migration once (lock retried on the real clock)", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const prefix = yield* redisPrefix
        const counting: Migration.Migration = {
          version: 1,
          name: "count",
          up: "return redis.call('INCR', ARGV[1] .. 'runs')",
        }
        const exits = yield* Effect.all(
          Array.from({ length: 4 }, () =>
            buildFailure(Database.layerRedis({ url: redisUrl, prefix, migrations: [counting] })),
          ),
          { concurrency: 4 },
        )
        expect(exits).toEqual(["ok", "ok", "ok", "ok"])
        const client = new Redis(redisUrl)
        const runs = yield* Effect.promise(() => client.get(`${prefix}runs`))
        yield* Effect.promise(() => client.quit())
        expect(runs).toBe("1")
      }),
    ),
  )
})
