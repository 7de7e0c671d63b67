import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Ref, TestClock } from "effect"
import * as Network from "../src/Network.js"

describe("backoff", () => {
  it.effect("delays double from the base, are capped at max, jittered within 0.8..1.2, and stop after attempts", () =>
    Effect.gen(function* () {
      const times = yield* Ref.make<Array<number>>([])
      const attempt = Effect.flatMap(TestClock.currentTimeMillis, (now) => Ref.update(times, (t) => [...t, now])).pipe(
        Effect.zipRight(Effect.fail("unreachable")),
      )
      const fiber = yield* Effect.fork(
        Effect.retry(attempt, Network.backoff({ base: "100 millis", max: "1 second", attempts: 6 })),
      )
      yield* TestClock.adjust(Duration.minutes(1))
      const exit = yield* Fiber.await(fiber)
      expect(exit._tag).toBe("Failure")
      const t = yield* Ref.get(times)
      expect(t.length).toBe(7) // first try + 6 retries
      const gaps = t.slice(1).map((x, i) => x - t[i]!)
      const nominal = [100, 200, 400, 800, 1000, 1000]
      for (const [i, gap] of gaps.entries()) {
        expect(gap).toBeGreaterThanOrEqual(nominal[i]! * 0.8 - 1)
        expect(gap).toBeLessThanOrEqual(nominal[i]! * 1.2 + 1)
      }
    }),
  )
})
