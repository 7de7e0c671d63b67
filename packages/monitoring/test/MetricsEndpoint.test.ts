import { describe, expect, it } from "@effect/vitest"
import { type Boot, type BootReport, Component } from "@novacron/init"
import { havePrometheus, promtool, tempDir } from "@novacron/testing"
import { Context, Effect, Fiber, Layer, Metric, Option } from "effect"
import { HealthEndpoints, MetricsEndpoint } from "../src/index.js"

const serveMetrics = (spec: Component.Spec<MetricsEndpoint.MetricsEndpoint, unknown>, context = Context.empty()) =>
  Effect.gen(function* () {
    const ctx = yield* Layer.build(
      Layer.provide(
        Component.place(spec, { phase: "post-init", criticality: "WARNING" }).layer,
        Layer.succeedContext(context),
      ),
    )
    return Context.get(ctx as Context.Context<MetricsEndpoint.MetricsEndpoint>, MetricsEndpoint.MetricsEndpoint).url
  })

const scrape = (url: string) =>
  Effect.promise(async () => {
    const r = await fetch(url)
    return { type: r.headers.get("content-type"), text: await r.text() }
  })

const view = (health: "healthy" | "unhealthy"): HealthEndpoints.NodeView => ({
  nodeId: "n1",
  build: {},
  startedAt: 0,
  lifecycle: Effect.succeed("ready"),
  report: Effect.succeed(
    Option.some({
      components: [
        { name: "db", criticality: "CRITICAL", status: "running" },
        { name: "cache", criticality: "DEGRADED", status: "degraded" },
        { name: "vm", criticality: "WARNING", status: "failed" },
      ],
    } as unknown as BootReport.BootReport),
  ),
  handle: Effect.succeed(
    Option.some({
      health: Effect.succeed({
        components: [{ name: "db", criticality: "CRITICAL", status: "running", health, message: "x" }],
      }),
    } as unknown as Boot.BootHandle),
  ),
})

describe("MetricsEndpoint", () => {
  it.live("serves every metric in Prometheus text on /metrics after onStart; 404 elsewhere", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const spec = MetricsEndpoint.component("127.0.0.1", 0, {
          onStart: Metric.set(Metric.gauge("monitoring_test_started", { description: "set by onStart" }), 1),
        })
        expect("phase" in spec).toBe(false)
        const url = yield* serveMetrics(spec)
        expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/)
        const r = yield* scrape(url)
        expect(r.type).toMatch(/^text\/plain; version=0\.0\.4/)
        expect(r.text).toMatch(/^monitoring_test_started 1$/m)
        expect((yield* Effect.promise(() => fetch(url.replace("/metrics", "/x")))).status).toBe(404)
      }),
    ),
  )

  it.live("exports the node's health as gauges, read on each scrape", () =>
    Effect.scoped(
      Effect.gen(function* () {
        let health: "healthy" | "unhealthy" = "unhealthy"
        const live: HealthEndpoints.NodeView = { ...view("healthy"), handle: Effect.suspend(() => view(health).handle) }
        const url = yield* serveMetrics(
          MetricsEndpoint.component("127.0.0.1", 0),
          Context.make(HealthEndpoints.NodeHealth, live),
        )
        const first = (yield* scrape(url)).text
        expect(first).toMatch(/^novacron_node_ready 1$/m)
        expect(first).toMatch(/^novacron_boot_degraded_components 1$/m)
        expect(first).toMatch(/^novacron_component_healthy\{component="db",criticality="CRITICAL"\} 0$/m)
        expect(first).toMatch(/^novacron_component_up\{component="db",criticality="CRITICAL"\} 1$/m)
        expect(first).toMatch(/^novacron_component_up\{component="vm",criticality="WARNING"\} 0$/m)
        expect(first).toMatch(/^novacron_component_healthy\{component="vm",criticality="WARNING"\} 0$/m)
        expect(first).toMatch(/^novacron_component_degraded\{component="cache",criticality="DEGRADED"\} 1$/m)
        expect(first).toMatch(/^novacron_component_healthy\{component="cache",criticality="DEGRADED"\} 1$/m)
        health = "healthy"
        expect((yield* scrape(url)).text).toMatch(
          /^novacron_component_healthy\{component="db",criticality="CRITICAL"\} 1$/m,
        )
      }),
    ),
  )

  it.live("exports the data directory's filesystem space and the process's CPU and memory", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const dir = yield* tempDir
        const text = yield* MetricsEndpoint.expositionWith({ dataDir: dir })
        const size = Number(/^novacron_data_dir_size_bytes (\S+)$/m.exec(text)?.[1])
        const available = Number(/^novacron_data_dir_available_bytes (\S+)$/m.exec(text)?.[1])
        expect(size).toBeGreaterThan(0)
        expect(available).toBeGreaterThan(0)
        expect(available).toBeLessThanOrEqual(size)
        expect(text).toMatch(/^# TYPE process_cpu_seconds_total counter$/m)
        expect(Number(/^process_resident_memory_bytes (\S+)$/m.exec(text)?.[1])).toBeGreaterThan(10e6)
        const start = Number(/^process_start_time_seconds (\S+)$/m.exec(text)?.[1])
        expect(Math.abs(start - (Date.now() / 1000 - process.uptime()))).toBeLessThan(2)
        // A directory that is not there: no disk series rather than a wrong one.
        expect(yield* MetricsEndpoint.expositionWith({ dataDir: `${dir}/missing` })).not.toMatch(/novacron_data_dir/)
      }),
    ),
  )

  it.live("Effect's runtime metrics follow the conventions: _total counters, a seconds histogram", () =>
    Effect.gen(function* () {
      // Some fibers that live and end, so the runtime has recorded lifetimes.
      const fibers = yield* Effect.forEach([1, 2, 3], (n) => Effect.fork(Effect.sleep(n)))
      yield* Fiber.joinAll(fibers)
      const text = yield* MetricsEndpoint.exposition
      expect(text).not.toMatch(/^effect_fiber_(started|successes|failures|lifetimes)[ {]/m)
      expect(text).not.toMatch(/time_unit=/)
      expect(text).toMatch(/^# TYPE effect_fiber_started_total counter$/m)
      expect(text).toMatch(/^# TYPE effect_fiber_active gauge$/m)
      expect(text).toMatch(/^# TYPE effect_fiber_lifetime_seconds histogram$/m)
      // Buckets in seconds: Effect's first bucket is 0.5 ms.
      expect(text).toMatch(/^effect_fiber_lifetime_seconds_bucket\{le="0.0005"\} \d+$/m)
      expect(text).toMatch(/^effect_fiber_lifetime_seconds_bucket\{le="\+Inf"\} \d+$/m)
    }),
  )
})

describe.skipIf(!(await havePrometheus()))("MetricsEndpoint (promtool)", () => {
  it.live("what /metrics serves passes `promtool check metrics` without a finding", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const dir = yield* tempDir
        yield* Effect.forEach([1, 2], (n) => Effect.sleep(n))
        // Recorded by @effect/cluster without a description, as the agent's orchestration does.
        yield* Metric.set(Metric.gauge("effect_cluster_shards", { bigint: true }), BigInt(3))
        const url = yield* serveMetrics(
          MetricsEndpoint.component("127.0.0.1", 0, { dataDir: dir }),
          Context.make(HealthEndpoints.NodeHealth, view("unhealthy")),
        )
        const { text } = yield* scrape(url)
        expect(text).toMatch(/^novacron_component_healthy\{/m)
        expect(text).toMatch(/^effect_fiber_lifetime_seconds_bucket/m)
        expect(text).toMatch(/^# HELP effect_cluster_shards /m)
        const r = promtool(["check", "metrics"], { input: text })
        expect(r.stdout + r.stderr).toBe("")
        expect(r.code).toBe(0)
      }),
    ),
  )
})
