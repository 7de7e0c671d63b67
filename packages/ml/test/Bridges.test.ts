import { describe, expect, it } from "@effect/vitest"
import { Placement } from "@novacron/dwcp-itp"
import type { Predictor } from "@novacron/dwcp-pba"
import { Context, Deferred, Effect, Exit, Layer, Schema, Scope, Stream, SubscriptionRef } from "effect"
import * as MlEngine from "../src/MlEngine.js"
import * as MlSettings from "../src/MlSettings.js"
import * as OptimizerBridge from "../src/OptimizerBridge.js"
import * as PredictorBridge from "../src/PredictorBridge.js"

const history = Array.from({ length: 40 }, (_, i) => 100e6 * (1 + 0.05 * Math.sin(i)))

/** A bandwidth loader that waits for `gate`, then serves an "lstm" (or fails with `fail`). */
const gated =
  (gate: Deferred.Deferred<void, string>): MlEngine.BandwidthLoader =>
  (path, baseline) =>
    Deferred.await(gate).pipe(
      Effect.mapError((reason) => new MlEngine.ModelUnavailable({ model: "bandwidth", path, reason })),
      Effect.as({
        name: "lstm",
        predict: (xs: ArrayLike<number>) => Effect.map(baseline.predict(xs), (p) => ({ ...p, predictor: "lstm" })),
      }),
    )

const until = <A>(ref: SubscriptionRef.SubscriptionRef<A>, p: (a: A) => boolean) =>
  Stream.runHead(Stream.filter(ref.changes, p))

/** A consumer like DWCP: its own baseline until a predictor is installed. */
const consumer = Effect.gen(function* () {
  const installed = yield* SubscriptionRef.make<Predictor.Predictor | undefined>(undefined)
  return {
    installed,
    install: (p: Predictor.Predictor | undefined) => SubscriptionRef.set(installed, p),
    // What the consumer's prediction names, and what it reports as serving.
    predict: Effect.flatMap(SubscriptionRef.get(installed), (p) =>
      p === undefined
        ? Effect.succeed({ predictor: "last-value", serving: "own baseline" })
        : Effect.map(p.predict(history), (x) => ({ predictor: x.predictor, serving: p.name })),
    ),
  }
})

describe("PredictorBridge", () => {
  it.scopedLive("installs the engine's predictor at once and follows the model: loading, then loaded", () =>
    Effect.gen(function* () {
      const gate = yield* Deferred.make<void, string>()
      const engine = MlEngine.layer(MlSettings.defaults, gated(gate), () => Effect.never)
      const dwcp = yield* consumer
      const scope = yield* Scope.make()
      yield* Layer.buildWithScope(PredictorBridge.component(dwcp.install).layer.pipe(Layer.provide(engine)), scope)
      // Installed before the component reported started: the engine's baseline while the model loads.
      expect(yield* dwcp.predict).toEqual({
        predictor: "harmonic-mean(5)",
        serving: "ml-engine: harmonic-mean(5) (model loading)",
      })
      yield* Deferred.succeed(gate, undefined)
      yield* until(dwcp.installed, (p) => p?.name === "ml-engine: lstm")
      expect(yield* dwcp.predict).toEqual({ predictor: "lstm", serving: "ml-engine: lstm" })
      // Stopped: the consumer is back on its own baseline.
      yield* Scope.close(scope, Exit.void)
      expect(yield* dwcp.predict).toEqual({ predictor: "last-value", serving: "own baseline" })
    }),
  )

  it.scopedLive("a model that fails: the consumer is told the engine's baseline serves, and why", () =>
    Effect.gen(function* () {
      const gate = yield* Deferred.make<void, string>()
      const engine = MlEngine.layer(MlSettings.defaults, gated(gate), () => Effect.never)
      const dwcp = yield* consumer
      yield* Layer.build(PredictorBridge.component(dwcp.install).layer.pipe(Layer.provide(engine)))
      yield* Deferred.fail(gate, "bad metadata")
      yield* until(dwcp.installed, (p) => p?.name.includes("fallback") === true)
      expect(yield* dwcp.predict).toEqual({
        predictor: "harmonic-mean(5)",
        serving: "ml-engine: harmonic-mean(5) (fallback: bandwidth model (shipped) unavailable: bad metadata)",
      })
    }),
  )
})

describe("OptimizerBridge", () => {
  const oneGpu = (id: string) => ({ id, cpuMilli: 32000, memoryMib: 65536, gpu: { model: "T4", count: 1 } })
  const binpack = Schema.decodeUnknownSync(Placement.PlacementSettings)({ placement: { policy: "binpack" } })

  it.scopedLive("installs the optimiser once loaded: a placement's choice and explanation change", () =>
    Effect.gen(function* () {
      const gate = yield* Deferred.make<void>()
      // The real optimiser, loaded once `gate` opens.
      const loader: MlEngine.PlacementLoader = (onDecision) =>
        Effect.zipRight(Deferred.await(gate), MlEngine.optimizerLoader()(onDecision))
      const installed = yield* Deferred.make<void>()
      const install: OptimizerBridge.Install<Placement.Placement> = (o) =>
        Effect.flatMap(Placement.Placement, (p) => p.setOptimizer(o)).pipe(
          Effect.zipRight(o === undefined ? Effect.void : Deferred.succeed(installed, undefined)),
        )
      const ctx = yield* Layer.build(
        OptimizerBridge.component(install).layer.pipe(
          Layer.provideMerge(Placement.layer(binpack)),
          Layer.provideMerge(MlEngine.layer(MlSettings.defaults, () => Effect.never, loader)),
        ),
      )
      const placement = Context.get(ctx, Placement.Placement)
      yield* placement.join(oneGpu("a"))
      yield* placement.join(oneGpu("b"))
      const first = yield* placement.place({ id: "w0", cpuMilli: 1000, memoryMib: 1024, gpuMilli: 400 })
      const used = first.allocation.host
      // Still loading: the policy's choice (binpack splits the used GPU).
      const before = yield* placement.place({ id: "w1", cpuMilli: 1000, memoryMib: 1024, gpuMilli: 500 })
      expect(before.allocation.host).toBe(used)
      expect(before.explanation.optimizer).toBeUndefined()
      yield* placement.release("w1")
      yield* Deferred.succeed(gate, undefined)
      yield* Deferred.await(installed)
      const after = yield* placement.place({ id: "w2", cpuMilli: 1000, memoryMib: 1024, gpuMilli: 500 })
      expect(after.explanation.optimizer).toEqual({ name: "fgd-rerank", chose: after.allocation.host })
      expect(after.allocation.host).not.toBe(used)
    }),
  )

  it.scopedLive("an optimiser that does not load is never installed: the policy's choice stands", () =>
    Effect.gen(function* () {
      const installs: Array<string | undefined> = []
      const engine = MlEngine.layer(
        MlSettings.defaults,
        () => Effect.never,
        () => Effect.fail(new MlEngine.ModelUnavailable({ model: "placement", path: "", reason: "no module" })),
      )
      const ctx = yield* Layer.build(
        OptimizerBridge.component((o) => Effect.sync(() => void installs.push(o?.name))).layer.pipe(
          Layer.provideMerge(engine),
        ),
      )
      yield* until(Context.get(ctx, MlEngine.MlEngine).placementModel, (s) => s.state === "fallback")
      yield* Effect.sleep(20)
      expect(installs.every((n) => n === undefined)).toBe(true)
      expect(installs.length).toBeGreaterThan(0)
    }),
  )
})
