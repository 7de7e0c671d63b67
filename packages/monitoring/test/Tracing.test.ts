import { describe, expect, it } from "@effect/vitest"
import { otlpReceiver } from "@novacron/testing"
import { Effect, Option } from "effect"
import { Tracing } from "../src/index.js"

const resource = { serviceName: "novacron-node", serviceVersion: "1.2.3", instanceId: "node-a" }

const until = (what: string, ok: () => boolean, timeoutMs = 10_000) =>
  Effect.promise(async () => {
    const deadline = Date.now() + timeoutMs
    while (!ok()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
      await new Promise((r) => setTimeout(r, 50))
    }
  })

describe("Tracing", () => {
  it.scopedLive("exports spans over OTLP/HTTP JSON to <endpoint>/v1/traces, with the node as resource", () =>
    Effect.gen(function* () {
      const receiver = yield* otlpReceiver
      // A long export interval: the spans arrive because closing the layer's scope flushes them.
      yield* Effect.gen(function* () {
        yield* Effect.sleep("1 millis").pipe(Effect.withSpan("child", { attributes: { component: "database" } }))
      }).pipe(
        Effect.withSpan("parent"),
        Effect.provide(
          Tracing.layer({ tracing: true, tracing_endpoint: `${receiver.endpoint}/` }, resource, {
            exportInterval: 60_000,
          }),
        ),
      )
      yield* until("two spans", () => receiver.spans.length >= 2)
      const parent = receiver.spans.find((s) => s.name === "parent")!
      const child = receiver.spans.find((s) => s.name === "child")!
      expect(child.traceId).toBe(parent.traceId)
      expect(child.parentSpanId).toBe(parent.spanId)
      expect(parent.parentSpanId).toBeUndefined()
      expect(child.attributes.component).toBe("database")
      expect(parent.resource).toMatchObject({
        "service.name": "novacron-node",
        "service.version": "1.2.3",
        "service.instance.id": "node-a",
      })
      expect(receiver.rejected).toEqual([])
    }),
  )

  it.scopedLive("exports nothing when tracing is off or has no endpoint", () =>
    Effect.gen(function* () {
      const receiver = yield* otlpReceiver
      for (const settings of [
        { tracing: false, tracing_endpoint: receiver.endpoint },
        { tracing: true, tracing_endpoint: "" },
      ])
        yield* Effect.void.pipe(Effect.withSpan("quiet"), Effect.provide(Tracing.layer(settings, resource)))
      yield* Effect.sleep("200 millis")
      expect(receiver.spans).toEqual([])
    }),
  )

  it.effect("traceparent carries a span; continueFrom makes the receiver's span its child", () =>
    Effect.gen(function* () {
      const sent = yield* Effect.gen(function* () {
        const tp = yield* Tracing.traceparent
        const span = yield* Effect.currentSpan
        return { tp: Option.getOrThrow(tp), traceId: span.traceId, spanId: span.spanId }
      }).pipe(Effect.withSpan("sender"))
      expect(sent.tp).toBe(`00-${sent.traceId}-${sent.spanId}-01`)
      const received = yield* Effect.currentSpan.pipe(Effect.withSpan("receiver"), Tracing.continueFrom(sent.tp))
      expect(received.traceId).toBe(sent.traceId)
      expect(Option.map(received.parent, (p) => p.spanId)).toEqual(Option.some(sent.spanId))
      expect(yield* Tracing.traceparent).toEqual(Option.none())
    }),
  )

  it.effect("a malformed or absent traceparent starts a new trace", () =>
    Effect.gen(function* () {
      const good = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
      expect(Option.isSome(Tracing.parse(good))).toBe(true)
      for (const bad of [
        undefined,
        "",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
        "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
        "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
        `00-${"a".repeat(31)}-b7ad6b7169203331-01`,
      ]) {
        expect(Tracing.parse(bad), String(bad)).toEqual(Option.none())
        const span = yield* Effect.currentSpan.pipe(Effect.withSpan("fresh"), Tracing.continueFrom(bad))
        expect(Option.isNone(span.parent)).toBe(true)
      }
    }),
  )

  it("tracesUrl appends /v1/traces once", () => {
    expect(Tracing.tracesUrl("http://otel:4318")).toBe("http://otel:4318/v1/traces")
    expect(Tracing.tracesUrl("http://otel:4318/")).toBe("http://otel:4318/v1/traces")
    expect(Tracing.tracesUrl("http://otel:4318/v1/traces")).toBe("http://otel:4318/v1/traces")
  })
})
