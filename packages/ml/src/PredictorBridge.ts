/**
 * Serves the engine's bandwidth predictor to a consumer that boots before it (DWCP, in the
 * agent): the consumer predicts with its own baseline until this component installs the engine's
 * predictor, and is told again at each change of the model's state (loading, then loaded or
 * fallback), so what it reports as serving stays true. The engine does not depend on DWCP: the
 * host hands this component the installer (`Dwcp.setPredictor`).
 *
 * @since 0.2.0
 */
import type { Predictor } from "@novacron/dwcp-pba"
import { Component } from "@novacron/init"
import { Effect, Layer, type Scope, Stream, SubscriptionRef } from "effect"
import { MlEngine, type MlEngineApi, type ModelState } from "./MlEngine.js"

/**
 * Installs a predictor into the consumer; `undefined` takes it back (the consumer's baseline).
 *
 * @since 0.2.0
 * @category models
 */
export type Install<R> = (predictor: Predictor.Predictor | undefined) => Effect.Effect<void, never, R>

/**
 * What the consumer reports as serving for a state of the bandwidth model, e.g. `ml-engine: lstm`
 * or `ml-engine: harmonic-mean(5) (model loading)`. Each prediction still names the predictor
 * that made it.
 *
 * @since 0.2.0
 * @category models
 */
export const label = (state: ModelState): string => {
  switch (state.state) {
    case "loaded":
      return `ml-engine: ${state.model}`
    case "loading":
      return `ml-engine: ${state.baseline} (model loading)`
    case "disabled":
      return `ml-engine: ${state.baseline} (${state.reason ?? "disabled"})`
    case "fallback":
      return `ml-engine: ${state.baseline} (fallback: ${state.reason})`
  }
}

/**
 * The engine's served predictor under the label of `state`.
 *
 * @since 0.2.0
 * @category constructors
 */
export const served = (engine: MlEngineApi, state: ModelState): Predictor.Predictor => ({
  name: label(state),
  predict: engine.predictBandwidth,
})

/**
 * Installs the engine's predictor now and again at each change of the model's state, until the
 * scope closes; then takes it back.
 *
 * @since 0.2.0
 * @category constructors
 */
export const bridge = <R>(install: Install<R>): Effect.Effect<void, never, MlEngine | R | Scope.Scope> =>
  Effect.gen(function* () {
    const engine = yield* MlEngine
    const serve = (state: ModelState) =>
      Effect.zipRight(
        install(served(engine, state)),
        Effect.logDebug(`ml: bandwidth predictions served as ${label(state)}`).pipe(
          Effect.annotateLogs({ name: "ml.predictor_served" }),
        ),
      )
    yield* Effect.addFinalizer(() => install(undefined))
    // Installed before the component reports started; `changes` starts with the state current
    // when the fiber subscribes, so a change in between is not missed (the repeat is harmless).
    yield* serve(yield* SubscriptionRef.get(engine.bandwidthModel))
    yield* Effect.forkScoped(Stream.runForEach(engine.bandwidthModel.changes, serve))
  })

/**
 * The `bandwidth-predictor` component: {@link bridge} for as long as it runs.
 *
 * @example
 * ```ts
 * import { PredictorBridge } from "@novacron/ml"
 * import { Effect } from "effect"
 *
 * const spec = PredictorBridge.component(() => Effect.void)
 * console.log(spec.name) // "bandwidth-predictor"
 * ```
 *
 * @since 0.2.0
 * @category components
 */
export const component = <R>(install: Install<R>) =>
  Component.spec({
    name: "bandwidth-predictor",
    description: "serves the ML engine's bandwidth predictor to DWCP, following the model's state",
    layer: Layer.scopedDiscard(bridge(install)),
    expectedDuration: "1 millis",
  })
