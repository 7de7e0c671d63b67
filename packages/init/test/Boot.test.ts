import { describe, expect, it } from "@effect/vitest"
import {
  Cause,
  Context,
  Duration,
  Effect,
  Exit,
  FastCheck,
  Fiber,
  Layer,
  Logger,
  LogLevel,
  Metric,
  Option,
  Schedule,
  Scope,
  SubscriptionRef,
  TestClock,
} from "effect"
import { Boot, BootMetrics, type BootReport, BootStatus, Checkpoint, Component, Graph } from "../src/index.js"
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

describe("DEGRADED giving up", () => {
  it.effect("without a fallback: retried by its schedule, then degraded with no service; dependents skipped", () =>
    Effect.gen(function* () {
      const j = makeJournal()
      const { exit } = yield* bootAndRun([
        fixture(j, "cache", { criticality: "DEGRADED", failTimes: Infinity, retry: Schedule.recurs(2) }),
        fixture(j, "warmer", { criticality: "WARNING", dependencies: ["cache"] }),
        fixture(j, "db"),
      ])
      expect(Exit.isSuccess(exit)).toBe(true)
      const node = Exit.isSuccess(exit) ? exit.value : undefined
      const byName = Object.fromEntries(node!.report.components.map((c) => [c.name, c]))
      expect(byName.cache).toMatchObject({ status: "degraded", attempts: 3, error: "cache broke (attempt 3)" })
      expect(byName.cache!.fallback).toBeUndefined()
      expect(byName.warmer).toMatchObject({ status: "skipped", error: "dependency unavailable: cache" })
      expect(j.names("start:")).not.toContain("warmer")
      const health = yield* node!.health
      expect(health.components.find((c) => c.name === "cache")).toMatchObject({
        health: "degraded",
        message: "cache broke (attempt 3)",
      })
    }),
  )

  it.effect("a fallback that fails too leaves the component degraded, both causes recorded", () =>
    Effect.gen(function* () {
      const j = makeJournal()
      const cache = Component.make({
        ...fixture(j, "cache", { criticality: "DEGRADED", failTimes: Infinity, retry: Schedule.recurs(1) }),
        fallback: Layer.fail(new Error("no memory either")),
      })
      const { exit } = yield* bootAndRun([cache, fixture(j, "db")])
      expect(Exit.isSuccess(exit)).toBe(true)
      const node = Exit.isSuccess(exit) ? exit.value : undefined
      const record = node!.report.components.find((c) => c.name === "cache")!
      expect(record).toMatchObject({
        status: "degraded",
        attempts: 2,
        error: "cache broke (attempt 2); fallback failed: no memory either",
      })
      expect(record.fallback).toBeUndefined()
    }),
  )

  it.effect("a fallback's resources are released at shutdown like a started component's", () =>
    Effect.gen(function* () {
      const j = makeJournal()
      const { exit, scope } = yield* bootAndRun([
        fixture(j, "db"),
        fixture(j, "cache", {
          criticality: "DEGRADED",
          failTimes: Infinity,
          retry: Schedule.recurs(0),
          fallback: true,
        }),
      ])
      expect(Exit.isSuccess(exit)).toBe(true)
      yield* Scope.close(scope, Exit.void)
      expect(j.events.map((e) => e.event).filter((e) => e.startsWith("down"))).toEqual([
        "down-fallback:cache",
        "down:db",
      ])
    }),
  )
})

describe("BootStatus", () => {
  it.effect("every component sees the others' status; degraded, failed and skipped count as degraded", () =>
    Effect.gen(function* () {
      const j = makeJournal()
      const seen: Record<string, unknown> = {}
      const observer = Component.make({
        name: "observer",
        phase: "services",
        criticality: "CRITICAL",
        layer: Layer.effectDiscard(
          Effect.map(BootStatus, (s) => {
            for (const n of ["db", "cache", "telemetry", "exporter", "ghost"])
              seen[n] = { status: s.status(n), degraded: s.isDegraded(n) }
          }),
        ),
      })
      const { exit } = yield* bootAndRun([
        fixture(j, "db"),
        fixture(j, "cache", { criticality: "DEGRADED", failTimes: Infinity, fallback: true }),
        fixture(j, "telemetry", { criticality: "WARNING", failTimes: Infinity }),
        fixture(j, "exporter", { criticality: "WARNING", dependencies: ["telemetry"] }),
        observer,
      ])
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(seen).toEqual({
        db: { status: "running", degraded: false },
        cache: { status: "degraded", degraded: true },
        telemetry: { status: "failed", degraded: true },
        exporter: { status: "skipped", degraded: true },
        ghost: { status: undefined, degraded: false },
      })
      // The booted context carries it too, live.
      const node = Exit.isSuccess(exit) ? exit.value : undefined
      const status = Context.get(node!.context as Context.Context<BootStatus>, BootStatus)
      expect(status.status("observer")).toBe("running")
      expect(status.isDegraded("observer")).toBe(false)
    }),
  )
})

describe("metrics of one boot", () => {
  const value = (metric: typeof BootMetrics.componentInitSuccess, name: string) =>
    Effect.map(Metric.value(Metric.tagged(metric, "component", name)), (s) => s.count)

  it.effect("component_init_success_count counts started components only, a fallback included", () =>
    Effect.gen(function* () {
      const j = makeJournal()
      const tag = `s${Math.random().toString(36).slice(2)}`
      const { exit } = yield* bootAndRun([
        fixture(j, `${tag}-ok`),
        fixture(j, `${tag}-warn`, { criticality: "WARNING", failTimes: Infinity }),
        fixture(j, `${tag}-nofb`, { criticality: "DEGRADED", failTimes: Infinity, retry: Schedule.recurs(1) }),
        fixture(j, `${tag}-fb`, {
          criticality: "DEGRADED",
          failTimes: Infinity,
          retry: Schedule.recurs(0),
          fallback: true,
        }),
      ])
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(yield* value(BootMetrics.componentInitSuccess, `${tag}-ok`)).toBe(1)
      expect(yield* value(BootMetrics.componentInitSuccess, `${tag}-warn`)).toBe(0)
      expect(yield* value(BootMetrics.componentInitSuccess, `${tag}-nofb`)).toBe(0)
      expect(yield* value(BootMetrics.componentInitSuccess, `${tag}-fb`)).toBe(1)
      expect(yield* value(BootMetrics.componentInitFailure, `${tag}-nofb`)).toBe(2)
    }),
  )

  it.effect("parallel efficiency is the sum of start times over the boot's wall time", () =>
    Effect.gen(function* () {
      const j = makeJournal()
      // a and b start together; c follows a. Starts: 10 + 30 + 10 = 50 ms in 30 ms of boot.
      const { exit } = yield* bootAndRun([
        fixture(j, "a", { takes: "10 millis" }),
        fixture(j, "b", { takes: "30 millis" }),
        fixture(j, "c", { dependencies: ["a"], takes: "10 millis" }),
      ])
      const node = Exit.isSuccess(exit) ? exit.value : undefined
      expect(node!.report.totalMillis).toBe(30)
      expect(node!.report.parallelEfficiency).toBeCloseTo(50 / 30, 9)
      expect((yield* Metric.value(BootMetrics.parallelEfficiency)).value).toBeCloseTo(50 / 30, 9)
      expect((yield* Metric.value(BootMetrics.totalBootTime)).value).toBeCloseTo(0.03, 9)
    }),
  )

  it.effect("a boot that takes no time at all has an efficiency of 0, not NaN", () =>
    Effect.gen(function* () {
      const { exit } = yield* bootAndRun([fixture(makeJournal(), "instant")])
      const node = Exit.isSuccess(exit) ? exit.value : undefined
      expect(node!.report.totalMillis).toBe(0)
      expect(node!.report.parallelEfficiency).toBe(0)
    }),
  )
})

describe("shutdown deadline", () => {
  it.effect("ShutdownTimeout lists the stuck component and, newest first, those never stopped", () =>
    Effect.gen(function* () {
      const j = makeJournal()
      const { exit } = yield* bootAndRun(
        [
          fixture(j, "config", { phase: "pre-init" }),
          fixture(j, "security", { phase: "core" }),
          fixture(j, "db", { phase: "core", dependencies: ["security"], stopTakes: "1 hour" }),
          fixture(j, "api", { phase: "services", stopTakes: "100 millis" }),
        ],
        { shutdownTimeout: "1 second" },
      )
      const node = Exit.isSuccess(exit) ? exit.value : undefined
      const fiber = yield* Effect.fork(Effect.flip(node!.shutdown))
      yield* TestClock.adjust("5 seconds")
      const error = yield* Fiber.join(fiber)
      expect(error).toMatchObject({
        _tag: "ShutdownTimeout",
        timeoutMillis: 1000,
        stuck: "db",
        abandoned: ["security", "config"],
        finished: [{ name: "api", millis: 100 }],
      })
      expect(node!.report.outcome).toBe("stopped")
    }),
  )
})

/**
 * The list schedule the kernel promises under a cap of one, computed the slow way: phase by phase,
 * of the components whose dependencies are done, the one with the longest chain of expected
 * milliseconds (at least 1 each) to the end of its phase goes first; ties to the earlier in start order.
 */
const referenceOrder = (components: ReadonlyArray<Component.AnyComponent>, order: ReadonlyArray<string>) => {
  const byName = new Map(components.map((c) => [c.name, c]))
  const own = (n: string) => {
    const d = byName.get(n)!.expectedDuration
    return Math.max(1, d === undefined ? 0 : Duration.toMillis(Duration.decode(d)))
  }
  const rank = (n: string): number => {
    const c = byName.get(n)!
    const tails = components.filter((x) => x.phase === c.phase && x.dependencies.includes(n)).map((x) => rank(x.name))
    return own(n) + Math.max(0, ...tails)
  }
  const done = new Set<string>()
  const out: Array<string> = []
  for (const phase of Component.phases) {
    const members = order.filter((n) => byName.get(n)!.phase === phase)
    while (members.some((n) => !done.has(n))) {
      const ready = members.filter((n) => !done.has(n) && byName.get(n)!.dependencies.every((d) => done.has(d)))
      // Stable sort: ties stay in start order.
      const next = [...ready].sort((a, b) => rank(b) - rank(a))[0]!
      done.add(next)
      out.push(next)
    }
  }
  return out
}

const randomGraph = FastCheck.array(
  FastCheck.record({
    phase: FastCheck.integer({ min: 0, max: 3 }),
    deps: FastCheck.array(FastCheck.nat(), { maxLength: 3 }),
    takes: FastCheck.option(FastCheck.integer({ min: 0, max: 30 }), { nil: undefined }),
  }),
  { minLength: 1, maxLength: 12 },
)

describe("ready queue under a cap", () => {
  it.effect.prop(
    "with one slot, components start longest-chain-first, ties in start order, on any graph",
    [randomGraph],
    ([specs]) =>
      Effect.gen(function* () {
        const j = makeJournal()
        const components = specs.map((s, i) => {
          // Dependencies on earlier components of the same or an earlier phase only: a valid graph.
          const deps = i === 0 ? [] : [...new Set(s.deps.map((d) => d % i))].filter((d) => specs[d]!.phase <= s.phase)
          // Instant starts: under a cap of one the order depends on expected durations only.
          return Component.make({
            name: `c${i}`,
            phase: Component.phases[s.phase]!,
            criticality: "CRITICAL",
            dependencies: deps.map((d) => `c${d}`),
            layer: Layer.effectDiscard(j.log(`start:c${i}`)),
            expectedDuration: s.takes === undefined ? undefined : Duration.millis(s.takes),
          })
        })
        const graph = yield* Graph.validate(components)
        // Quiet: the log lines of a few hundred starts cost more than the starts.
        yield* Effect.scoped(Boot.boot(components, { maxConcurrency: 1 })).pipe(
          Logger.withMinimumLogLevel(LogLevel.None),
        )
        expect(j.names("start:")).toEqual(referenceOrder(components, graph.order))
      }),
    { fastCheck: { numRuns: 100 } },
  )
})

describe("log lines", () => {
  type Line = [level: string, message: string, annotations: Record<string, unknown>]
  /** Boots, then closes the scope; every line the kernel logs (not the runtime's own), at any level. */
  const logsOf = (components: ReadonlyArray<Component.AnyComponent>, options: Boot.BootOptions = {}) => {
    const lines: Array<Line> = []
    const capture = Logger.make(({ logLevel, message, annotations }) => {
      const a = Object.fromEntries(annotations)
      if ("name" in a || "component" in a) lines.push([logLevel.label, String(message), a])
    })
    return Effect.gen(function* () {
      const { exit, scope } = yield* bootAndRun(components, options)
      yield* Scope.close(scope, Exit.void)
      return { exit, lines }
    }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, capture)), Logger.withMinimumLogLevel(LogLevel.All))
  }

  it.effect("a boot that goes on past a degraded, a failed and a skipped component, then shuts down", () =>
    Effect.gen(function* () {
      const j = makeJournal()
      const { lines } = yield* logsOf([
        fixture(j, "config", { phase: "pre-init", takes: "2 millis" }),
        fixture(j, "cache", {
          criticality: "DEGRADED",
          failTimes: Infinity,
          retry: Schedule.recurs(1),
          fallback: true,
        }),
        fixture(j, "telemetry", { criticality: "WARNING", failTimes: Infinity }),
        fixture(j, "exporter", { criticality: "WARNING", dependencies: ["telemetry"] }),
      ])
      const component = (name: string, dependencies = "") => ({ component: name, dependencies })
      expect(lines).toEqual([
        ["DEBUG", "checkpoint init_start", { name: "boot.checkpoint" }],
        ["INFO", "config started", { name: "component.running", ...component("config"), duration: 2, attempts: 1 }],
        ["DEBUG", "checkpoint pre_init_complete", { name: "boot.checkpoint" }],
        ["DEBUG", "telemetry attempt 1 failed: telemetry broke (attempt 1)", component("telemetry")],
        [
          "WARN",
          "telemetry failed, continuing: telemetry broke (attempt 1)",
          { name: "component.failed", ...component("telemetry"), duration: 0, attempts: 1 },
        ],
        [
          "WARN",
          "exporter skipped, continuing: dependency unavailable: telemetry",
          { name: "component.skipped", ...component("exporter", "telemetry"), duration: 0, attempts: 0 },
        ],
        ["DEBUG", "cache attempt 1 failed: cache broke (attempt 1)", component("cache")],
        ["DEBUG", "cache attempt 2 failed: cache broke (attempt 2)", component("cache")],
        [
          "WARN",
          "cache degraded (fallback in place): cache broke (attempt 2)",
          { name: "component.degraded", ...component("cache"), duration: 0, attempts: 2 },
        ],
        ["DEBUG", "checkpoint core_init_complete", { name: "boot.checkpoint" }],
        ["DEBUG", "checkpoint service_init_complete", { name: "boot.checkpoint" }],
        ["DEBUG", "checkpoint init_complete", { name: "boot.checkpoint" }],
        ["INFO", "READY in 2.0 ms", { name: "boot.ready", duration: 2, parallel_efficiency: 1 }],
        ["INFO", "shutting down", { name: "shutdown.started" }],
        ["INFO", "cache stopped", { name: "component.stopped", component: "cache", duration: 0 }],
        ["INFO", "config stopped", { name: "component.stopped", component: "config", duration: 0 }],
      ])
    }),
  )

  /** A store in memory: `read` gives what it is told; `write` fails once `failWhen` holds. */
  const memoryStore = (
    read: Checkpoint.CheckpointStore["read"],
    failWhen: (r: BootReport.BootReport) => boolean = () => false,
  ): Checkpoint.CheckpointStore => ({
    path: "/mem/boot-record.json",
    read,
    write: (r) =>
      failWhen(r)
        ? Effect.fail(
            new Checkpoint.CheckpointError({
              path: "/mem/boot-record.json",
              operation: "write",
              cause: new Error("disk gone"),
            }),
          )
        : Effect.void,
  })
  const errors = (lines: Array<Line>) => lines.filter(([level]) => level === "ERROR").map(([, m]) => m)

  it.effect("what the previous record said, or that it was corrupt, is logged as boot.previous", () =>
    Effect.gen(function* () {
      const crashed = {
        bootId: "b-0",
        pid: process.pid,
        startedAt: "2026-01-01T00:00:00.000Z",
        outcome: "starting" as const,
        checkpoints: [],
        phases: [],
        components: [],
      }
      const { lines } = yield* logsOf([fixture(makeJournal(), "db")], {
        checkpoints: memoryStore(Effect.succeed(Option.some(crashed))),
      })
      expect(lines.filter(([level]) => level === "WARN")).toEqual([
        [
          "WARN",
          `previous boot b-0 (pid ${process.pid}) crashed during boot, after checkpoint none`,
          { name: "boot.previous" },
        ],
      ])
      const corrupt = yield* logsOf([fixture(makeJournal(), "db")], {
        checkpoints: memoryStore(Effect.fail(new Checkpoint.CorruptRecord({ path: "/mem/r", reason: "not JSON" }))),
      })
      expect(corrupt.lines.filter(([level]) => level === "WARN")).toEqual([
        ["WARN", "boot record /mem/r is corrupt: not JSON; ignoring it", { name: "boot.previous" }],
      ])
    }),
  )

  it.effect("a failure in pre-init is logged with its last checkpoint, init_start", () =>
    Effect.gen(function* () {
      const { lines } = yield* logsOf([fixture(makeJournal(), "config", { phase: "pre-init", failTimes: Infinity })])
      expect(lines.find(([, m]) => m.startsWith("boot failed:"))?.[2]).toEqual({
        name: "boot.failed",
        checkpoint: "init_start",
      })
    }),
  )

  it.effect("a rollback past its deadline is logged, and the boot still fails with the component's error", () =>
    Effect.gen(function* () {
      const j = makeJournal()
      const { exit, lines } = yield* logsOf(
        [fixture(j, "config", { phase: "pre-init", stopTakes: "1 hour" }), fixture(j, "db", { failTimes: Infinity })],
        { shutdownTimeout: "1 second" },
      )
      const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : undefined
      expect(error?._tag === "Some" && error.value._tag).toBe("ComponentFailed")
      expect(errors(lines).filter((m) => m.startsWith("rollback incomplete: "))).toHaveLength(1)
      expect(errors(lines).find((m) => m.startsWith("rollback incomplete: "))).toContain(
        "shutdown timed out after 1000 ms while stopping config",
      )
    }),
  )

  it.effect("a record that cannot be written at rollback or at shutdown is logged; neither is held up", () =>
    Effect.gen(function* () {
      const rollback = yield* logsOf([fixture(makeJournal(), "db", { failTimes: Infinity })], {
        checkpoints: memoryStore(Effect.succeed(Option.none()), (r) => r.outcome === "failed"),
      })
      expect(Exit.isFailure(rollback.exit)).toBe(true)
      expect(errors(rollback.lines)).toContain("cannot write boot record /mem/boot-record.json: disk gone")
      const shutdown = yield* logsOf([fixture(makeJournal(), "db")], {
        checkpoints: memoryStore(Effect.succeed(Option.none()), (r) => r.outcome === "stopped"),
      })
      expect(Exit.isSuccess(shutdown.exit)).toBe(true)
      expect(errors(shutdown.lines)).toEqual(["cannot write boot record /mem/boot-record.json: disk gone"])
    }),
  )

  it.effect("a component's lines name all its dependencies", () =>
    Effect.gen(function* () {
      const j = makeJournal()
      const { lines } = yield* logsOf([
        fixture(j, "a"),
        fixture(j, "b"),
        fixture(j, "api", { dependencies: ["a", "b"] }),
      ])
      expect(lines.find(([, m]) => m === "api started")?.[2]).toMatchObject({ component: "api", dependencies: "a,b" })
    }),
  )

  it.effect("a CRITICAL failure, the rollback, and a DEGRADED component left without a service", () =>
    Effect.gen(function* () {
      const j = makeJournal()
      const { exit, lines } = yield* logsOf([
        fixture(j, "config", { phase: "pre-init" }),
        fixture(j, "cache", { criticality: "DEGRADED", failTimes: Infinity, retry: Schedule.recurs(0) }),
        fixture(j, "db", { dependencies: ["cache"] }),
      ])
      expect(Exit.isFailure(exit)).toBe(true)
      expect(lines.filter(([level]) => level !== "DEBUG")).toEqual([
        [
          "INFO",
          "config started",
          { name: "component.running", component: "config", dependencies: "", duration: 0, attempts: 1 },
        ],
        [
          "WARN",
          "cache degraded: cache broke (attempt 1)",
          { name: "component.degraded", component: "cache", dependencies: "", duration: 0, attempts: 1 },
        ],
        [
          "ERROR",
          "db failed: dependency unavailable: cache",
          { name: "component.failed", component: "db", dependencies: "cache", duration: 0, attempts: 0 },
        ],
        [
          "ERROR",
          'boot failed: CRITICAL component "db" (core) failed after 0 attempt(s): dependency unavailable: cache; rolling back',
          { name: "boot.failed", checkpoint: "pre_init_complete" },
        ],
        ["INFO", "config stopped", { name: "component.stopped", component: "config", duration: 0 }],
      ])
    }),
  )
})

describe("what a host sees", () => {
  it.effect("onEvent reports every step in order: boot, phases, attempts, finishes, checkpoints, stops", () =>
    Effect.gen(function* () {
      const j = makeJournal()
      const events: Array<string> = []
      const { exit, scope } = yield* bootAndRun(
        [
          fixture(j, "config", { phase: "pre-init", takes: "3 millis" }),
          fixture(j, "db", { failTimes: 1, retry: Schedule.recurs(1) }),
        ],
        {
          onEvent: (e) => {
            switch (e._tag) {
              case "BootStarted":
                return events.push(`boot ${e.report.outcome} ${e.report.components.map((c) => c.name)}`)
              case "PhaseStarted":
                return events.push(`phase ${e.phase}`)
              case "PhaseFinished":
                return events.push(`phase ${e.phase} done in ${e.millis}`)
              case "ComponentStarting":
                return events.push(`starting ${e.name} #${e.attempt}`)
              case "ComponentFinished":
                return events.push(`finished ${e.record.name} ${e.record.status}`)
              case "ComponentStopped":
                return events.push(`stopped ${e.record.name} ${e.record.status}`)
              case "Checkpoint":
                return events.push(`checkpoint ${e.name}`)
            }
          },
        },
      )
      expect(Exit.isSuccess(exit)).toBe(true)
      yield* Scope.close(scope, Exit.void)
      expect(events).toEqual([
        "boot starting config,db",
        "checkpoint init_start",
        "phase pre-init",
        "starting config #1",
        "finished config running",
        "phase pre-init done in 3",
        "checkpoint pre_init_complete",
        "phase core",
        "starting db #1",
        "starting db #2",
        "finished db running",
        "phase core done in 0",
        "checkpoint core_init_complete",
        "phase services",
        "phase services done in 0",
        "checkpoint service_init_complete",
        "phase post-init",
        "phase post-init done in 0",
        "checkpoint init_complete",
        "stopped db stopped",
        "stopped config stopped",
      ])
    }),
  )

  it.effect("the report keeps each phase's status and times, and the lifecycle moves on to stopped", () =>
    Effect.gen(function* () {
      const j = makeJournal()
      const { exit, scope } = yield* bootAndRun([
        fixture(j, "config", { phase: "pre-init", takes: "4 millis" }),
        fixture(j, "api", { phase: "services", takes: "6 millis" }),
      ])
      const node = Exit.isSuccess(exit) ? exit.value : undefined
      expect(node!.report.phases).toEqual([
        { phase: "pre-init", status: "complete", startedAt: 0, finishedAt: 4 },
        { phase: "core", status: "complete", startedAt: 4, finishedAt: 4 },
        { phase: "services", status: "complete", startedAt: 4, finishedAt: 10 },
        { phase: "post-init", status: "complete", startedAt: 10, finishedAt: 10 },
      ])
      expect(node!.report.components.find((c) => c.name === "api")).toMatchObject({
        readyAt: 4,
        startedAt: 4,
        finishedAt: 10,
      })
      const phaseSeconds = (phase: Component.Phase) =>
        Effect.map(Metric.value(Metric.tagged(BootMetrics.phaseDuration, "phase", phase)), (g) => g.value)
      expect(yield* phaseSeconds("pre-init")).toBeCloseTo(0.004, 9)
      expect(yield* phaseSeconds("services")).toBeCloseTo(0.006, 9)
      expect(yield* SubscriptionRef.get(node!.lifecycle)).toBe("ready")
      yield* node!.shutdown
      expect(yield* SubscriptionRef.get(node!.lifecycle)).toBe("stopped")
      // Shutdown runs once: closing the scope afterwards stops nothing twice.
      yield* Scope.close(scope, Exit.void)
      expect(j.names("down:")).toEqual(["api", "config"])
    }),
  )

  it.effect("a phase that times out is marked failed; the lifecycle says failed", () =>
    Effect.gen(function* () {
      const j = makeJournal()
      const phasesSeen: Array<unknown> = []
      const { exit } = yield* bootAndRun([fixture(j, "stuck", { takes: "1 hour" })], {
        phaseTimeouts: { core: "1 second" },
        onEvent: (e) => {
          if (e._tag === "BootStarted") phasesSeen.push(e.report.phases)
        },
      })
      expect(Exit.isFailure(exit)).toBe(true)
      expect(phasesSeen[0]).toMatchObject([
        { status: "complete" },
        { status: "failed" },
        { status: "pending" },
        { status: "pending" },
      ])
    }),
  )

  it.effect("components get the services the host provides", () =>
    Effect.gen(function* () {
      class Settings extends Context.Tag("test/Settings")<Settings, { readonly url: string }>() {}
      let seen: string | undefined
      const db = Component.make({
        name: "db",
        phase: "core",
        criticality: "CRITICAL",
        layer: Layer.effectDiscard(
          Effect.map(Settings, (s) => {
            seen = s.url
          }),
        ),
      })
      const { exit } = yield* bootAndRun([db], { context: Context.make(Settings, { url: "pg://h" }) as never })
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(seen).toBe("pg://h")
      const node = Exit.isSuccess(exit) ? exit.value : undefined
      expect(Context.get(node!.context as Context.Context<Settings>, Settings).url).toBe("pg://h")
    }),
  )

  it.effect("health: a check that hangs is unhealthy after its timeout; one returning nothing follows the status", () =>
    Effect.gen(function* () {
      const make = (name: string, criticality: Component.Criticality, healthCheck: Effect.Effect<void>) =>
        Component.make({ name, phase: "core", criticality, layer: Layer.empty, healthCheck })
      const { exit } = yield* bootAndRun(
        [make("hangs", "WARNING", Effect.never), make("quiet", "CRITICAL", Effect.void)],
        { healthCheckTimeout: "2 seconds" },
      )
      const node = Exit.isSuccess(exit) ? exit.value : undefined
      const fiber = yield* Effect.fork(node!.health)
      yield* TestClock.adjust("3 seconds")
      const health = yield* Fiber.join(fiber)
      expect(health).toMatchObject({ status: "degraded", ready: true, lifecycle: "ready" })
      expect(health.components).toEqual([
        {
          name: "hangs",
          criticality: "WARNING",
          status: "running",
          health: "unhealthy",
          message: "health check timed out",
        },
        {
          name: "quiet",
          criticality: "CRITICAL",
          status: "running",
          health: "healthy",
          message: undefined,
          details: undefined,
        },
      ])
    }),
  )
})

describe("edge cases", () => {
  it.effect("errors are rendered by message, else by name; failures that are not Errors as text", () =>
    Effect.gen(function* () {
      const failing = (name: string, layer: Layer.Layer<never, unknown>) =>
        Component.make({ name, phase: "core", criticality: "WARNING", layer })
      const { exit } = yield* bootAndRun([
        failing("text", Layer.fail("disk full")),
        failing("nameless", Layer.fail(new RangeError(""))),
        failing("defect", Layer.effectDiscard(Effect.die(new Error("bug")))),
      ])
      const node = Exit.isSuccess(exit) ? exit.value : undefined
      expect(Object.fromEntries(node!.report.components.map((c) => [c.name, c.error]))).toEqual({
        text: "disk full",
        nameless: "RangeError",
        defect: "bug",
      })
    }),
  )

  it.effect("a concurrency cap below one is taken as one", () =>
    Effect.gen(function* () {
      const j = makeJournal()
      const { exit } = yield* bootAndRun(
        [fixture(j, "a", { takes: "5 millis" }), fixture(j, "b", { takes: "5 millis" })],
        {
          maxConcurrency: 0,
        },
      )
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(j.events.filter((e) => e.event.startsWith("start:")).map((e) => e.at)).toEqual([0, 5])
    }),
  )
})

describe("survivors of the first mutation run", () => {
  it.effect("a component missing two dependencies names both", () =>
    Effect.gen(function* () {
      const j = makeJournal()
      const { exit } = yield* bootAndRun([
        fixture(j, "a", { criticality: "WARNING", failTimes: Infinity }),
        fixture(j, "b", { criticality: "WARNING", failTimes: Infinity }),
        fixture(j, "c", { criticality: "WARNING", dependencies: ["a", "b"] }),
      ])
      const node = Exit.isSuccess(exit) ? exit.value : undefined
      expect(node!.report.components.find((c) => c.name === "c")!.error).toBe("dependency unavailable: a, b")
    }),
  )

  it.effect("times are counted from this boot's start, not from the clock's epoch", () =>
    Effect.gen(function* () {
      yield* TestClock.adjust("1 hour")
      const statuses: Array<string> = []
      const { exit } = yield* bootAndRun([fixture(makeJournal(), "db", { takes: "5 millis" })], {
        onEvent: (e) => {
          if (e._tag === "BootStarted") statuses.push(...e.report.components.map((c) => c.status))
        },
      })
      const node = Exit.isSuccess(exit) ? exit.value : undefined
      expect(node!.report.checkpoints.map((c) => c.at)).toEqual([0, 0, 5, 5, 5])
      expect(node!.report.totalMillis).toBe(5)
      expect(statuses[0]).toBe("pending")
    }),
  )

  it.effect("a phase is running while its components start", () =>
    Effect.gen(function* () {
      let report: BootReport.BootReport | undefined
      const seen: Array<string> = []
      yield* bootAndRun([fixture(makeJournal(), "db")], {
        onEvent: (e) => {
          if (e._tag === "BootStarted") report = e.report
          if (e._tag === "PhaseStarted") seen.push(report!.phases.find((p) => p.phase === e.phase)!.status)
        },
      })
      expect(seen).toEqual(["running", "running", "running", "running"])
    }),
  )

  it.effect("a fallback is only for DEGRADED: a failed WARNING component does not use one", () =>
    Effect.gen(function* () {
      const j = makeJournal()
      const { exit } = yield* bootAndRun([
        fixture(j, "telemetry", { criticality: "WARNING", failTimes: Infinity, fallback: true }),
      ])
      const node = Exit.isSuccess(exit) ? exit.value : undefined
      expect(node!.report.components[0]).toMatchObject({ status: "failed" })
      expect(j.names("fallback:")).toEqual([])
    }),
  )

  it.effect(
    "a phase timeout names what was waiting as stuck too, times what finished, and is the recorded failure",
    () =>
      Effect.gen(function* () {
        const j = makeJournal()
        let report: BootReport.BootReport | undefined
        const { exit } = yield* bootAndRun(
          [
            fixture(j, "config", { phase: "pre-init", takes: "3 millis" }),
            fixture(j, "fast", { takes: "2 millis" }),
            fixture(j, "stuck", { takes: "1 hour" }),
            fixture(j, "after", { dependencies: ["stuck"] }),
          ],
          {
            phaseTimeouts: { core: "1 second" },
            onEvent: (e) => {
              if (e._tag === "BootStarted") report = e.report
            },
          },
        )
        const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : undefined
        expect(error?._tag === "Some" && error.value).toMatchObject({
          _tag: "PhaseTimeout",
          stuck: ["stuck", "after"],
          finished: [
            { name: "config", millis: 3 },
            { name: "fast", millis: 2 },
          ],
        })
        expect(report!.failure).toEqual({
          message: "phase core timed out after 1000 ms; stuck: stuck, after; finished: config 3.0 ms, fast 2.0 ms",
        })
      }),
  )

  it.effect("lifecycle is shutting-down while components stop", () =>
    Effect.gen(function* () {
      let node: Boot.BootHandle | undefined
      const seen: Array<string> = []
      const db = Component.make({
        name: "db",
        phase: "core",
        criticality: "CRITICAL",
        layer: Layer.scopedDiscard(
          Effect.addFinalizer(() =>
            Effect.map(SubscriptionRef.get(node!.lifecycle), (l) => {
              seen.push(l)
            }),
          ),
        ),
      })
      const { exit } = yield* bootAndRun([db])
      node = Exit.isSuccess(exit) ? exit.value : undefined
      yield* node!.shutdown
      expect(seen).toEqual(["shutting-down"])
    }),
  )

  it.effect("health: components without a check follow their status; a check never runs without a service", () =>
    Effect.gen(function* () {
      const j = makeJournal()
      const cache = Component.make({
        ...fixture(j, "cache", { criticality: "DEGRADED", failTimes: Infinity, retry: Schedule.recurs(0) }),
        healthCheck: Effect.succeed({ status: "healthy" as const }),
      })
      const { exit } = yield* bootAndRun([
        fixture(j, "db"),
        cache,
        fixture(j, "telemetry", { criticality: "WARNING", failTimes: Infinity }),
      ])
      const node = Exit.isSuccess(exit) ? exit.value : undefined
      const health = yield* node!.health
      expect(Object.fromEntries(health.components.map((c) => [c.name, c.health]))).toEqual({
        db: "healthy",
        cache: "degraded",
        telemetry: "unknown",
      })
    }),
  )

  it.effect("after shutdown, health runs no check on the stopped components", () =>
    Effect.gen(function* () {
      let checks = 0
      const db = Component.make({
        name: "db",
        phase: "core",
        criticality: "CRITICAL",
        layer: Layer.empty,
        healthCheck: Effect.sync(() => {
          checks++
        }),
      })
      const { exit } = yield* bootAndRun([db])
      const node = Exit.isSuccess(exit) ? exit.value : undefined
      yield* node!.health
      expect(checks).toBe(1)
      yield* node!.shutdown
      const after = yield* node!.health
      expect(checks).toBe(1)
      expect(after.components[0]).toMatchObject({ status: "stopped", health: "unknown" })
      expect(after).toMatchObject({ status: "unhealthy", ready: false, lifecycle: "stopped" })
    }),
  )

  it.effect("health checks run at once: two that hang take one timeout, not two", () =>
    Effect.gen(function* () {
      const hangs = (name: string) =>
        Component.make({ name, phase: "core", criticality: "WARNING", layer: Layer.empty, healthCheck: Effect.never })
      const { exit } = yield* bootAndRun([hangs("a"), hangs("b")], { healthCheckTimeout: "2 seconds" })
      const node = Exit.isSuccess(exit) ? exit.value : undefined
      const fiber = yield* Effect.fork(node!.health)
      yield* TestClock.adjust("3 seconds")
      const done = yield* Fiber.poll(fiber)
      expect(done._tag).toBe("Some")
    }),
  )

  it.effect("level by level, levels run in increasing order even when start order interleaves them", () =>
    Effect.gen(function* () {
      const j = makeJournal()
      // h (level 2) is ready for core before b (level 1) is: core's order is a, h, b.
      const components = [
        fixture(j, "p0", { phase: "pre-init" }),
        fixture(j, "p1", { phase: "pre-init", dependencies: ["p0"] }),
        fixture(j, "a"),
        fixture(j, "h", { dependencies: ["p1"] }),
        fixture(j, "b", { dependencies: ["a"] }),
      ]
      expect((yield* Graph.validate(components)).order).toEqual(["p0", "p1", "a", "h", "b"])
      yield* bootAndRun(components, { strategy: "levels" })
      expect(j.names("start:")).toEqual(["p0", "p1", "a", "b", "h"])
    }),
  )
})
