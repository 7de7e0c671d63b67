import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Metric, Ref, Schedule, Scope, TestClock } from "effect"
import { BackgroundJobs } from "../src/index.js"

const every = (s: number) => Schedule.spaced(`${s} seconds`)

describe("BackgroundJobs", () => {
  it.scoped("a job runs at start, then on its own schedule", () =>
    Effect.gen(function* () {
      const jobs = yield* BackgroundJobs.make
      const fast = yield* Ref.make(0)
      const slow = yield* Ref.make(0)
      yield* jobs.start({ name: "fast", schedule: every(10), run: Ref.update(fast, (n) => n + 1) })
      yield* jobs.start({ name: "slow", schedule: every(60), run: Ref.update(slow, (n) => n + 1), runAtStart: false })
      yield* TestClock.adjust("1 millis")
      expect([yield* Ref.get(fast), yield* Ref.get(slow)]).toEqual([1, 0])
      yield* TestClock.adjust("60 seconds")
      expect([yield* Ref.get(fast), yield* Ref.get(slow)]).toEqual([7, 1])
      const status = yield* jobs.status
      expect(status.map((s) => [s.name, s.runs, s.failures])).toEqual([
        ["fast", 7, 0],
        ["slow", 1, 0],
      ])
    }),
  )

  it.scoped("a failing or throwing job is logged, counted and run again; the others go on", () =>
    Effect.gen(function* () {
      const jobs = yield* BackgroundJobs.make
      const attempts = yield* Ref.make(0)
      const healthy = yield* Ref.make(0)
      const failuresBefore = (yield* Metric.value(
        BackgroundJobs.runsTotal.pipe(Metric.tagged("job", "flaky"), Metric.tagged("outcome", "failure")),
      )).count
      yield* jobs.start({
        name: "flaky",
        schedule: every(1),
        // fails, throws, then succeeds from the third run on
        run: Effect.flatMap(
          Ref.updateAndGet(attempts, (n) => n + 1),
          (n): Effect.Effect<void, Error> =>
            n === 1
              ? Effect.fail(new Error("etcd unavailable"))
              : n === 2
                ? Effect.sync(() => {
                    throw new Error("boom")
                  })
                : Effect.void,
        ),
      })
      yield* jobs.start({ name: "steady", schedule: every(1), run: Ref.update(healthy, (n) => n + 1) })
      yield* TestClock.adjust("1 millis")
      let flaky = (yield* jobs.status).find((s) => s.name === "flaky")!
      expect(flaky).toMatchObject({ runs: 1, failures: 1, consecutiveFailures: 1, lastError: "etcd unavailable" })
      yield* TestClock.adjust("1 seconds")
      flaky = (yield* jobs.status).find((s) => s.name === "flaky")!
      expect(flaky).toMatchObject({ runs: 2, failures: 2, consecutiveFailures: 2, lastError: "boom" })
      yield* TestClock.adjust("1 seconds")
      flaky = (yield* jobs.status).find((s) => s.name === "flaky")!
      expect(flaky).toMatchObject({ runs: 3, failures: 2, consecutiveFailures: 0 })
      expect(yield* Ref.get(healthy)).toBe(3)
      const failuresAfter = (yield* Metric.value(
        BackgroundJobs.runsTotal.pipe(Metric.tagged("job", "flaky"), Metric.tagged("outcome", "failure")),
      )).count
      expect(failuresAfter - failuresBefore).toBe(2)
    }),
  )

  it.scoped("two jobs of one name are refused", () =>
    Effect.gen(function* () {
      const jobs = yield* BackgroundJobs.make
      yield* jobs.start({ name: "refresh", schedule: every(1), run: Effect.void })
      const error = yield* Effect.flip(jobs.start({ name: "refresh", schedule: every(1), run: Effect.void }))
      expect(error._tag).toBe("DuplicateJob")
      expect(error.message).toContain('"refresh"')
    }),
  )

  it.scoped("a job stops with the scope that started it and leaves the list", () =>
    Effect.gen(function* () {
      const jobs = yield* BackgroundJobs.make
      const runs = yield* Ref.make(0)
      const owner = yield* Scope.make()
      yield* jobs
        .start({ name: "owned", schedule: every(1), run: Ref.update(runs, (n) => n + 1) })
        .pipe(Scope.extend(owner))
      yield* TestClock.adjust("2500 millis")
      expect(yield* Ref.get(runs)).toBe(3)
      yield* Scope.close(owner, Exit.void)
      yield* TestClock.adjust("10 seconds")
      expect(yield* Ref.get(runs)).toBe(3)
      expect(yield* jobs.status).toEqual([])
    }),
  )

  it.scoped("the component is degraded while a job keeps failing, naming it", () =>
    Effect.gen(function* () {
      const spec = BackgroundJobs.component()
      const context = yield* Layer.build(spec.layer)
      const health = spec.healthCheck!.pipe(Effect.provide(context))
      const jobs = Context.get(context, BackgroundJobs.BackgroundJobs)
      yield* jobs.start({ name: "maintenance", schedule: every(1), run: Effect.fail(new Error("disk full")) })
      yield* TestClock.adjust("1 seconds")
      expect(yield* health).toMatchObject({ status: "healthy" })
      yield* TestClock.adjust("1 seconds")
      const h = yield* health
      expect(h).toMatchObject({ status: "degraded", details: { jobs: ["maintenance"] } })
      expect(h?.message).toContain("maintenance: 3 failures in a row (disk full)")
    }),
  )
})
