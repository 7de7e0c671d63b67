import { describe, expect, it } from "@effect/vitest"
import { Component } from "@novacron/init"
import { Context, Effect, Layer, Metric } from "effect"
import { MetricsEndpoint } from "../src/index.js"

describe("MetricsEndpoint", () => {
  it.live("serves every metric in Prometheus text on /metrics after onStart; 404 elsewhere", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const spec = MetricsEndpoint.component("127.0.0.1", 0, {
          onStart: Metric.set(Metric.gauge("monitoring_test_started"), 1),
        })
        expect("phase" in spec).toBe(false)
        const ctx = yield* Layer.build(Component.place(spec, { phase: "post-init", criticality: "WARNING" }).layer)
        const { url } = Context.get(
          ctx as Context.Context<MetricsEndpoint.MetricsEndpoint>,
          MetricsEndpoint.MetricsEndpoint,
        )
        expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/)
        const r = yield* Effect.promise(() => fetch(url))
        expect(r.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/)
        expect(yield* Effect.promise(() => r.text())).toMatch(/^monitoring_test_started 1$/m)
        expect((yield* Effect.promise(() => fetch(url.replace("/metrics", "/x")))).status).toBe(404)
      }),
    ),
  )
})
