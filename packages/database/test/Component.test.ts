import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Boot, Component } from "@novacron/init"
import { Effect, Layer, Schema } from "effect"
import * as Database from "../src/Database.js"
import * as DatabaseComponent from "../src/DatabaseComponent.js"
import type * as Migration from "../src/Migration.js"
import * as StorageSettings from "../src/StorageSettings.js"
import { haveRedisServer, pgSchema, pgUrl, privateRedis, redisPrefix, redisUrl, service, tempDir } from "./helpers.js"

const pgUp = await service("PostgreSQL", pgUrl)
const redisUp = await service("Redis", redisUrl)

// The database only names "security" as a dependency; a stand-in satisfies the graph.
const security = Component.make({ name: "security", phase: "core", criticality: "CRITICAL", layer: Layer.empty })
const settings = (raw: Record<string, unknown>) => Schema.decodeUnknownSync(StorageSettings.StorageSettings)(raw)

const bootHealthy = (component: ReturnType<typeof DatabaseComponent.component>) =>
  Effect.scoped(
    Effect.gen(function* () {
      const node = yield* Boot.boot([security, component])
      const health = yield* node.health
      return health.components.find((c) => c.name === "database")
    }),
  )

describe("database under the boot kernel", () => {
  it.live("boots on the embedded SQLite default", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const dir = yield* tempDir
        const c = DatabaseComponent.component(StorageSettings.defaults, { data_dir: dir })
        expect([c.name, c.phase, c.criticality, c.dependencies]).toEqual(["database", "core", "CRITICAL", ["security"]])
        const db = yield* bootHealthy(c)
        expect(db).toMatchObject({
          health: "healthy",
          details: { backend: "sqlite", path: path.join(dir, "novacron.db") },
        })
      }),
    ),
  )

  it.live.skipIf(!pgUp)("boots on PostgreSQL", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const schema = yield* pgSchema
        const c = DatabaseComponent.component(
          settings({ backend: "postgres", postgres_url: pgUrl }),
          { data_dir: "" },
          { schema },
        )
        expect(yield* bootHealthy(c)).toMatchObject({ health: "healthy", details: { backend: "postgres", schema } })
      }),
    ),
  )

  it.live.skipIf(!redisUp)("boots on Redis", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const prefix = yield* redisPrefix
        const c = DatabaseComponent.component(
          settings({ backend: "redis", redis_url: redisUrl }),
          { data_dir: "" },
          { prefix },
        )
        expect(yield* bootHealthy(c)).toMatchObject({ health: "healthy", details: { backend: "redis", prefix } })
      }),
    ),
  )

  it.live("an edited applied migration halts the boot with the migration named in the error", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const file = path.join(yield* tempDir, "state.db")
        const m = { version: 1, name: "first", up: "CREATE TABLE a (x INTEGER);" }
        const db = (migrations: ReadonlyArray<Migration.Migration>) =>
          Component.make({
            ...DatabaseComponent.component(StorageSettings.defaults, { data_dir: "" }),
            layer: Database.layerSqlite({ path: file, migrations }),
          })
        yield* Effect.scoped(Boot.boot([security, db([m])]))
        const failure = yield* Effect.flip(
          Effect.scoped(Boot.boot([security, db([{ ...m, up: "CREATE TABLE a (y TEXT);" }])])),
        )
        expect(failure._tag).toBe("ComponentFailed")
        expect(failure.message).toMatch(/database/)
        expect(failure.message).toMatch(/migration 1 "first" was edited after it was applied/)
      }),
    ),
  )

  it.live("an unreachable store halts the boot (CRITICAL), naming the database", () =>
    Effect.gen(function* () {
      const c = DatabaseComponent.component(
        settings({ backend: "postgres", postgres_url: "postgres://postgres@127.0.0.1:1/test" }),
        { data_dir: "" },
      )
      const result = yield* Effect.flip(Effect.scoped(Boot.boot([security, c])))
      expect(result._tag).toBe("ComponentFailed")
      expect(result.message).toMatch(/database/)
    }),
  )

  it.live.skipIf(!redisUp || !haveRedisServer())(
    "the health check turns unhealthy while the store is down and healthy once it is back",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const redis = yield* privateRedis
          const first = yield* redis.start
          const c = DatabaseComponent.component(settings({ backend: "redis", redis_url: redis.url }), { data_dir: "" })
          const ctx = yield* Layer.build(c.layer)
          const check = Effect.provide(DatabaseComponent.healthCheck, ctx)
          expect(yield* check).toMatchObject({ status: "healthy" })
          yield* redis.stop(first)
          const down = yield* check
          expect(down.status).toBe("unhealthy")
          expect(down.message).toMatch(/redis: health failed/)
          yield* redis.start
          // ioredis reconnects on its own (every 200 ms at first, at most 2 s).
          let back = yield* check
          for (let i = 0; i < 100 && back.status !== "healthy"; i++) {
            yield* Effect.sleep("100 millis")
            back = yield* check
          }
          expect(back.status).toBe("healthy")
        }),
      ),
  )
})
