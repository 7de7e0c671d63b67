/**
 * Serves the engine's placement optimiser to the placement service (dwcp-itp's `Placement`, in
 * the agent): installed with `setOptimizer` once loaded, taken back when it is not (placement then
 * keeps its policy's first choice), following the model's state. The host hands this component
 * the installer, so the engine does not need the placement service in its context.
 *
 * @since 0.2.0
 */
import { Component } from "@novacron/init"
import { Effect, Layer, Option, type Scope, Stream, SubscriptionRef } from "effect"
import { MlEngine, type ModelState, type PlacementOptimizer } from "./MlEngine.js"

/**
 * Installs an optimiser into placement; `undefined` removes it (the policy's choice stands).
 *
 * @since 0.2.0
 * @category models
 */
export type Install<R> = (optimizer: PlacementOptimizer | undefined) => Effect.Effect<void, never, R>

/**
 * Installs the optimiser whenever the placement model is loaded and removes it otherwise, until
 * the scope closes; then removes it.
 *
 * @since 0.2.0
 * @category constructors
 */
export const bridge = <R>(install: Install<R>): Effect.Effect<void, never, MlEngine | R | Scope.Scope> =>
  Effect.gen(function* () {
    const engine = yield* MlEngine
    const follow = (state: ModelState) =>
      Effect.flatMap(engine.placementOptimizer, (o) =>
        state.state === "loaded" && Option.isSome(o)
          ? Effect.zipRight(
              install(o.value),
              Effect.logInfo(`ml: placement optimiser ${o.value.name} installed`).pipe(
                Effect.annotateLogs({ name: "ml.optimizer_installed", optimizer: o.value.name }),
              ),
            )
          : Effect.zipRight(
              install(undefined),
              Effect.logDebug(
                `ml: placement keeps ${state.state === "loaded" ? "its policy's choice" : state.baseline} (${state.state})`,
              ),
            ),
      )
    yield* Effect.addFinalizer(() => install(undefined))
    yield* follow(yield* SubscriptionRef.get(engine.placementModel))
    yield* Effect.forkScoped(Stream.runForEach(engine.placementModel.changes, follow))
  })

/**
 * The `placement-optimizer` component: {@link bridge} for as long as it runs.
 *
 * @example
 * ```ts
 * import { OptimizerBridge } from "@novacron/ml"
 * import { Effect } from "effect"
 *
 * const spec = OptimizerBridge.component(() => Effect.void)
 * console.log(spec.name) // "placement-optimizer"
 * ```
 *
 * @since 0.2.0
 * @category components
 */
export const component = <R>(install: Install<R>) =>
  Component.spec({
    name: "placement-optimizer",
    description: "installs the ML engine's placement optimiser into placement, following the model's state",
    layer: Layer.scopedDiscard(bridge(install)),
    expectedDuration: "1 millis",
  })
