import * as net from "node:net"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Boot, Component } from "@novacron/init"
import { freePort, haveRedisServer, redisOn, service, stopRedis, tempDir } from "@novacron/testing"
import { Effect, Layer, Logger, Ref, Schema } from "effect"
import * as Database from "../src/Database.js"
import * as DatabaseComponent from "../src/DatabaseComponent.js"
import type * as Migration from "../src/Migration.js"
import * as StorageSettings from "../src/StorageSettings.js"
import { pgSchema, pgUrl, redisPrefix, redisUrl } from "./helpers.js"

const pgUp = await service("PostgreSQL", pgUrl)
const redisUp = await service("Redis", redisUrl)
const redisServer = await haveRedisServer()

// The host's boot table places the database; these tests place it as the node does.
const placed = <A, E, R>(spec: Component.Spec<A, E, R>) =>
  Component.place(spec, { phase: "core", criticality: "CRITICAL" })
const settings = (raw: Record<string, unknown>) => Schema.decodeUnknownSync(StorageSettings.StorageSettings)(raw)

/** Collects the effect's log lines as `LEVEL message`. */
const capture =
  (into: Ref.Ref<ReadonlyArray<string>>) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.provide(
      effect,
      Logger.replace(
        Logger.defaultLogger,
        Logger.make(({ logLevel, message }) => {
          const text = Array.isArray(message) ? message.join(" ") : String(message)
          Effect.runSync(Ref.update(into, (l) => [...l, `${logLevel.label} ${text}`]))
        }),
      ),
    )

const bootHealthy = (component: ReturnType<typeof DatabaseComponent.component>) =>
  Effect.scoped(
    Effect.gen(function* () {
      const node = yield* Boot.boot([placed(component)])
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
        expect([c.name, "phase" in c, "dependencies" in c]).toEqual(["database", false, false])
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
          placed({
            ...DatabaseComponent.component(StorageSettings.defaults, { data_dir: "" }),
            layer: Database.layerSqlite({ path: file, migrations }),
          })
        yield* Effect.scoped(Boot.boot([db([m])]))
        const failure = yield* Effect.flip(Effect.scoped(Boot.boot([db([{ ...m, up: "CREATE TABLE a (y TEXT);" }])])))
        expect(failure._tag).toBe("ComponentFailed")
        expect(failure.message).toMatch(/database/)
        expect(failure.message).toMatch(/migration 1 "first" was edited after it was applied/)
      }),
    ),
  )

  it.live("an unreachable store halts the boot (CRITICAL) once its retry window is over, naming the attempts", () =>
    Effect.gen(function* () {
      const c = DatabaseComponent.component(
        settings({ backend: "postgres", postgres_url: "postgres://postgres@127.0.0.1:1/test" }),
        { data_dir: "" },
        { connectRetry: "700 millis" },
      )
      const logs = yield* Ref.make<ReadonlyArray<string>>([])
      const result = yield* Effect.flip(Effect.scoped(Boot.boot([placed(c)]))).pipe(capture(logs))
      expect(result._tag).toBe("ComponentFailed")
      expect(result.message).toMatch(/database/)
      expect(result.message).toMatch(/postgres: connect \(\d+ attempts over [0-9.]+ s\) failed: .*ECONNREFUSED/)
      const retries = (yield* Ref.get(logs)).filter((l) => l.startsWith("WARN postgres at 127.0.0.1:1 not reachable"))
      expect(retries.length).toBeGreaterThanOrEqual(2)
    }),
  )

  it.live.skipIf(!pgUp)(
    "a PostgreSQL that starts listening a second after the boot is waited for, and the wait is logged",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const schema = yield* pgSchema
          const upstream = new URL(pgUrl)
          // A port nothing listens on (refused), where a proxy to the real server appears after ~1 s.
          const port = yield* freePort
          yield* Effect.acquireRelease(
            Effect.sync(() => {
              const sockets = new Set<net.Socket>()
              const proxy = net.createServer((client) => {
                const server = net.connect(Number(upstream.port || 5432), upstream.hostname)
                for (const s of [client, server]) {
                  sockets.add(s)
                  s.on("error", () => {})
                  s.on("close", () => sockets.delete(s))
                }
                client.pipe(server).pipe(client)
              })
              const timer = setTimeout(() => proxy.listen(port, "127.0.0.1"), 1000)
              return { proxy, timer, sockets }
            }),
            ({ proxy, timer, sockets }) =>
              Effect.async<void>((resume) => {
                clearTimeout(timer)
                for (const s of sockets) s.destroy()
                if (proxy.listening) proxy.close(() => resume(Effect.void))
                else resume(Effect.void)
              }),
          )
          const proxied = new URL(pgUrl)
          proxied.hostname = "127.0.0.1"
          proxied.port = String(port)
          const c = DatabaseComponent.component(
            settings({ backend: "postgres", postgres_url: proxied.toString() }),
            { data_dir: "" },
            { schema, connectRetry: "30 seconds" },
          )
          const logs = yield* Ref.make<ReadonlyArray<string>>([])
          const db = yield* bootHealthy(c).pipe(capture(logs))
          expect(db).toMatchObject({ health: "healthy", details: { backend: "postgres", schema } })
          const lines = yield* Ref.get(logs)
          expect(
            lines.find((l) => l.startsWith(`WARN postgres at 127.0.0.1:${port} not reachable (ECONNREFUSED)`)),
          ).toBeDefined()
          expect(
            lines.find((l) => new RegExp(`^INFO postgres at 127.0.0.1:${port} reachable after \\d+ attempts`).test(l)),
          ).toBeDefined()
        }),
      ),
  )

  it.live.skipIf(!redisUp || !redisServer)(
    "the health check turns unhealthy while the store is down and healthy once it is back",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const port = yield* freePort
          const first = yield* redisOn(port)
          const c = DatabaseComponent.component(
            settings({ backend: "redis", redis_url: `redis://127.0.0.1:${port}` }),
            {
              data_dir: "",
            },
          )
          const ctx = yield* Layer.build(c.layer)
          const check = Effect.provide(DatabaseComponent.healthCheck, ctx)
          expect(yield* check).toMatchObject({ status: "healthy" })
          yield* stopRedis(first)
          const down = yield* check
          expect(down.status).toBe("unhealthy")
          expect(down.message).toMatch(/redis: health failed/)
          yield* redisOn(port)
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
