/**
 * `/metrics` in Prometheus text format: every Effect metric of the process, as a component spec
 * the host places (the node's boot table: post-init, WARNING).
 *
 * @since 0.1.0
 */
import { Component, Prometheus } from "@novacron/init"
import { Context, Effect, Layer, Metric, MetricPair, MetricState } from "effect"
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

// Effect keeps these as counters it also decrements; Prometheus counters only go up.
const gauges = new Set(["effect_fiber_active"])

/**
 * Every metric as Prometheus text, with the up-and-down counters above exported as gauges.
 *
 * @since 0.1.0
 * @category rendering
 */
export const exposition: Effect.Effect<string> = Effect.map(Metric.snapshot, (pairs) =>
  Prometheus.render(
    pairs.map((pair) =>
      gauges.has(pair.metricKey.name) && MetricState.isCounterState(pair.metricState)
        ? MetricPair.unsafeMake(pair.metricKey, MetricState.gauge(Number(pair.metricState.count)))
        : pair,
    ),
  ),
)

/**
 * `/metrics` on `host:port`. `onStart` runs before it binds (the node records
 * `novacron_build_info` there).
 *
 * @since 0.1.0
 * @category components
 */
export const component = (
  host: string,
  port: number,
  options: { readonly onStart?: Effect.Effect<void> } = {},
): Component.Spec<MetricsEndpoint, ListenError> =>
  Component.spec({
    name: "metrics-endpoint",
    layer: Layer.scoped(
      MetricsEndpoint,
      Effect.gen(function* () {
        if (options.onStart !== undefined) yield* options.onStart
        const bound = yield* serve(host, port, (url) =>
          url.pathname === "/metrics"
            ? Effect.map(exposition, (body) => ({ status: 200, type: Prometheus.contentType, body }))
            : Effect.succeed({ status: 404, type: "text/plain", body: "not found: try /metrics\n" }),
        )
        const url = `http://${host.includes(":") ? `[${host}]` : host}:${bound.port}/metrics`
        yield* Effect.logInfo(`metrics on ${url}`).pipe(Effect.annotateLogs({ name: "node.metrics", url }))
        return { url }
      }),
    ),
  })
