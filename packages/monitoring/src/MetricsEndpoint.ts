/**
 * `/metrics` in Prometheus text format 0.0.4: every Effect metric of the process (Effect's own
 * runtime metrics renamed to the conventions), the process's CPU, memory and start time, the free
 * space of the data directory, and the node's health as gauges; as a component spec the host
 * places (the node's boot table: post-init, WARNING).
 *
 * @since 0.1.0
 */
import { statfs } from "node:fs/promises"
import { Component, Prometheus } from "@novacron/init"
import {
  Context,
  Effect,
  Layer,
  Metric,
  MetricBoundaries,
  MetricKey,
  type MetricLabel,
  MetricPair,
  MetricState,
  Option,
} from "effect"
import { NodeHealth } from "./HealthEndpoints.js"
import * as HealthMetrics from "./HealthMetrics.js"
import { type ListenError, serve } from "./HttpServer.js"

/**
 * The metrics endpoint as it was bound.
 *
 * @since 0.1.0
 * @category services
 */
export class MetricsEndpoint extends Context.Tag("@novacron/monitoring/MetricsEndpoint")<
  MetricsEndpoint,
  { readonly url: string }
>() {}

// Effect's runtime metrics, as Prometheus names them: counters end in `_total`, durations are
// seconds with no unit label, and the active-fiber counter (Effect decrements it) is a gauge.
const runtimeCounters: Readonly<Record<string, { readonly name: string; readonly help: string }>> = {
  effect_fiber_started: { name: "effect_fiber_started_total", help: "Fibers the Effect runtime started" },
  effect_fiber_successes: { name: "effect_fiber_successes_total", help: "Fibers that ended in success" },
  effect_fiber_failures: { name: "effect_fiber_failures_total", help: "Fibers that ended in failure" },
}

// Effect's libraries record these without a description; Prometheus wants HELP on every family.
const libraryHelp: Readonly<Record<string, string>> = {
  effect_cluster_entities: "Entities of @effect/cluster running on this runner",
  effect_cluster_runners: "Runners @effect/cluster knows of",
  effect_cluster_runners_healthy: "Runners @effect/cluster sees healthy",
  effect_cluster_shards: "Shards assigned to this runner",
  effect_cluster_singletons: "Cluster singletons running on this runner",
}

const conventional = (pair: MetricPair.MetricPair.Untyped): MetricPair.MetricPair.Untyped => {
  const key = pair.metricKey
  const state = pair.metricState
  const help = libraryHelp[key.name]
  if (help !== undefined && Option.isNone(key.description)) {
    // The renderer reads the key's name, tags and description only.
    const described: MetricKey.MetricKey.Untyped = MetricState.isCounterState(state)
      ? MetricKey.taggedWithLabels(MetricKey.counter(key.name, { description: help }), key.tags)
      : MetricKey.taggedWithLabels(MetricKey.gauge(key.name, { description: help }), key.tags)
    return MetricPair.unsafeMake(described, state)
  }
  const counter = runtimeCounters[key.name]
  if (counter !== undefined && MetricState.isCounterState(state))
    return MetricPair.unsafeMake(
      MetricKey.taggedWithLabels(MetricKey.counter(counter.name, { description: counter.help }), key.tags),
      state,
    )
  if (key.name === "effect_fiber_active" && MetricState.isCounterState(state))
    return MetricPair.unsafeMake(
      MetricKey.taggedWithLabels(MetricKey.gauge(key.name, { description: "Fibers running now" }), key.tags),
      MetricState.gauge(Number(state.count)),
    )
  if (key.name === "effect_fiber_lifetimes" && MetricState.isHistogramState(state)) {
    const ms = (v: number) => v / 1000
    const buckets = [...state.buckets].map(([b, n]) => [ms(b), n] as const)
    return MetricPair.unsafeMake(
      MetricKey.taggedWithLabels(
        MetricKey.histogram(
          "effect_fiber_lifetime_seconds",
          MetricBoundaries.fromIterable(buckets.map(([b]) => b)),
          "Seconds fibers lived, from start to end",
        ),
        key.tags.filter((t) => t.key !== "time_unit"),
      ),
      MetricState.histogram({
        buckets,
        count: state.count,
        min: ms(state.min),
        max: ms(state.max),
        sum: ms(state.sum),
      }),
    )
  }
  return pair
}

const gauge = (name: string, help: string, value: number, labels: ReadonlyArray<MetricLabel.MetricLabel> = []) =>
  MetricPair.unsafeMake(
    MetricKey.taggedWithLabels(MetricKey.gauge(name, { description: help }), labels),
    MetricState.gauge(value),
  )

const counter = (name: string, help: string, value: number) =>
  MetricPair.unsafeMake(MetricKey.counter(name, { description: help }), MetricState.counter(value))

// What every Prometheus client library exports about its process, read at scrape time.
const processPairs = (): Array<MetricPair.MetricPair.Untyped> => {
  const cpu = process.cpuUsage()
  const mem = process.memoryUsage()
  return [
    counter("process_cpu_seconds_total", "User and system CPU seconds the process used", (cpu.user + cpu.system) / 1e6),
    gauge("process_resident_memory_bytes", "Resident memory of the process in bytes", mem.rss),
    gauge(
      "process_start_time_seconds",
      "Start time of the process since the Unix epoch in seconds",
      Math.round((Date.now() - process.uptime() * 1000) / 1000),
    ),
    gauge("nodejs_heap_size_used_bytes", "V8 heap in use in bytes", mem.heapUsed),
    gauge("nodejs_heap_size_total_bytes", "V8 heap reserved in bytes", mem.heapTotal),
    gauge("nodejs_external_memory_bytes", "Memory of C++ objects bound to JavaScript objects in bytes", mem.external),
  ]
}

// Free space where the node writes its state (the disk-low alert reads these); omitted if statfs fails.
const diskPairs = (dir: string): Effect.Effect<Array<MetricPair.MetricPair.Untyped>> =>
  Effect.promise(() =>
    statfs(dir).then(
      (s) => [
        gauge(
          "novacron_data_dir_size_bytes",
          "Size of the filesystem holding the data directory in bytes",
          s.blocks * s.bsize,
        ),
        gauge(
          "novacron_data_dir_available_bytes",
          "Bytes of the data directory's filesystem available to the agent",
          s.bavail * s.bsize,
        ),
      ],
      () => [],
    ),
  )

/**
 * What {@link expositionWith} adds to the registry's metrics.
 *
 * @since 0.2.0
 * @category models
 */
export interface ExpositionOptions {
  /** The data directory, for `novacron_data_dir_{size,available}_bytes`. */
  readonly dataDir?: string | undefined
}

/**
 * Every metric as Prometheus text: Effect's registry (its runtime metrics renamed to the
 * conventions), then the process metrics and, given a data directory, its filesystem's space.
 *
 * @since 0.2.0
 * @category rendering
 */
export const expositionWith = (options: ExpositionOptions): Effect.Effect<string> =>
  Effect.gen(function* () {
    const pairs = (yield* Metric.snapshot).map(conventional)
    const disk = options.dataDir === undefined ? [] : yield* diskPairs(options.dataDir)
    return Prometheus.render([...pairs, ...processPairs(), ...disk])
  })

/**
 * {@link expositionWith} without a data directory.
 *
 * @since 0.1.0
 * @category rendering
 */
export const exposition: Effect.Effect<string> = Effect.suspend(() => expositionWith({}))

/**
 * `/metrics` on `host:port`. `onStart` runs before it binds (the node records
 * `novacron_build_info` there). When the boot's shared context has the node's
 * {@link NodeHealth}, each scrape first runs the health checks and sets the health gauges
 * (`HealthMetrics`).
 *
 * @since 0.1.0
 * @category components
 */
export const component = (
  host: string,
  port: number,
  options: { readonly onStart?: Effect.Effect<void>; readonly dataDir?: string | undefined } = {},
): Component.Spec<MetricsEndpoint, ListenError> =>
  Component.spec({
    name: "metrics-endpoint",
    layer: Layer.scoped(
      MetricsEndpoint,
      Effect.gen(function* () {
        if (options.onStart !== undefined) yield* options.onStart
        const view = yield* Effect.serviceOption(NodeHealth)
        const sample = Option.match(view, { onNone: () => Effect.void, onSome: HealthMetrics.sample })
        const body = Effect.zipRight(sample, expositionWith({ dataDir: options.dataDir }))
        const bound = yield* serve(host, port, (url) =>
          url.pathname === "/metrics"
            ? Effect.map(body, (text) => ({ status: 200, type: Prometheus.contentType, body: text }))
            : Effect.succeed({ status: 404, type: "text/plain", body: "not found: try /metrics\n" }),
        )
        const url = `http://${host.includes(":") ? `[${host}]` : host}:${bound.port}/metrics`
        yield* Effect.logInfo(`metrics on ${url}`).pipe(Effect.annotateLogs({ name: "node.metrics", url }))
        return { url }
      }),
    ),
  })
