import { describe, expect, it } from "@effect/vitest"
import { freePort, haveRedisServer, privateRedis, redisOn, stopRedis } from "@novacron/testing"
import { Context, Effect, Exit, Fiber, Layer, Option, Stream, SubscriptionRef, TestClock } from "effect"
import * as Cache from "../src/Cache.js"
import * as CacheComponent from "../src/CacheComponent.js"
import * as CacheSettings from "../src/CacheSettings.js"
import { eventually, namespace, refusingServer } from "./helpers.js"

const settings = (raw: Record<string, unknown> = {}) => CacheSettings.decode(raw)

/** Builds a cache layer in the test's scope. */
const build = <E>(layer: Layer.Layer<Cache.Cache, E>) =>
  Effect.map(Layer.build(layer), (ctx) => Context.get(ctx, Cache.Cache))

/** Waits (real time) until the cache reports `status`. */
const awaitStatus = (cache: Cache.CacheService, status: Cache.Status) =>
  cache.statusRef.changes.pipe(
    Stream.filter((s) => s === status),
    Stream.runHead,
    Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error(`status never became ${status}`) }),
    Effect.orDie,
  )

const fast = { reconnectBase: "20 millis", reconnectMax: "100 millis" } as const

describe("in-memory level", () => {
  it.scoped("bounded by cache_max_entries, least recently used first", () =>
    Effect.gen(function* () {
      const cache = yield* build(Cache.layer(settings({ cache_max_entries: 3 })))
      expect(yield* cache.status).toBe("memory-only")
      for (const k of ["a", "b", "c"]) yield* cache.set(k, k.toUpperCase())
      expect(yield* cache.get("a")).toEqual(Option.some("A")) // a is now the most recent
      yield* cache.set("d", "D")
      expect(yield* cache.get("b")).toEqual(Option.none())
      expect(yield* Effect.all(["a", "c", "d"].map(cache.get))).toEqual(["A", "C", "D"].map(Option.some))
      expect((yield* cache.stats).localEntries).toBe(3)
    }),
  )

  it.scoped("entries expire after cache_ttl on the Effect clock; a per-entry ttl overrides it", () =>
    Effect.gen(function* () {
      const cache = yield* build(Cache.layer(settings({ cache_ttl: "10s" })))
      yield* cache.set("long", "1")
      yield* cache.set("short", "2", "2 seconds")
      yield* TestClock.adjust("1999 millis")
      expect(yield* cache.get("short")).toEqual(Option.some("2"))
      yield* TestClock.adjust("2 millis")
      expect(yield* cache.get("short")).toEqual(Option.none())
      yield* TestClock.adjust("7998 millis")
      expect(yield* cache.get("long")).toEqual(Option.some("1"))
      yield* TestClock.adjust("2 millis")
      expect(yield* cache.get("long")).toEqual(Option.none())
    }),
  )

  it.scoped("getOrSet computes once", () =>
    Effect.gen(function* () {
      const cache = yield* build(Cache.layer(settings()))
      let calls = 0
      const compute = Effect.sync(() => `v${++calls}`)
      expect(yield* cache.getOrSet("k", compute)).toBe("v1")
      expect(yield* cache.getOrSet("k", compute)).toBe("v1")
      yield* cache.invalidate("k")
      expect(yield* cache.getOrSet("k", compute)).toBe("v2")
    }),
  )
})

describe.skipIf(!(await haveRedisServer()))("shared level and coherency (private redis-server)", () => {
  it.live("after a write or invalidation on A returns, B never serves the old value", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const redis = yield* privateRedis
        const ns = namespace()
        const s = settings({ cache_redis_url: redis.url })
        const a = yield* build(Cache.layerStrict(s, { namespace: ns }))
        const b = yield* build(Cache.layerStrict(s, { namespace: ns }))
        expect(yield* a.status).toBe("connected")

        yield* a.set("vm", "v0")
        expect(yield* b.get("vm")).toEqual(Option.some("v0"))
        expect(b.peekLocal("vm")).toEqual(Option.some("v0"))
        // An unchanged entry is served from B's memory (validated, no payload fetched).
        const before = yield* b.stats
        expect(yield* b.get("vm")).toEqual(Option.some("v0"))
        expect((yield* b.stats).localHits).toBe(before.localHits + 1)

        for (let i = 1; i <= 200; i++) {
          yield* a.set("vm", `v${i}`)
          expect(yield* b.get("vm")).toEqual(Option.some(`v${i}`))
          if (i % 50 === 0) {
            yield* a.invalidate("vm")
            expect(yield* b.get("vm")).toEqual(Option.none())
          }
        }
        // And the other way round.
        yield* b.set("vm", "from-b")
        expect(yield* a.get("vm")).toEqual(Option.some("from-b"))
      }),
    ),
  )

  it.live("pub/sub drops the other node's local copy without any read", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const redis = yield* privateRedis
        const ns = namespace()
        const s = settings({ cache_redis_url: redis.url })
        const a = yield* build(Cache.layerStrict(s, { namespace: ns }))
        const b = yield* build(Cache.layerStrict(s, { namespace: ns }))
        yield* a.set("k1", "old")
        yield* a.set("k2", "old")
        yield* b.get("k1")
        yield* b.get("k2")
        expect([b.peekLocal("k1"), b.peekLocal("k2")]).toEqual([Option.some("old"), Option.some("old")])
        yield* a.set("k1", "new")
        yield* a.invalidate("k2")
        yield* eventually(() => Option.isNone(b.peekLocal("k1")) && Option.isNone(b.peekLocal("k2")))
        expect((yield* b.stats).remoteInvalidations).toBe(2)
        // A's own publications do not evict A's fresh copy.
        expect(a.peekLocal("k1")).toEqual(Option.some("new"))
      }),
    ),
  )

  it.live("redis killed: degraded on the in-memory level; restarted: recovery reported", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const port = yield* freePort
        const url = `redis://127.0.0.1:${port}`
        const first = yield* redisOn(port)
        const cache = yield* build(
          Cache.layerStrict(settings({ cache_redis_url: url }), { ...fast, namespace: namespace() }),
        )
        const health = () => Effect.provideService(CacheComponent.healthCheck, Cache.Cache, cache)
        yield* cache.set("k", "v")
        expect((yield* health()).status).toBe("healthy")

        yield* stopRedis(first)
        yield* awaitStatus(cache, "degraded")
        const h = yield* health()
        expect(h.status).toBe("degraded")
        expect(h.message).toMatch(/redis unreachable since .*; serving the in-memory level/)
        // Callers keep working on the local level.
        expect(yield* cache.get("k")).toEqual(Option.some("v"))
        yield* cache.set("offline", "1")
        expect(yield* cache.get("offline")).toEqual(Option.some("1"))

        yield* redisOn(port)
        yield* awaitStatus(cache, "connected")
        expect((yield* health()).status).toBe("healthy")
        expect((yield* cache.stats).recoveries).toBe(1)
        // Entries kept while degraded are not trusted after recovery (the new server has none).
        expect(yield* cache.get("offline")).toEqual(Option.none())
        yield* cache.set("k", "v2")
        expect(yield* cache.get("k")).toEqual(Option.some("v2"))
      }),
    ),
  )

  it.live("started without redis (the fallback): degraded, then connects in the background", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const port = yield* freePort
        const s = settings({ cache_redis_url: `redis://127.0.0.1:${port}` })
        const cache = yield* build(Cache.layerDegraded(s, { ...fast, namespace: namespace() }))
        expect(yield* cache.status).toBe("degraded")
        yield* cache.set("k", "local")
        expect(yield* cache.get("k")).toEqual(Option.some("local"))
        yield* redisOn(port)
        yield* awaitStatus(cache, "connected")
        expect((yield* cache.stats).recoveries).toBe(1)
        expect((yield* cache.stats).degradedSince).toBeUndefined()
      }),
    ),
  )
})

describe("boot policy", () => {
  it.scoped("unreachable redis: 3 retries after 1 s, 2 s, 4 s, then the in-memory level, degraded", () =>
    Effect.gen(function* () {
      const srv = yield* refusingServer
      const s = settings({ cache_redis_url: `redis://127.0.0.1:${srv.port}` })
      const fiber = yield* Effect.fork(build(Cache.layer(s, { namespace: namespace() })))
      // Waits (real time) until the retry is asleep on the TestClock.
      const sleeping = Effect.gen(function* () {
        for (let i = 0; (yield* TestClock.sleeps()).length === 0; i++) {
          if (i > 2000) return yield* Effect.die(new Error("no retry was scheduled"))
          yield* Effect.promise(() => new Promise((r) => setTimeout(r, 5)))
        }
      })
      for (const [attempt, delay] of [
        [1, 1000],
        [2, 2000],
        [3, 4000],
      ] as const) {
        yield* eventually(() => srv.connections() === attempt)
        yield* sleeping
        yield* TestClock.adjust(delay - 1)
        expect(srv.connections()).toBe(attempt)
        expect(yield* Fiber.poll(fiber)).toEqual(Option.none())
        yield* TestClock.adjust(1)
      }
      // The 4th attempt fails the boot policy; the background reconnection may already be trying.
      yield* eventually(() => srv.connections() >= 4)
      const cache = yield* Fiber.join(fiber)
      expect(yield* cache.status).toBe("degraded")
      yield* cache.set("k", "v")
      expect(yield* cache.get("k")).toEqual(Option.some("v"))
    }),
  )

  it.scoped("the component: strict layer fails fast, fallback boots degraded, health check says so", () =>
    Effect.gen(function* () {
      const srv = yield* refusingServer
      const s = settings({ cache_redis_url: `redis://127.0.0.1:${srv.port}` })
      const c = CacheComponent.component(s)
      expect([c.name, "phase" in c, "dependencies" in c]).toEqual(["cache", false, false])
      expect(c.retry).toBe(Cache.retrySchedule)
      const strict = yield* Effect.exit(Effect.scoped(Layer.build(c.layer)))
      expect(Exit.isFailure(strict) && String(strict.cause)).toMatch(/RedisUnavailable|unreachable/)
      const ctx = yield* Layer.build(c.fallback!)
      const h = yield* Effect.provide(c.healthCheck!, ctx)
      expect(h).toMatchObject({ status: "degraded", details: { status: "degraded" } })
    }),
  )

  it.scoped("memory-only by configuration is healthy", () =>
    Effect.gen(function* () {
      const c = CacheComponent.component(settings())
      const ctx = yield* Layer.build(c.layer)
      expect(yield* Effect.provide(c.healthCheck!, ctx)).toMatchObject({ status: "healthy" })
      expect(yield* SubscriptionRef.get(Context.get(ctx, Cache.Cache).statusRef)).toBe("memory-only")
    }),
  )
})
