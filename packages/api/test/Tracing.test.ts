// API request spans, exported to a fake OTLP collector: one span per request named by its route
// template, with method, status and the principal's role; a client's traceparent is its parent.
import { describe, expect, it } from "@effect/vitest"
import { Tracing } from "@novacron/monitoring"
import { otlpReceiver } from "@novacron/testing"
import { Effect } from "effect"
import { call, start, tokens } from "./helpers.js"

const until = (what: string, ok: () => boolean, timeoutMs = 10_000) =>
  Effect.promise(async () => {
    const deadline = Date.now() + timeoutMs
    while (!ok()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
      await new Promise((r) => setTimeout(r, 50))
    }
  })

const clientTrace = "0af7651916cd43dd8448eb211c80319c"
const clientSpan = "b7ad6b7169203331"

describe("ApiServer tracing", () => {
  it.scopedLive("one span per request: route template, method, status, role; a traceparent is its parent", () =>
    Effect.gen(function* () {
      const receiver = yield* otlpReceiver
      yield* Effect.scoped(
        Effect.gen(function* () {
          const fx = yield* start("token")
          const traceparent = `00-${clientTrace}-${clientSpan}-01`
          yield* Effect.promise(() =>
            call(fx, "POST", "/v1/vms", {
              token: tokens.operator,
              body: { id: "t1", vcpus: 1, memory_mb: 64 },
              headers: { traceparent },
            }),
          )
          yield* Effect.promise(() =>
            call(fx, "POST", "/v1/vms/t1/start", { token: tokens.reader, headers: { traceparent } }),
          )
          yield* Effect.promise(() => call(fx, "GET", "/v1/vms/t1", { token: tokens.admin }))
          // A malformed traceparent starts a new trace; an unknown path has no route.
          yield* Effect.promise(() =>
            call(fx, "GET", "/v1/vms", { token: tokens.admin, headers: { traceparent: "00-zz-1-01" } }),
          )
          yield* Effect.promise(() => call(fx, "GET", "/v1/nowhere/abc", { token: tokens.admin }))
        }).pipe(
          Effect.provide(
            Tracing.layer(
              { tracing: true, tracing_endpoint: receiver.endpoint },
              { serviceName: "novacron-node", instanceId: "node-a" },
              { exportInterval: 60_000 },
            ),
          ),
        ),
      )
      yield* until(
        "five request spans",
        () => receiver.spans.filter((s) => s.name.startsWith("GET") || s.name.startsWith("POST")).length >= 5,
      )
      const byName = (name: string) => receiver.spans.filter((s) => s.name === name)
      const created = byName("POST /v1/vms")
      expect(created).toHaveLength(1)
      expect(created[0]!.traceId).toBe(clientTrace)
      expect(created[0]!.parentSpanId).toBe(clientSpan)
      expect(created[0]!.attributes).toMatchObject({
        "http.request.method": "POST",
        "http.route": "/v1/vms",
        "http.response.status_code": 201,
        "novacron.principal.role": "operator",
      })
      const refused = byName("POST /v1/vms/:id/start")[0]!
      expect(refused.traceId).toBe(clientTrace)
      expect(refused.attributes).toMatchObject({
        "http.route": "/v1/vms/:id/start",
        "http.response.status_code": 403,
        "novacron.principal.role": "reader",
      })
      const shown = byName("GET /v1/vms/:id")[0]!
      expect(shown.parentSpanId).toBeUndefined()
      expect(shown.traceId).not.toBe(clientTrace)
      expect(shown.attributes).toMatchObject({ "http.response.status_code": 200, "novacron.principal.role": "admin" })
      const listed = byName("GET /v1/vms")[0]!
      expect(listed.parentSpanId).toBeUndefined()
      const missing = byName("GET")[0]!
      expect(missing.attributes["http.route"]).toBeUndefined()
      expect(missing.attributes["http.response.status_code"]).toBe(404)
      // No raw path, query or header (tokens) reaches the collector: the platform's tracer is off.
      for (const s of receiver.spans) {
        expect(s.name).not.toMatch(/t1|nowhere|http\.server/)
        expect(Object.keys(s.attributes).filter((k) => /url|header/.test(k))).toEqual([])
      }
      expect(receiver.rejected).toEqual([])
    }),
  )
})
