/**
 * The ML engine: the one place that loads the agent's models and serves them. The bandwidth
 * predictor (dwcp-pba's LSTM) loads in the background after the component starts, so it never
 * delays READY; until it is loaded, and for good when it is missing or fails, the engine serves
 * the baseline (harmonic mean of the last samples) and says so (`ml.fallback` log, `status`,
 * the component's health). Placement is served by dwcp-itp's policy (best-fit packing) with no
 * optimiser hook: this build ships no placement model, and `status` says that too.
 *
 * Accuracy is recorded online: every finished transfer reports the bandwidth that was predicted
 * for it and the bandwidth measured, and the relative error lands in the
 * `novacron_ml_bandwidth_prediction_error_ratio` histogram, labelled with the predictor that made
 * the prediction (`lstm` or `baseline`).
 *
 * @since 0.1.0
 */

import type { Predictor as PredictorModule } from "@novacron/dwcp-pba"
import * as Predictor from "@novacron/dwcp-pba/Predictor"
import { BootStatus, Component } from "@novacron/init"
import {
  Context,
  Data,
  Duration,
  Effect,
  Layer,
  Metric,
  MetricBoundaries,
  Ref,
  type Scope,
  SubscriptionRef,
} from "effect"
import type { MlSettings } from "./MlSettings.js"

type BandwidthPredictor = PredictorModule.Predictor

/**
 * A model could not be loaded (missing file, bad metadata, rejected by the runtime, timed out).
 *
 * @since 0.1.0
 * @category errors
 */
export class ModelUnavailable extends Data.TaggedError("ModelUnavailable")<{
  readonly model: "bandwidth"
  readonly path: string
  readonly reason: string
}> {
  override get message(): string {
    return `${this.model} model ${this.path || "(shipped)"} unavailable: ${this.reason}`
  }
}

/**
 * Loads the bandwidth model and wraps it as a predictor (falling back to `baseline` per call
 * when the model cannot answer), for the life of the scope.
 *
 * @since 0.1.0
 * @category models
 */
export type BandwidthLoader = (
  path: string,
  baseline: Predictor.SyncPredictor,
) => Effect.Effect<BandwidthPredictor, ModelUnavailable, Scope.Scope>

/**
 * The `@novacron/dwcp-pba` module, as `lstmLoader`'s importer returns it.
 *
 * @since 0.1.0
 * @category loaders
 */
export type PbaModule = typeof import("@novacron/dwcp-pba")

/**
 * The LSTM of `@novacron/dwcp-pba`, imported only when loading (onnxruntime takes a second or
 * more to load). `importPba` lets a bundling host supply its own `import()`.
 *
 * @since 0.1.0
 * @category loaders
 */
export const lstmLoader =
  (importPba: () => Promise<PbaModule> = () => import("@novacron/dwcp-pba")): BandwidthLoader =>
  (path, baseline) =>
    Effect.gen(function* () {
      // onnxruntime otherwise writes a device id and a telemetry database under
      // ~/.cache/Microsoft/DeveloperTools when a session is created; an agent writes nothing into
      // its user's home. ORT_DISABLE_TELEMETRY=0 in the environment opts back in.
      if (process.env.ORT_DISABLE_TELEMETRY === undefined) process.env.ORT_DISABLE_TELEMETRY = "1"
      const pba = yield* Effect.tryPromise({
        try: importPba,
        catch: (e) =>
          new ModelUnavailable({ model: "bandwidth", path, reason: `@novacron/dwcp-pba did not load: ${String(e)}` }),
      })
      const model = yield* pba.Lstm.load(path === "" ? pba.Lstm.defaultModelPath : path).pipe(
        Effect.mapError((e) => new ModelUnavailable({ model: "bandwidth", path, reason: e.reason })),
      )
      return pba.Lstm.predictor(model, baseline)
    })

/**
 * Where a model stands.
 *
 * @since 0.1.0
 * @category models
 */
export type ModelState =
  | { readonly state: "loading"; readonly serving: "baseline"; readonly baseline: string }
  | { readonly state: "loaded"; readonly serving: "model"; readonly model: string; readonly loadMillis: number }
  | { readonly state: "fallback"; readonly serving: "baseline"; readonly baseline: string; readonly reason: string }
  | { readonly state: "disabled"; readonly serving: "baseline"; readonly baseline: string }

/**
 * What `/status` shows of the engine.
 *
 * @since 0.1.0
 * @category models
 */
export interface MlStatus {
  readonly bandwidth: ModelState
  readonly placement: { readonly serving: "policy"; readonly reason: string }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface MlEngineApi {
  /** Forecasts a link's bandwidth (bytes/s) from its one-second history, oldest first. */
  readonly predictBandwidth: (samples: ArrayLike<number>) => Effect.Effect<PredictorModule.Prediction>
  /**
   * Records a finished transfer: the bandwidth predicted for it and the one measured (bytes/s),
   * and which predictor made the prediction (`Prediction.predictor`).
   */
  readonly recordTransfer: (transfer: {
    readonly predicted: number
    readonly measured: number
    readonly predictor: string
  }) => Effect.Effect<void>
  /** The bandwidth model's state, as it changes (loading, then loaded or fallback). */
  readonly bandwidthModel: SubscriptionRef.SubscriptionRef<ModelState>
  readonly status: Effect.Effect<MlStatus>
}

/**
 * @since 0.1.0
 * @category services
 */
export class MlEngine extends Context.Tag("@novacron/ml/MlEngine")<MlEngine, MlEngineApi>() {}

/**
 * Relative error of each recorded transfer's bandwidth prediction, `|predicted - measured| / measured`,
 * labelled `predictor` (`lstm` or `baseline`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const predictionError = Metric.histogram(
  "novacron_ml_bandwidth_prediction_error_ratio",
  MetricBoundaries.fromIterable([0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5]),
  "Relative error of bandwidth predictions against the measured bandwidth of finished transfers",
)

/**
 * Transfers recorded, labelled `predictor`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const transfersRecorded = Metric.counter("novacron_ml_transfers_recorded_total", {
  description: "Finished transfers whose predicted and measured bandwidth were recorded",
  incremental: true,
})

/**
 * How long after the kernel's READY the model load starts (inside a boot).
 *
 * @since 0.1.0
 * @category constants
 */
export const afterReady: Duration.Duration = Duration.seconds(1)

const placementStatus = {
  serving: "policy",
  reason: "no placement model in this build: dwcp-itp's policy (best-fit packing) places",
} as const

/**
 * The engine in the current scope: serves the baseline at once and loads the bandwidth model in
 * a background fiber of the scope (interrupted when it closes).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  settings: MlSettings,
  loader: BandwidthLoader = lstmLoader(),
): Effect.Effect<MlEngineApi, never, Scope.Scope> =>
  Effect.gen(function* () {
    const baseline = Predictor.harmonicMean(5)
    const serving = yield* Ref.make<BandwidthPredictor>(baseline)
    const initial: ModelState = settings.enabled
      ? { state: "loading", serving: "baseline", baseline: baseline.name }
      : { state: "disabled", serving: "baseline", baseline: baseline.name }
    const bandwidthModel = yield* SubscriptionRef.make<ModelState>(initial)
    if (settings.enabled) {
      const path = settings.bandwidth_model
      const load = Effect.gen(function* () {
        const started = yield* Effect.clockWith((c) => c.currentTimeMillis)
        const model = yield* loader(path, baseline).pipe(
          Effect.timeoutFail({
            duration: settings.load_timeout,
            onTimeout: () =>
              new ModelUnavailable({
                model: "bandwidth",
                path,
                reason: `still loading after ${Duration.format(settings.load_timeout)}`,
              }),
          }),
        )
        const loadMillis = (yield* Effect.clockWith((c) => c.currentTimeMillis)) - started
        yield* Ref.set(serving, model)
        yield* SubscriptionRef.set(bandwidthModel, { state: "loaded", serving: "model", model: model.name, loadMillis })
        yield* Effect.logInfo(`ml: bandwidth model ${model.name} loaded in ${loadMillis} ms`).pipe(
          Effect.annotateLogs({ name: "ml.loaded", model: "bandwidth", duration: loadMillis }),
        )
      }).pipe(
        Effect.catchAll((e) =>
          Effect.zipRight(
            SubscriptionRef.set(bandwidthModel, {
              state: "fallback",
              serving: "baseline",
              baseline: baseline.name,
              reason: e.message,
            }),
            Effect.logWarning(`ml: ${e.message}; serving the ${baseline.name} baseline`).pipe(
              Effect.annotateLogs({ name: "ml.fallback", model: "bandwidth" }),
            ),
          ),
        ),
      )
      // Importing onnxruntime and creating the session block the event loop for 0.2-0.4 s (measured
      // in the agent): inside a boot the load waits for the kernel's READY, then for the host's own
      // READY steps (health check, registration, sd_notify), so it never competes with them.
      const boot = yield* Effect.serviceOption(BootStatus)
      const afterBoot =
        boot._tag === "Some" ? Effect.zipRight(boot.value.booted, Effect.sleep(afterReady)) : Effect.void
      // The load's scope is the engine's: the model (an onnxruntime session) is released with it.
      yield* Effect.forkScoped(Effect.zipRight(afterBoot, load))
    }
    return {
      predictBandwidth: (samples) => Effect.flatMap(Ref.get(serving), (p) => p.predict(samples)),
      recordTransfer: ({ predicted, measured, predictor }) => {
        if (!(measured > 0) || !Number.isFinite(predicted)) return Effect.void
        const label = predictor === "lstm" ? "lstm" : "baseline"
        return Effect.zipRight(
          Metric.update(Metric.tagged(predictionError, "predictor", label), Math.abs(predicted - measured) / measured),
          Metric.increment(Metric.tagged(transfersRecorded, "predictor", label)),
        )
      },
      bandwidthModel,
      status: Effect.map(SubscriptionRef.get(bandwidthModel), (bandwidth) => ({
        bandwidth,
        placement: placementStatus,
      })),
    } satisfies MlEngineApi
  })

/**
 * The engine as a layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (settings: MlSettings, loader?: BandwidthLoader): Layer.Layer<MlEngine> =>
  Layer.scoped(MlEngine, make(settings, loader))

/**
 * Healthy with the model loaded; degraded (naming why) while it loads, when it fell back, or
 * when the engine is disabled.
 *
 * @since 0.1.0
 * @category health
 */
export const healthCheck: Effect.Effect<Component.HealthResult, never, MlEngine> = Effect.gen(function* () {
  const { bandwidth, placement } = yield* (yield* MlEngine).status
  const details = { bandwidth: bandwidth.state, placement: placement.serving }
  switch (bandwidth.state) {
    case "loaded":
      return { status: "healthy", details }
    case "loading":
      return { status: "degraded", message: `bandwidth model loading; ${bandwidth.baseline} serves`, details }
    case "disabled":
      return { status: "degraded", message: `ml.enabled is false; ${bandwidth.baseline} serves`, details }
    case "fallback":
      return { status: "degraded", message: `${bandwidth.reason}; ${bandwidth.baseline} serves`, details }
  }
})

/**
 * The engine as an `@novacron/init` component spec (`ml-engine`). It starts in no time (the
 * model loads afterwards) and never fails.
 *
 * @example
 * ```ts
 * import { MlEngine, MlSettings } from "@novacron/ml"
 *
 * const spec = MlEngine.component(MlSettings.defaults)
 * console.log(spec.name) // "ml-engine"
 * ```
 *
 * @since 0.1.0
 * @category components
 */
export const component = (settings: MlSettings, loader?: BandwidthLoader) =>
  Component.spec({
    name: "ml-engine",
    description: "bandwidth model (loaded after boot; baseline until then) and accuracy metrics",
    layer: layer(settings, loader),
    healthCheck,
    expectedDuration: "1 millis",
  })
