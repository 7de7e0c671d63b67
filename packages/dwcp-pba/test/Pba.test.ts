import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Boot, Component } from "@novacron/init"
import { type Context, Effect, Exit, Layer, Ref, Schema, Scope, Stream, TestClock } from "effect"
import { type Allocation, Lstm, Pba, PbaComponent, Predictor } from "../src/index.js"
import reference from "./fixtures/lstm-reference.json" with { type: "json" }

const settings = (raw: unknown = {}) => Schema.decodeUnknownSync(Pba.PbaSettings)(raw)

describe("Pba service", () => {
  it.scoped("loads the model in the background, then predicts and allocates with the LSTM", () =>
    Effect.gen(function* () {
      const pba = yield* Pba.make(settings())
      expect((yield* pba.awaitModel)._tag).toBe("Ready")
      for (const x of reference.samples[2]!) yield* pba.push("wan0", x)
      const pred = yield* pba.predict("wan0")
      expect(pred).toMatchObject({ predictor: "lstm", status: "ok" })
      const { capacity, grants } = yield* pba.allocate("wan0", [{ id: "vm-1", weight: 2 }, { id: "vm-2" }])
      expect(capacity).toBe(pred.oneSecond.mean)
      expect(grants[0]!.rate).toBeCloseTo(2 * grants[1]!.rate, 3)
      expect(grants[0]!.rate + grants[1]!.rate).toBeCloseTo(capacity, 3)
    }),
  )

  it.scoped("with v3 prediction disabled uses the fallback baseline, not degraded", () =>
    Effect.gen(function* () {
      const pba = yield* Pba.make(settings({ enableV3Prediction: false, fallback: "last-value" }))
      yield* pba.record("l", 1000, 0)
      yield* pba.record("l", 3000, 500)
      yield* pba.advance(1000)
      const pred = yield* pba.predict("l")
      expect(pred).toMatchObject({ predictor: "last-value", status: "ok" })
      expect(pred.oneSecond.mean).toBe(4000)
      expect((yield* pba.modelStatus)._tag).toBe("Disabled")
    }),
  )

  it.scoped("loadModel false: no model loads; the baseline predicts, or the predictor the caller passes", () =>
    Effect.gen(function* () {
      const pba = yield* Pba.make(settings({ loadModel: false }))
      // Settled at once: nothing is loading (with a load this would be Ready after onnxruntime loads).
      expect(yield* pba.modelStatus).toEqual({ _tag: "Disabled" })
      expect(yield* pba.awaitModel).toEqual({ _tag: "Disabled" })
      for (const x of reference.samples[2]!) yield* pba.push("wan0", x)
      expect(yield* pba.predict("wan0")).toMatchObject({ predictor: "last-value", status: "ok" })
      expect(pba.baseline).toBe("last-value")
      const served = Predictor.harmonicMean(3)
      const pred = yield* pba.predict("wan0", served)
      expect(pred).toEqual(served.predictSync(reference.samples[2]!))
    }),
  )

  it.scoped("an unusable model leaves the service up on the fallback, degraded", () =>
    Effect.gen(function* () {
      const pba = yield* Pba.make(settings({ modelPath: join(import.meta.dirname, "no-such-model.onnx") }))
      expect((yield* pba.awaitModel)._tag).toBe("Unavailable")
      for (const x of reference.samples[2]!) yield* pba.push("wan0", x)
      const pred = yield* pba.predict("wan0")
      expect(pred.status).toBe("degraded")
      expect(pred.oneSecond).toEqual(Predictor.lastValue().predictSync(reference.samples[2]!).oneSecond)
    }),
  )

  it.effect("the layer builds, serves and releases the model session with its scope", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const ctx = yield* Layer.buildWithScope(Pba.layer(settings()), scope)
      const pba = yield* Effect.provide(Pba.Pba, ctx)
      expect((yield* pba.awaitModel)._tag).toBe("Ready")
      expect(yield* Effect.provide(PbaComponent.healthCheck, ctx)).toMatchObject({ status: "healthy" })
      yield* Scope.close(scope, Exit.void)
    }),
  )

  it.scoped("re-allocates each period and emits when the prediction or the transfers change", () =>
    Effect.gen(function* () {
      const pba = yield* Pba.make(settings({ enableV3Prediction: false, fallback: "last-value" }))
      const transfers = yield* Ref.make<ReadonlyArray<Allocation.Transfer>>([{ id: "a" }, { id: "b" }])
      yield* pba.push("l", 1000)
      const seen = yield* Ref.make<Array<Pba.LinkAllocation>>([])
      yield* pba.allocations("l", Ref.get(transfers)).pipe(
        Stream.runForEach((a) => Ref.update(seen, (xs) => [...xs, a])),
        Effect.forkScoped,
      )
      yield* TestClock.adjust("10 millis")
      yield* TestClock.adjust("1 second") // same history, same transfers: nothing new
      expect((yield* Ref.get(seen)).map((a) => a.capacity)).toEqual([1000])
      yield* pba.push("l", 3000)
      yield* TestClock.adjust("1 second")
      yield* Ref.set(transfers, [{ id: "a", weight: 2 }, { id: "b" }])
      yield* TestClock.adjust("1 second")
      const got = yield* Ref.get(seen)
      expect(got.map((a) => a.grants.map((g) => Math.round(g.rate)))).toEqual([
        [500, 500],
        [1500, 1500],
        [2000, 1000],
      ])
    }),
  )

  it("rejects invalid settings", () => {
    expect(() => settings({ window: 0 })).toThrow()
    expect(() => settings({ fallback: "oracle" })).toThrow()
    expect(Lstm.defaultModelPath.endsWith("model/pba-lstm.onnx")).toBe(true)
  })
})

describe("as an @novacron/init component", () => {
  const bootWith = (raw: unknown) =>
    Effect.gen(function* () {
      const node = yield* Boot.boot([
        Component.place(PbaComponent.component(settings(raw)), { phase: "services", criticality: "DEGRADED" }),
      ])
      const pba = yield* Effect.provide(Pba.Pba, node.context as Context.Context<Pba.Pba>)
      yield* pba.awaitModel
      const health = yield* node.health
      yield* node.shutdown
      return health.components.find((c) => c.name === "dwcp-pba")
    })

  it.live("boots under the kernel: healthy with the shipped model, degraded without a usable one", () =>
    Effect.scoped(
      Effect.gen(function* () {
        expect(yield* bootWith({})).toMatchObject({ status: "running", health: "healthy" })
        const bad = yield* bootWith({ modelPath: "/nonexistent/m.onnx" })
        expect(bad).toMatchObject({ status: "running", health: "degraded" })
        expect(bad?.message).toMatch(/unavailable/)
      }),
    ),
  )
})
