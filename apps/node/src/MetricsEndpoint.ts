import { Component, Prometheus } from "@novacron/init"
import { Context, Effect, Layer, Metric, MetricPair, MetricState } from "effect"
import { serve } from "./HttpEndpoint.js"
import * as Version from "./Version.js"

/** The metrics endpoint as it was bound. */
export class MetricsEndpoint extends Context.Tag("@novacron/node/MetricsEndpoint")<
  MetricsEndpoint,
  { readonly url: string }
>() {}

// Effect keeps these as counters it also decrements; Prometheus counters only go up.
const gauges = new Set(["effect_fiber_active"])

/** Every metric as Prometheus text, with the up-and-down counters above exported as gauges. */
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
 * `/metrics` in Prometheus text format on `monitoring.metrics_port`, with
 * `novacron_build_info`. The boot table places it (post-init, WARNING).
 */
export const component = (host: string, port: number) =>
  Component.spec({
    name: "metrics-endpoint",
    layer: Layer.scoped(
      MetricsEndpoint,
      Effect.gen(function* () {
        yield* Version.recordBuildInfo
        const bound = yield* serve(host, port, async (_req, url) =>
          url.pathname === "/metrics"
            ? { status: 200, type: Prometheus.contentType, body: await Effect.runPromise(exposition) }
            : { status: 404, type: "text/plain", body: "not found: try /metrics\n" },
        )
        const url = `http://${host.includes(":") ? `[${host}]` : host}:${bound.port}/metrics`
        yield* Effect.logInfo(`metrics on ${url}`).pipe(Effect.annotateLogs({ name: "node.metrics", url }))
        return { url }
      }),
    ),
  })
