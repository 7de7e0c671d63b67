import { describe, expect, it } from "@effect/vitest"
import { Cause, Context, type Duration, Effect, Exit, Fiber, Layer, Schedule, Scope, TestClock } from "effect"
import { Boot, BootStatus, Component } from "../src/index.js"
import { fixture, makeJournal } from "./fixtures.js"

/** Boots in a fresh scope on a forked fiber, advancing the TestClock until it is done. */
const bootAndRun = (
  components: ReadonlyArray<Component.AnyComponent>,
  options: Boot.BootOptions = {},
  advance: Duration.DurationInput = "1 minute",
) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const fiber = yield* Effect.fork(Scope.extend(Boot.boot(components, options), scope))
    yield* TestClock.adjust(advance)
    const exit = yield* Fiber.await(fiber)
    return { exit, scope }
  })

describe("scheduling", () => {
  it.effect("starts each component as soon as its own dependencies are up, not a level at a time", () =>
    Effect.gen(function* () {
      const j = makeJournal()
      const components = [
        fixture(j, "a", { takes: "10 millis" }),
        fixture(j, "slow", { dependencies: ["a"], takes: "50 millis" }),
        fixture(j, "quick", { dependencies: ["a"], takes: "10 millis" }),
        fixture(j, "after-quick", { dependencies: ["quick"], takes: "10 millis" }),
      ]
      const { exit } = yield* bootAndRun(components)
      expect(Exit.isSuccess(exit)).toBe(true)
      const at = (e: string) => j.events.find((x) => x.event === e)!.at
      // slow and quick overlap; after-quick starts when quick is up, while slow is still starting.
      expect(at("start:slow")).toBe(10)
      expect(at("start:quick")).toBe(10)
      expect(at("start:after-quick")).toBe(20)
      expect(at("up:slow")).toBe(60)
      expect(at("up:after-quick")).toBe(30)
    }),
  )

  it.effect("level-by-level grouping (for comparison) makes the next level wait for the slowest", () =>
    Effect.gen(function* () {
      const j = makeJournal()
      const components = [
        fixture(j, "a", { takes: "10 millis" }),
        fixture(j, "slow", { dependencies: ["a"], takes: "50 millis" }),
        fixture(j, "quick", { dependencies: ["a"], takes: "10 millis" }),
        fixture(j, "after-quick", { dependencies: ["quick"], takes: "10 millis" }),
      ]
      yield* bootAndRun(components, { strategy: "levels" })
      expect(j.events.find((x) => x.event === "start:after-quick")!.at).toBe(60)
    }),
  )

  it.effect("runs phases in order: a services component waits for the whole core phase", () =>
    Effect.gen(function* () {
      const j = makeJournal()
      const { exit } = yield* bootAndRun([
        fixture(j, "api", { phase: "services", takes: "1 millis" }),
        fixture(j, "db", { phase: "core", takes: "30 millis" }),
        fixture(j, "config", { phase: "pre-init", takes: "5 millis" }),
        fixture(j, "metrics", { phase: "post-init" }),
      ])
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(j.names("up:")).toEqual(["config", "db", "api", "metrics"])
      expect(j.events.find((x) => x.event === "start:api")!.at).toBe(35)
    }),
  )

  it.effect("holds to the concurrency cap", () =>
    Effect.gen(function* () {
      const j = makeJournal()
      const components = Array.from({ length: 10 }, (_, i) => fixture(j, `c${i}`, { takes: "10 millis" }))
      yield* bootAndRun(components, { maxConcurrency: 3 })
      let running = 0
      let peak = 0
      for (const e of j.events) {
        if (e.event.startsWith("start:")) peak = Math.max(peak, ++running)
        if (e.event.startsWith("up:")) running--
      }
      expect(peak).toBe(3)
      // ten 10 ms starts, three at a time: four rounds.
      expect(Math.max(...j.events.map((e) => e.at))).toBe(40)
    }),
  )

  it.effect("under the cap, the ready component with the longest chain behind it starts first", () =>
    Effect.gen(function* () {
      // Listed first, the two leaves would take the single slot before the chain's head.
      const chainAndLeaves = (j: ReturnType<typeof makeJournal>) => [
        fixture(j, "leaf-1", { takes: "10 millis" }),
        fixture(j, "leaf-2", { takes: "10 millis" }),
        fixture(j, "head", { takes: "10 millis" }),
        fixture(j, "middle", { dependencies: ["head"], takes: "10 millis" }),
        fixture(j, "tail", { dependencies: ["middle"], takes: "10 millis" }),
      ]
      const j = makeJournal()
      const { exit } = yield* bootAndRun(chainAndLeaves(j), { maxConcurrency: 1 })
      expect(Exit.isSuccess(exit)).toBe(true)
      // Then middle (20 ms still to go) before the leaves; ties go to the earlier listed.
      expect(j.names("start:")).toEqual(["head", "middle", "leaf-1", "leaf-2", "tail"])
      // With the cap at 1 every order takes 50 ms; with 2, the chain runs beside the leaves.
      const j2 = makeJournal()
      yield* bootAndRun(chainAndLeaves(j2), { maxConcurrency: 2 })
      const at = j2.events.map((e) => e.at)
      expect(Math.max(...at) - Math.min(...at)).toBe(30)
    }),
  )

  it.effect("gives each component the services of its dependencies", () =>
    Effect.gen(function* () {
      class Db extends Context.Tag("test/Db")<Db, { readonly url: string }>() {}
      class Api extends Context.Tag("test/Api")<Api, { readonly describe: string }>() {}
      const db = Component.make({
        name: "db",
        phase: "core",
        criticality: "CRITICAL",
        layer: Layer.succeed(Db, { url: "sqlite://x" }),
      })
      const api = Component.make({
        name: "api",
        phase: "services",
        criticality: "CRITICAL",
        dependencies: ["db"],
        layer: Layer.effect(
          Api,
          Effect.map(Db, (d) => ({ describe: `api on ${d.url}` })),
        ),
      })
      const { exit } = yield* bootAndRun([api, db])
      const node = Exit.isSuccess(exit) ? exit.value : undefined
      expect(Context.get(node!.context as Context.Context<Api>, Api).describe).toBe("api on sqlite://x")
    }),
  )
})

/** A component that acquires one resource, then never finishes starting. */
const halfStarted = (j: ReturnType<typeof makeJournal>, dependencies: ReadonlyArray<string> = []) =>
  Component.make({
    name: "half",
    phase: "core",
    criticality: "CRITICAL",
    dependencies,
    layer: Layer.scopedDiscard(
      Effect.zipRight(
        Effect.acquireRelease(j.log("up:half-resource"), () => j.log("down:half-resource")),
        Effect.sleep("1 hour"),
      ),
    ),
  })

describe("policies", () => {
  it.effect("CRITICAL failure halts boot, interrupts what is starting and rolls back newest first", () =>
    Effect.gen(function* () {
      const j = makeJournal()
      const components = [
        fixture(j, "security", { takes: "1 millis" }),
        fixture(j, "db", { dependencies: ["security"], takes: "5 millis" }),
        fixture(j, "cache", { dependencies: ["security"], takes: "8 millis" }),
        fixture(j, "network", { dependencies: ["security"], takes: "20 millis", failTimes: Infinity }),
        fixture(j, "slowpoke", { dependencies: ["security"], takes: "1 hour" }),
        fixture(j, "api", { phase: "services", dependencies: ["db"] }),
      ]
      const { exit } = yield* bootAndRun(components)
      expect(Exit.isFailure(exit)).toBe(true)
      const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : undefined
      expect(error?._tag === "Some" && error.value.message).toBe(
        'CRITICAL component "network" (core) failed after 1 attempt(s): network broke (attempt 1)',
      )
      // started: security, db, cache (in that order); rolled back cache, db, security.
      expect(j.names("up:")).toEqual(["security", "db", "cache"])
      expect(j.names("down:")).toEqual(["cache", "db", "security"])
      expect(j.names("start:")).not.toContain("api")
    }),
  )

  it.effect("no finalizer is skipped when boot is interrupted mid-start", () =>
    Effect.gen(function* () {
      const j = makeJournal()
      // "half" acquires one resource, then is still starting when "bad" fails.
      const { exit } = yield* bootAndRun([
        fixture(j, "first", { takes: "1 millis" }),
        halfStarted(j),
        fixture(j, "bad", { dependencies: ["first"], takes: "10 millis", failTimes: Infinity }),
      ])
      expect(Exit.isFailure(exit)).toBe(true)
      expect(j.names("down:")).toEqual(["half-resource", "first"])
    }),
  )

  it.effect("interrupting boot from outside (a signal mid-start) releases what started and what was starting", () =>
    Effect.gen(function* () {
      const j = makeJournal()
      const half = halfStarted(j, ["first"])
      const scope = yield* Scope.make()
      const fiber = yield* Effect.fork(
        Scope.extend(Boot.boot([fixture(j, "config", { phase: "pre-init" }), fixture(j, "first"), half]), scope),
      )
      yield* TestClock.adjust("1 second")
      expect(j.names("up:")).toEqual(["config", "first", "half-resource"])
      yield* Fiber.interrupt(fiber)
      yield* Scope.close(scope, Exit.void)
      expect(j.names("down:")).toEqual(["half-resource", "first", "config"])
    }),
  )

  it.effect("DEGRADED retries 1 s, 2 s, 4 s, then continues on its fallback; dependents can see it", () =>
    Effect.gen(function* () {
      const j = makeJournal()
      const seen: Array<boolean> = []
      const watcher = Component.make({
        name: "watcher",
        phase: "services",
        criticality: "CRITICAL",
        dependencies: ["cache"],
        layer: Layer.effectDiscard(
          Effect.map(BootStatus, (s) => {
            seen.push(s.isDegraded("cache"))
          }),
        ),
      })
      const { exit } = yield* bootAndRun([
        fixture(j, "cache", { criticality: "DEGRADED", failTimes: Infinity, fallback: true }),
        watcher,
      ])
      expect(Exit.isSuccess(exit)).toBe(true)
      const fails = j.events.filter((e) => e.event === "fail:cache").map((e) => e.at)
      expect(fails).toEqual([0, 1000, 3000, 7000])
      expect(j.names("fallback:")).toEqual(["cache"])
      expect(seen).toEqual([true])
      const node = Exit.isSuccess(exit) ? exit.value : undefined
      const cache = node!.report.components.find((c) => c.name === "cache")!
      expect(cache).toMatchObject({ status: "degraded", attempts: 4, fallback: true })
    }),
  )

  it.effect("retrying one component does not re-initialise the others", () =>
    Effect.gen(function* () {
      const j = makeJournal()
      const { exit } = yield* bootAndRun([
        fixture(j, "steady"),
        fixture(j, "flaky", { criticality: "DEGRADED", failTimes: 2 }),
        fixture(j, "after", { dependencies: ["flaky", "steady"] }),
      ])
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(j.names("start:").filter((n) => n === "steady")).toHaveLength(1)
      expect(j.names("start:").filter((n) => n === "flaky")).toHaveLength(3)
      expect(j.names("up:")).toEqual(["steady", "flaky", "after"])
    }),
  )

  it.effect("a custom retry schedule is used for any criticality", () =>
    Effect.gen(function* () {
      const j = makeJournal()
      const { exit } = yield* bootAndRun([fixture(j, "db", { failTimes: 2, retry: Schedule.spaced("250 millis") })])
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(j.events.filter((e) => e.event === "start:db").map((e) => e.at)).toEqual([0, 250, 500])
    }),
  )

  it.effect("WARNING failure is logged and boot continues; its dependents are skipped", () =>
    Effect.gen(function* () {
      const j = makeJournal()
      const { exit } = yield* bootAndRun([
        fixture(j, "telemetry", { criticality: "WARNING", failTimes: Infinity }),
        fixture(j, "exporter", { criticality: "WARNING", dependencies: ["telemetry"] }),
        fixture(j, "db"),
      ])
      expect(Exit.isSuccess(exit)).toBe(true)
      const node = Exit.isSuccess(exit) ? exit.value : undefined
      const status = Object.fromEntries(node!.report.components.map((c) => [c.name, c.status]))
      expect(status).toEqual({ telemetry: "failed", exporter: "skipped", db: "running" })
      const health = yield* node!.health
      expect(health.status).toBe("degraded")
      expect(health.ready).toBe(true)
    }),
  )

  it.effect("a component timeout fails the attempt; a phase timeout names what was stuck", () =>
    Effect.gen(function* () {
      const j = makeJournal()
      const { exit } = yield* bootAndRun(
        [fixture(j, "fast", { takes: "2 millis" }), fixture(j, "stuck", { takes: "1 hour" })],
        { phaseTimeouts: { core: "1 second" } },
      )
      const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : undefined
      expect(error?._tag === "Some" && error.value.message).toBe(
        "phase core timed out after 1000 ms; stuck: stuck; finished: fast 2.0 ms",
      )
      expect(j.names("down:")).toEqual(["fast"])

      const j2 = makeJournal()
      const { exit: exit2 } = yield* bootAndRun([fixture(j2, "db", { takes: "1 hour", timeout: "3 seconds" })])
      const error2 = Exit.isFailure(exit2) ? Cause.failureOption(exit2.cause) : undefined
      expect(error2?._tag === "Some" && error2.value.message).toBe(
        'CRITICAL component "db" (core) failed after 1 attempt(s): start timed out after 3000 ms',
      )
    }),
  )
})

describe("shutdown", () => {
  it.effect("closing the boot scope shuts down in reverse start order", () =>
    Effect.gen(function* () {
      const j = makeJournal()
      const { exit, scope } = yield* bootAndRun([
        fixture(j, "config", { phase: "pre-init" }),
        fixture(j, "security", { takes: "1 millis" }),
        fixture(j, "db", { dependencies: ["security"], takes: "3 millis" }),
        fixture(j, "cache", { dependencies: ["security"], takes: "2 millis" }),
        fixture(j, "api", { phase: "services", dependencies: ["db", "cache"] }),
      ])
      expect(Exit.isSuccess(exit)).toBe(true)
      const node = Exit.isSuccess(exit) ? exit.value : undefined
      yield* Scope.close(scope, Exit.void)
      expect(j.names("up:")).toEqual(["config", "security", "cache", "db", "api"])
      expect(j.names("down:")).toEqual(["api", "db", "cache", "security", "config"])
      expect(node!.report.outcome).toBe("stopped")
      expect((yield* node!.health).ready).toBe(false)
    }),
  )

  it.effect("a shutdown past its deadline names the stuck component and the finished ones' times", () =>
    Effect.gen(function* () {
      const j = makeJournal()
      const { exit } = yield* bootAndRun(
        [
          fixture(j, "db", { stopTakes: "1 hour" }),
          fixture(j, "cache", { stopTakes: "1 hour" }),
          fixture(j, "api", { phase: "services", stopTakes: "250 millis" }),
        ],
        { shutdownTimeout: "2 seconds" },
      )
      const node = Exit.isSuccess(exit) ? exit.value : undefined
      const fiber = yield* Effect.fork(Effect.flip(node!.shutdown))
      yield* TestClock.adjust("5 seconds")
      const error = yield* Fiber.join(fiber)
      expect(error.message).toBe(
        "shutdown timed out after 2000 ms while stopping cache; not stopped: db; finished: api 250.0 ms",
      )
    }),
  )
})
