import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Logger, Metric, Ref } from "effect"
import parse from "parse-prometheus-text-format"
import { Boot, Component, Prometheus } from "../src/index.js"
import { fixture, makeJournal } from "./fixtures.js"

interface Family {
  name: string
  type: string
  metrics: Array<{ value?: string; labels?: Record<string, string> }>
}

const sample = (families: Array<Family>, name: string, labels: Record<string, string> = {}) => {
  const f = families.find((x) => x.name === name)
  const m = f?.metrics.find((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v))
  return m?.value === undefined ? undefined : Number(m.value)
}

describe("metrics", () => {
  it.live("the Prometheus text parses and carries this boot's values", () =>
    Effect.gen(function* () {
      const j = makeJournal()
      const tag = `m${Date.now()}`
      const node = yield* Boot.boot(
        [
          fixture(j, `${tag}-a`, { takes: "20 millis" }),
          fixture(j, `${tag}-b`, {
            dependencies: [`${tag}-a`],
            criticality: "DEGRADED",
            failTimes: 1,
            retry: undefined,
          }),
        ].map((c) => (c.name.endsWith("-b") ? { ...c, retry: undefined } : c)),
      )
      const text = yield* Prometheus.snapshot
      const families = parse(text) as Array<Family>
      const types = Object.fromEntries(families.map((f) => [f.name, f.type]))
      expect(types).toMatchObject({
        component_init_duration_seconds: "GAUGE",
        component_init_success_count: "COUNTER",
        component_init_failure_count: "COUNTER",
        phase_duration_seconds: "GAUGE",
        total_boot_time_seconds: "GAUGE",
        parallel_efficiency_ratio: "GAUGE",
      })
      const a = node.report.components.find((c) => c.name === `${tag}-a`)!
      expect(sample(families, "component_init_duration_seconds", { component: `${tag}-a` })).toBeCloseTo(
        (a.finishedAt! - a.startedAt!) / 1000,
        6,
      )
      expect(sample(families, "component_init_duration_seconds", { component: `${tag}-a` })).toBeGreaterThanOrEqual(
        0.019,
      )
      expect(sample(families, "component_init_success_count", { component: `${tag}-a` })).toBe(1)
      // b failed once and succeeded on its (default DEGRADED) retry.
      expect(sample(families, "component_init_failure_count", { component: `${tag}-b` })).toBe(1)
      expect(sample(families, "component_init_success_count", { component: `${tag}-b` })).toBe(1)
      expect(sample(families, "total_boot_time_seconds")).toBeCloseTo(node.report.totalMillis! / 1000, 6)
      expect(sample(families, "parallel_efficiency_ratio")).toBeCloseTo(node.report.parallelEfficiency!, 6)
    }).pipe(Effect.scoped),
  )

  it("renders label values with quotes, backslashes and newlines escaped", () => {
    const text = Effect.runSync(
      Effect.gen(function* () {
        yield* Metric.set(Metric.tagged(Metric.gauge("escape_test_gauge"), "path", 'a"b\\c\nd'), 1.5)
        return yield* Prometheus.snapshot
      }),
    )
    expect(text).toContain('escape_test_gauge{path="a\\"b\\\\c\\nd"} 1.5')
    expect(() => parse(text)).not.toThrow()
  })
})

describe("logs", () => {
  it.live("each component logs with its name, event name, duration and dependencies", () =>
    Effect.gen(function* () {
      const lines = yield* Ref.make<Array<Record<string, unknown>>>([])
      const capture = Logger.make(({ message, annotations, logLevel }) => {
        const entry: Record<string, unknown> = { level: logLevel.label, message: String(message) }
        for (const [k, v] of annotations) entry[k] = v
        Effect.runSync(Ref.update(lines, (l) => [...l, entry]))
      })
      const j = makeJournal()
      yield* Boot.boot([fixture(j, "security"), fixture(j, "db", { dependencies: ["security"] })]).pipe(
        Effect.provide(Logger.replace(Logger.defaultLogger, capture)),
      )
      const db = (yield* Ref.get(lines)).find((l) => l.component === "db" && l.name === "component.running")
      expect(db).toMatchObject({ level: "INFO", message: "db started", dependencies: "security" })
      expect(typeof db!.duration).toBe("number")
    }).pipe(Effect.scoped),
  )
})

describe("health", () => {
  it.live("aggregates each check by criticality", () =>
    Effect.gen(function* () {
      class Pool extends Context.Tag("test/Pool")<Pool, { ok: boolean }>() {}
      const pool = { ok: true }
      const db = Component.make({
        name: "db",
        phase: "core",
        criticality: "CRITICAL",
        layer: Layer.succeed(Pool, pool),
        healthCheck: Effect.flatMap(Pool, (p) =>
          p.ok ? Effect.succeed({ status: "healthy" as const }) : Effect.fail(new Error("pool exhausted")),
        ),
      })
      const cache = Component.make({
        name: "cache",
        phase: "core",
        criticality: "DEGRADED",
        layer: Layer.empty,
        healthCheck: Effect.succeed({ status: "degraded" as const, message: "redis down, serving from memory" }),
      })
      const node = yield* Boot.boot([db, cache])
      const h1 = yield* node.health
      expect(h1).toMatchObject({ status: "degraded", ready: true, lifecycle: "ready" })
      expect(h1.components.find((c) => c.name === "cache")).toMatchObject({
        health: "degraded",
        message: "redis down, serving from memory",
      })
      pool.ok = false
      const h2 = yield* node.health
      expect(h2.status).toBe("unhealthy")
      expect(h2.components.find((c) => c.name === "db")).toMatchObject({
        health: "unhealthy",
        message: "pool exhausted",
      })
    }).pipe(Effect.scoped),
  )
})
