import { readdirSync } from "node:fs"
import { describe, expect, it } from "@effect/vitest"
import { Placement } from "@novacron/dwcp-itp"
import { Boot, Component } from "@novacron/init"
import { tempDir } from "@novacron/testing"
import { Context, Deferred, Effect, Metric, Option, Ref, Schema, Stream, SubscriptionRef } from "effect"
import { MlEngine, MlSettings } from "../src/index.js"

const settings = (over: Partial<typeof MlSettings.MlSettings.Encoded> = {}) =>
  Schema.decodeUnknownSync(MlSettings.MlSettings)(over)

/** Waits until the bandwidth (or the placement) model leaves `loading`. */
const settled = (engine: MlEngine.MlEngineApi, model: "bandwidth" | "placement" = "bandwidth") =>
  (model === "bandwidth" ? engine.bandwidthModel : engine.placementModel).changes.pipe(
    Stream.filter((s) => s.state !== "loading"),
    Stream.runHead,
    Effect.map((s) => s._tag === "Some" && s.value),
  )

// A link of ~100 MB/s with some noise: enough history for the LSTM's window.
const history = Array.from({ length: 40 }, (_, i) => 100e6 * (1 + 0.05 * Math.sin(i)))

describe("MlEngine", () => {
  it.scopedLive("a missing model: the baseline serves, and status, health and the log say why", () =>
    Effect.gen(function* () {
      const engine = yield* MlEngine.make(settings({ bandwidth_model: "/nonexistent/pba.onnx" }))
      const state = yield* settled(engine)
      expect(state).toMatchObject({ state: "fallback", serving: "baseline", baseline: "harmonic-mean(5)" })
      expect(state && "reason" in state && state.reason).toMatch(/\/nonexistent\/pba\.onnx.*cannot read model metadata/)
      const p = yield* engine.predictBandwidth(history)
      expect(p.predictor).toBe("harmonic-mean(5)")
      expect(p.oneSecond.mean).toBeGreaterThan(90e6)
      const health = yield* MlEngine.healthCheck.pipe(Effect.provideService(MlEngine.MlEngine, engine))
      expect(health).toMatchObject({ status: "degraded" })
      expect(health.message).toMatch(/unavailable.*harmonic-mean\(5\) serves/)
    }),
  )

  it.scopedLive(
    "the shipped LSTM loads in the background and then serves, writing nothing into $HOME",
    () =>
      Effect.gen(function* () {
        // onnxruntime's telemetry would create ~/.cache/Microsoft/DeveloperTools/.onnxruntime.
        const home = yield* tempDir
        const saved = { HOME: process.env.HOME, XDG_CACHE_HOME: process.env.XDG_CACHE_HOME }
        yield* Effect.acquireRelease(
          Effect.sync(() => {
            process.env.HOME = home
            delete process.env.XDG_CACHE_HOME
          }),
          () =>
            Effect.sync(() => {
              process.env.HOME = saved.HOME
              if (saved.XDG_CACHE_HOME !== undefined) process.env.XDG_CACHE_HOME = saved.XDG_CACHE_HOME
            }),
        )
        const engine = yield* MlEngine.make(settings())
        const state = yield* settled(engine)
        expect(state).toMatchObject({ state: "loaded", serving: "model", model: "lstm" })
        const p = yield* engine.predictBandwidth(history)
        expect(p.predictor).toBe("lstm")
        expect(p.status).toBe("ok")
        expect(p.oneSecond.mean).toBeGreaterThan(50e6)
        expect(p.oneSecond.mean).toBeLessThan(200e6)
        const health = yield* MlEngine.healthCheck.pipe(Effect.provideService(MlEngine.MlEngine, engine))
        expect(health.status).toBe("healthy")
        expect(readdirSync(home)).toEqual([])
      }),
    60_000,
  )

  it.scoped("recorded transfers update the prediction error histogram of their predictor", () =>
    Effect.gen(function* () {
      const engine = yield* MlEngine.make(settings({ enabled: false }))
      const metric = MlEngine.predictionError.pipe(Metric.tagged("predictor", "baseline"))
      const before = yield* Metric.value(metric)
      yield* engine.recordTransfer({ predicted: 90e6, measured: 100e6, predictor: "harmonic-mean(5)" })
      yield* engine.recordTransfer({ predicted: 150e6, measured: 100e6, predictor: "best(last-value)" })
      // Nothing measured: no ratio to record.
      yield* engine.recordTransfer({ predicted: 150e6, measured: 0, predictor: "harmonic-mean(5)" })
      const after = yield* Metric.value(metric)
      expect(after.count - before.count).toBe(2)
      expect(after.sum - before.sum).toBeCloseTo(0.1 + 0.5, 9)
      const lstm = yield* Metric.value(MlEngine.predictionError.pipe(Metric.tagged("predictor", "lstm")))
      yield* engine.recordTransfer({ predicted: 100e6, measured: 80e6, predictor: "lstm" })
      const lstmAfter = yield* Metric.value(MlEngine.predictionError.pipe(Metric.tagged("predictor", "lstm")))
      expect(lstmAfter.count - lstm.count).toBe(1)
      expect(lstmAfter.sum - lstm.sum).toBeCloseTo(0.25, 9)
    }),
  )

  it.scoped("disabled: no model is loaded, the baseline serves and says why", () =>
    Effect.gen(function* () {
      const calls = yield* Ref.make(0)
      const engine = yield* MlEngine.make(settings({ enabled: false }), () =>
        Effect.zipRight(
          Ref.update(calls, (n) => n + 1),
          Effect.never,
        ),
      )
      expect(yield* SubscriptionRef.get(engine.bandwidthModel)).toMatchObject({ state: "disabled" })
      expect(yield* SubscriptionRef.get(engine.placementModel)).toMatchObject({
        state: "disabled",
        reason: "ml.enabled is false",
      })
      expect((yield* engine.predictBandwidth(history)).predictor).toBe("harmonic-mean(5)")
      expect(yield* Ref.get(calls)).toBe(0)
    }),
  )

  it.scopedLive("the placement optimiser loads beside the bandwidth model, serves, and records its effect", () =>
    Effect.gen(function* () {
      // The bandwidth model never loads here: the placement slot does not wait for it.
      const engine = yield* MlEngine.make(settings(), () => Effect.never)
      expect(yield* settled(engine, "placement")).toMatchObject({
        state: "loaded",
        serving: "model",
        model: "fgd-rerank",
      })
      const optimizer = Option.getOrThrow(yield* engine.placementOptimizer)
      const placement = yield* Placement.make(
        Schema.decodeUnknownSync(Placement.PlacementSettings)({ placement: { policy: "binpack" } }),
      )
      yield* placement.setOptimizer(optimizer)
      const oneGpu = (id: string) => ({ id, cpuMilli: 32000, memoryMib: 65536, gpu: { model: "T4", count: 1 } })
      yield* placement.join(oneGpu("a"))
      yield* placement.join(oneGpu("b"))
      const byOptimizer = MlEngine.placementDecisions.pipe(Metric.tagged("chosen_by", "optimizer"))
      const byPolicy = MlEngine.placementDecisions.pipe(Metric.tagged("chosen_by", "policy"))
      const [opt0, pol0, avoided0] = yield* Effect.all([
        Metric.value(byOptimizer),
        Metric.value(byPolicy),
        Metric.value(MlEngine.fragmentationAvoided),
      ])
      // Empty hosts alike: the policy's choice stands. Then binpack would split the used GPU.
      yield* placement.place({ id: "w0", cpuMilli: 1000, memoryMib: 1024, gpuMilli: 400 })
      const placed = yield* placement.place({ id: "w1", cpuMilli: 1000, memoryMib: 1024, gpuMilli: 500 })
      expect(placed.explanation.optimizer?.name).toBe("fgd-rerank")
      const [opt1, pol1, avoided1] = yield* Effect.all([
        Metric.value(byOptimizer),
        Metric.value(byPolicy),
        Metric.value(MlEngine.fragmentationAvoided),
      ])
      expect([opt1.count - opt0.count, pol1.count - pol0.count]).toEqual([1, 1])
      expect(avoided1.count - avoided0.count).toBe(1)
      expect(avoided1.sum - avoided0.sum).toBeGreaterThan(0)
      const status = yield* engine.status
      expect(status.placement).toMatchObject({ state: "loaded" })
      // The bandwidth model is still loading: degraded, naming it alone.
      const health = yield* MlEngine.healthCheck.pipe(Effect.provideService(MlEngine.MlEngine, engine))
      expect(health).toMatchObject({ status: "degraded", details: { bandwidth: "loading", placement: "loaded" } })
      expect(health.message).toBe("bandwidth model loading; harmonic-mean(5) serves")
    }),
  )

  it.scopedLive(
    "a placement optimiser that does not load: the policy's choice stays, and status and health say why",
    () =>
      Effect.gen(function* () {
        const engine = yield* MlEngine.make(
          settings(),
          () => Effect.never,
          MlEngine.optimizerLoader(() => Promise.reject(new Error("Cannot find package '@novacron/dwcp-itp'"))),
        )
        const state = yield* settled(engine, "placement")
        expect(state).toMatchObject({
          state: "fallback",
          serving: "baseline",
          baseline: "the policy's first choice",
          reason: expect.stringMatching(/^placement optimiser unavailable: @novacron\/dwcp-itp did not load/),
        })
        expect(yield* engine.placementOptimizer).toEqual(Option.none())
        const health = yield* MlEngine.healthCheck.pipe(Effect.provideService(MlEngine.MlEngine, engine))
        expect(health.message).toMatch(/dwcp-itp did not load.*; the policy's first choice serves/)
      }),
  )

  it.scoped("ml.placement_optimizer false: no optimiser is loaded, the bandwidth model still is", () =>
    Effect.gen(function* () {
      const calls = yield* Ref.make(0)
      const engine = yield* MlEngine.make(
        settings({ placement_optimizer: false }),
        () => Effect.never,
        () =>
          Effect.zipRight(
            Ref.update(calls, (n) => n + 1),
            Effect.never,
          ),
      )
      expect(yield* SubscriptionRef.get(engine.placementModel)).toEqual({
        state: "disabled",
        serving: "baseline",
        baseline: "the policy's first choice",
        reason: "ml.placement_optimizer is false",
      })
      expect(yield* SubscriptionRef.get(engine.bandwidthModel)).toMatchObject({ state: "loading" })
      yield* Effect.yieldNow()
      expect(yield* Ref.get(calls)).toBe(0)
      const health = yield* MlEngine.healthCheck.pipe(Effect.provideService(MlEngine.MlEngine, engine))
      expect(health.message).toContain("ml.placement_optimizer is false; the policy's first choice serves")
    }),
  )

  it.scopedLive("a load that hangs is given up after load_timeout and said", () =>
    Effect.gen(function* () {
      const engine = yield* MlEngine.make(settings({ load_timeout: "50ms" }), () => Effect.never)
      const state = yield* settled(engine)
      expect(state).toMatchObject({ state: "fallback", reason: expect.stringMatching(/still loading after 50ms/) })
    }),
  )

  it.scopedLive("a slow model load does not delay READY: the boot finishes first, the model comes after", () =>
    Effect.gen(function* () {
      const events: Array<string> = []
      const gate = yield* Deferred.make<void>()
      const loaderStarted = yield* Deferred.make<void>()
      const slowLoader: MlEngine.BandwidthLoader = (_path, baseline) =>
        Effect.gen(function* () {
          events.push("load started")
          yield* Deferred.succeed(loaderStarted, undefined)
          yield* Deferred.await(gate)
          events.push("load finished")
          return {
            name: "lstm",
            predict: (xs) => Effect.map(baseline.predict(xs), (p) => ({ ...p, predictor: "lstm" })),
          }
        })
      const spec = MlEngine.component(settings(), slowLoader)
      const node = yield* Boot.boot([Component.place(spec, { phase: "services", criticality: "WARNING" })])
      events.push("READY")
      // Inside a boot the load does not even start before READY (it blocks the event loop a while).
      expect(events).toEqual(["READY"])
      yield* Deferred.await(loaderStarted)
      const engine = Context.get(node.context as Context.Context<MlEngine.MlEngine>, MlEngine.MlEngine)
      expect((yield* SubscriptionRef.get(engine.bandwidthModel)).state).toBe("loading")
      expect((yield* engine.predictBandwidth(history)).predictor).toBe("harmonic-mean(5)")
      yield* Deferred.succeed(gate, undefined)
      expect(yield* settled(engine)).toMatchObject({ state: "loaded" })
      expect((yield* engine.predictBandwidth(history)).predictor).toBe("lstm")
      expect(events).toEqual(["READY", "load started", "load finished"])
    }),
  )
})
