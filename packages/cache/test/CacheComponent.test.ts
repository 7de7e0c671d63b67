import { describe, expect, it } from "@effect/vitest"
import { Boot, Component } from "@novacron/init"
import { freePort, haveRedisServer, redisOn } from "@novacron/testing"
import { Effect, Fiber, Option, TestClock } from "effect"
import * as CacheComponent from "../src/CacheComponent.js"
import * as CacheSettings from "../src/CacheSettings.js"
import { namespace } from "./helpers.js"

// Placed as the node's boot table places it.
const placed = <A, E, R>(spec: Component.Spec<A, E, R>) =>
  Component.place(spec, { phase: "core", criticality: "DEGRADED" })

/** Advances the TestClock 100 ms at a time (letting sockets work in real time) until `done`. */
const advanceUntil = <E, R>(done: Effect.Effect<boolean, E, R>, maxSeconds: number) =>
  Effect.gen(function* () {
    for (let i = 0; i < maxSeconds * 10; i++) {
      if (yield* done) return
      yield* Effect.promise(() => new Promise((r) => setTimeout(r, 10)))
      yield* TestClock.adjust("100 millis")
    }
    return yield* Effect.die(new Error(`not done after ${maxSeconds} s of TestClock time`))
  })

describe.skipIf(!(await haveRedisServer()))("cache under the boot kernel", () => {
  it.scoped("redis down at boot: retried, boot goes on degraded; redis up: health reports recovery", () =>
    Effect.gen(function* () {
      const port = yield* freePort
      const s = CacheSettings.decode({ cache_redis_url: `redis://127.0.0.1:${port}` })
      const fiber = yield* Effect.fork(Boot.boot([placed(CacheComponent.component(s, { namespace: namespace() }))]))
      // 1 + 2 + 4 s of retries, well inside the 20 s core phase.
      yield* advanceUntil(Effect.map(Fiber.poll(fiber), Option.isSome), 12)
      const node = yield* Fiber.join(fiber)
      const cache = () => Effect.map(node.health, (h) => h.components.find((c) => c.name === "cache")!)
      const record = node.report.components.find((c) => c.name === "cache")!
      expect(record.status).toBe("degraded")
      expect(yield* cache()).toMatchObject({ health: "degraded" })

      const server = yield* redisOn(port)
      expect(server.pid).toBeGreaterThan(0)
      yield* advanceUntil(
        Effect.map(cache(), (c) => c.health === "healthy"),
        30,
      )
      expect((yield* cache()).details).toMatchObject({ status: "connected", recoveries: 1 })
    }),
  )
})
