import { describe, expect, it } from "@effect/vitest"
import { freePort, haveRedisServer, redisOn, stopRedis } from "@novacron/testing"
import { Effect, Exit, Scope } from "effect"
import type { Redis } from "ioredis"
import { RedisConnection } from "../src/index.js"

const delays = (options?: RedisConnection.ReconnectOptions) => {
  const at = RedisConnection.delayOf(RedisConnection.reconnect(options))
  return [1, 2, 3, 4, 5, 6, 7, 100].map(at)
}

/** Listens from now on for the client's next `event`; the returned Effect waits for it. */
const next = (client: Redis, event: string) => {
  const seen = new Promise<void>((resolve) => void client.once(event, () => resolve()))
  return Effect.promise(() => seen)
}

describe("the reconnect schedule", () => {
  it("doubles from 200 ms and stays at 5 s", () => {
    expect(delays()).toEqual([200, 400, 800, 1600, 3200, 5000, 5000, 5000])
  })

  it("takes its bounds from the options", () => {
    expect(delays({ base: "10 millis", max: "50 millis" })).toEqual([10, 20, 40, 50, 50, 50, 50, 50])
  })
})

describe("open", () => {
  it.live("fails fast on a port nothing listens on, with the password redacted", () =>
    Effect.gen(function* () {
      const port = yield* freePort
      const url = `redis://admin:s3cret@127.0.0.1:${port}`
      const error = yield* Effect.flip(RedisConnection.open(url))
      expect(error._tag).toBe("RedisUnavailable")
      expect(error.url).toBe(url)
      expect(error.message).toMatch(
        new RegExp(`^redis at redis://\\*\\*\\*@127\\.0\\.0\\.1:${port} unreachable: connect ECONNREFUSED`),
      )
      expect(error.message).not.toContain("s3cret")
    }),
  )

  it.effect("an empty or malformed URL is RedisUnavailable, not a defect", () =>
    Effect.gen(function* () {
      expect((yield* Effect.flip(RedisConnection.open(""))).message).toBe("redis at  unreachable: no URL configured")
      expect((yield* Effect.flip(RedisConnection.open("redis://127.0.0.1:notaport")))._tag).toBe("RedisUnavailable")
    }),
  )
})

describe.skipIf(!(await haveRedisServer()))("against a private redis-server", () => {
  it.scopedLive("a dropped connection is re-established on the schedule; the scope closes it", () =>
    Effect.gen(function* () {
      const port = yield* freePort
      const server = yield* redisOn(port)
      const scope = yield* Scope.make()
      const client = yield* Scope.extend(
        RedisConnection.connect(`redis://127.0.0.1:${port}`, { reconnect: { base: "20 millis", max: "100 millis" } }),
        scope,
      )
      expect(yield* Effect.promise(() => client.ping())).toBe("PONG")
      const reconnecting = next(client, "reconnecting")
      yield* stopRedis(server)
      yield* reconnecting
      const ready = next(client, "ready")
      yield* redisOn(port)
      yield* ready
      expect(yield* Effect.promise(() => client.set("k", "v"))).toBe("OK")
      yield* Scope.close(scope, Exit.void)
      expect(client.status).toBe("end")
    }),
  )

  it.scopedLive("closing while it waits to reconnect returns at once and stops reconnecting", () =>
    Effect.gen(function* () {
      const port = yield* freePort
      const server = yield* redisOn(port)
      const scope = yield* Scope.make()
      const client = yield* Scope.extend(RedisConnection.connect(`redis://127.0.0.1:${port}`), scope)
      const reconnecting = next(client, "reconnecting")
      yield* stopRedis(server)
      yield* reconnecting
      yield* Scope.close(scope, Exit.void)
      // Back within the first delays (200 ms, 400 ms): a client still reconnecting would be ready by then.
      yield* redisOn(port)
      yield* Effect.sleep("1 second")
      expect(client.status).not.toBe("ready")
    }),
  )

  it.scopedLive('with reconnect "caller", a drop ends the client so a supervisor sees it', () =>
    Effect.gen(function* () {
      const port = yield* freePort
      const server = yield* redisOn(port)
      const client = yield* RedisConnection.connect(`redis://127.0.0.1:${port}`, { reconnect: "caller" })
      const ended = next(client, "end")
      yield* stopRedis(server)
      yield* ended
      expect(client.status).toBe("end")
    }),
  )

  it.scopedLive("layer provides a connected client", () =>
    Effect.gen(function* () {
      const port = yield* freePort
      yield* redisOn(port)
      const pong = yield* Effect.flatMap(RedisConnection.RedisClient, (c) => Effect.promise(() => c.ping())).pipe(
        Effect.provide(RedisConnection.layer(`redis://127.0.0.1:${port}`)),
      )
      expect(pong).toBe("PONG")
    }),
  )
})
