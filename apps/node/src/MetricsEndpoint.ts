import { Component, Prometheus } from "@novacron/init"
import { Context, Effect, Layer } from "effect"
import { serve } from "./HttpEndpoint.js"

/** The metrics endpoint as it was bound. */
export class MetricsEndpoint extends Context.Tag("@novacron/node/MetricsEndpoint")<
  MetricsEndpoint,
  { readonly url: string }
>() {}

/**
 * `/metrics` in Prometheus text format on `monitoring.metrics_port`. A post-init WARNING component:
 * a node without its metrics endpoint still does its work.
 */
export const component = (host: string, port: number) =>
  Component.make({
    name: "metrics-endpoint",
    phase: "post-init",
    criticality: "WARNING",
    layer: Layer.scoped(
      MetricsEndpoint,
      Effect.map(
        serve(host, port, async (_req, url) =>
          url.pathname === "/metrics"
            ? { status: 200, type: Prometheus.contentType, body: await Effect.runPromise(Prometheus.snapshot) }
            : { status: 404, type: "text/plain", body: "not found: try /metrics\n" },
        ),
        ({ port }) => ({ url: `http://${host.includes(":") ? `[${host}]` : host}:${port}/metrics` }),
      ),
    ),
  })
