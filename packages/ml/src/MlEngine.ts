/**
 * The ML engine: the one place that loads the agent's models and serves them. Two models load in
 * the background after the component starts, so they never delay READY:
 *
 * - the bandwidth predictor (dwcp-pba's LSTM); until it is loaded, and for good when it is
 *   missing or fails, the engine serves the baseline (harmonic mean of the last samples);
 * - the placement optimiser (dwcp-itp's {@link FragmentationOptimizer}: FGD re-ranking of the
 *   policy's best hosts); until then, or when it fails or is off, placement keeps the policy's
 *   own first choice (best-fit packing under binpack).
 *
 * Each says where it stands (`ml.loaded` / `ml.fallback` logs, `status`, the component's health).
 *
 * Accuracy and effect are recorded online: every finished transfer reports the bandwidth that was
 * predicted for it and the bandwidth measured, and the relative error lands in the
 * `novacron_ml_bandwidth_prediction_error_ratio` histogram, labelled with the predictor that made
 * the prediction (`lstm` or `baseline`); every placement the optimiser is asked about counts in
 * `novacron_ml_placement_decisions_total{chosen_by}`, and the fragmentation its overrides avoid in
 * `novacron_ml_placement_fragmentation_avoided_gpus`.
 *
 * @since 0.1.0
 */

import type { FragmentationOptimizer, Placement } from "@novacron/dwcp-itp"
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
  Option,
  Ref,
  type Scope,
  SubscriptionRef,
} from "effect"
import type { MlSettings } from "./MlSettings.js"

type BandwidthPredictor = PredictorModule.Predictor

/**
 * A placement optimiser, as dwcp-itp's `Placement.setOptimizer` takes it.
 *
 * @since 0.2.0
 * @category models
 */
export type PlacementOptimizer = Placement.Optimizer

/**
 * One decision the placement optimiser was asked for (dwcp-itp's).
 *
 * @since 0.2.0
 * @category models
 */
export type PlacementDecision = FragmentationOptimizer.Decision

/**
 * A model could not be loaded (missing file, bad metadata, rejected by the runtime, timed out).
 *
 * @since 0.1.0
 * @category errors
 */
export class ModelUnavailable extends Data.TaggedError("ModelUnavailable")<{
  readonly model: "bandwidth" | "placement"
  readonly path: string
  readonly reason: string
}> {
  override get message(): string {
    const what = this.model === "placement" ? "placement optimiser" : `bandwidth model ${this.path || "(shipped)"}`
    return `${what} unavailable: ${this.reason}`
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
 * Loads the placement optimiser, which reports each decision to `onDecision`, for the life of the
 * scope.
 *
 * @since 0.2.0
 * @category models
 */
export type PlacementLoader = (
  onDecision: (decision: PlacementDecision) => Effect.Effect<void>,
) => Effect.Effect<PlacementOptimizer, ModelUnavailable, Scope.Scope>

/**
 * The `@novacron/dwcp-itp` module, as `optimizerLoader`'s importer returns it.
 *
 * @since 0.2.0
 * @category loaders
 */
export type ItpModule = typeof import("@novacron/dwcp-itp")

/**
 * dwcp-itp's fragmentation optimiser, imported when loading. `importItp` lets a bundling host
 * supply its own `import()`.
 *
 * @since 0.2.0
 * @category loaders
 */
export const optimizerLoader =
  (importItp: () => Promise<ItpModule> = () => import("@novacron/dwcp-itp")): PlacementLoader =>
  (onDecision) =>
    Effect.map(
      Effect.tryPromise({
        try: importItp,
        catch: (e) =>
          new ModelUnavailable({
            model: "placement",
            path: "",
            reason: `@novacron/dwcp-itp did not load: ${String(e)}`,
          }),
      }),
      (itp) => itp.FragmentationOptimizer.make({ onDecision }),
    )

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
  | { readonly state: "disabled"; readonly serving: "baseline"; readonly baseline: string; readonly reason?: string }

/**
 * What `/status` shows of the engine.
 *
 * @since 0.1.0
 * @category models
 */
export interface MlStatus {
  readonly bandwidth: ModelState
  readonly placement: ModelState
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
  /** The placement optimiser's state, as it changes (loading, then loaded or fallback). */
  readonly placementModel: SubscriptionRef.SubscriptionRef<ModelState>
  /** The placement optimiser once loaded; `None`: placement keeps the policy's choice. */
  readonly placementOptimizer: Effect.Effect<Option.Option<PlacementOptimizer>>
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
 * Placements the optimiser was asked about, labelled `chosen_by` (`optimizer` when it overrode
 * the policy's first choice, `policy` when it kept it).
 *
 * @since 0.2.0
 * @category metrics
 */
export const placementDecisions = Metric.counter("novacron_ml_placement_decisions_total", {
  description: "Placements the ML engine's optimiser decided, by who chose the host (optimizer or policy)",
  incremental: true,
})

/**
 * For each placement the optimiser overrode: the growth of expected GPU fragmentation the policy's
 * choice would have caused minus the chosen host's, in GPUs (FGD).
 *
 * @since 0.2.0
 * @category metrics
 */
export const fragmentationAvoided = Metric.histogram(
  "novacron_ml_placement_fragmentation_avoided_gpus",
  MetricBoundaries.fromIterable([0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 4]),
  "Expected GPU fragmentation (GPUs) the optimiser's choice avoided against the policy's, per overridden placement",
)

const recordDecision = (d: PlacementDecision): Effect.Effect<void> =>
  d.overrode
    ? Effect.zipRight(
        Metric.increment(Metric.tagged(placementDecisions, "chosen_by", "optimizer")),
        Metric.update(fragmentationAvoided, (d.policy.fragmentation - d.chosen.fragmentation) / 1000),
      )
    : Metric.increment(Metric.tagged(placementDecisions, "chosen_by", "policy"))

/**
 * What placement falls back to without the optimiser.
 *
 * @since 0.2.0
 * @category constants
 */
export const placementBaseline = "the policy's first choice"

/**
 * How long after the kernel's READY the model load starts (inside a boot).
 *
 * @since 0.1.0
 * @category constants
 */
export const afterReady: Duration.Duration = Duration.seconds(1)

/**
 * The engine in the current scope: serves the baselines at once and loads the models in a
 * background fiber of the scope (interrupted when it closes).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  settings: MlSettings,
  loader: BandwidthLoader = lstmLoader(),
  placementLoader: PlacementLoader = optimizerLoader(),
): Effect.Effect<MlEngineApi, never, Scope.Scope> =>
  Effect.gen(function* () {
    const baseline = Predictor.harmonicMean(5)
    const serving = yield* Ref.make<BandwidthPredictor>(baseline)
    const optimizer = yield* Ref.make(Option.none<PlacementOptimizer>())
    const initial = (name: string, off: string | undefined): ModelState =>
      off === undefined
        ? { state: "loading", serving: "baseline", baseline: name }
        : { state: "disabled", serving: "baseline", baseline: name, reason: off }
    const bandwidthOff = settings.enabled ? undefined : "ml.enabled is false"
    const placementOff = bandwidthOff ?? (settings.placement_optimizer ? undefined : "ml.placement_optimizer is false")
    const bandwidthModel = yield* SubscriptionRef.make(initial(baseline.name, bandwidthOff))
    const placementModel = yield* SubscriptionRef.make(initial(placementBaseline, placementOff))

    // One model's load: given up after load_timeout; a failure leaves its baseline serving, said.
    const slot = <A extends { readonly name: string }>(
      model: "bandwidth" | "placement",
      path: string,
      state: SubscriptionRef.SubscriptionRef<ModelState>,
      baselineName: string,
      acquire: Effect.Effect<A, ModelUnavailable, Scope.Scope>,
      serve: (a: A) => Effect.Effect<void>,
    ) =>
      Effect.gen(function* () {
        const started = yield* Effect.clockWith((c) => c.currentTimeMillis)
        const loaded = yield* acquire.pipe(
          Effect.timeoutFail({
            duration: settings.load_timeout,
            onTimeout: () =>
              new ModelUnavailable({
                model,
                path,
                reason: `still loading after ${Duration.format(settings.load_timeout)}`,
              }),
          }),
        )
        const loadMillis = (yield* Effect.clockWith((c) => c.currentTimeMillis)) - started
        yield* serve(loaded)
        yield* SubscriptionRef.set(state, { state: "loaded", serving: "model", model: loaded.name, loadMillis })
        yield* Effect.logInfo(`ml: ${model} model ${loaded.name} loaded in ${loadMillis} ms`).pipe(
          Effect.annotateLogs({ name: "ml.loaded", model, duration: loadMillis }),
        )
      }).pipe(
        Effect.catchAll((e) =>
          Effect.zipRight(
            SubscriptionRef.set(state, {
              state: "fallback",
              serving: "baseline",
              baseline: baselineName,
              reason: e.message,
            }),
            Effect.logWarning(`ml: ${e.message}; ${model} keeps ${baselineName}`).pipe(
              Effect.annotateLogs({ name: "ml.fallback", model }),
            ),
          ),
        ),
      )

    const loads: Array<Effect.Effect<void, never, Scope.Scope>> = []
    if (placementOff === undefined) {
      loads.push(
        slot("placement", "", placementModel, placementBaseline, placementLoader(recordDecision), (o) =>
          Ref.set(optimizer, Option.some(o)),
        ),
      )
    }
    if (bandwidthOff === undefined) {
      const path = settings.bandwidth_model
      loads.push(
        slot("bandwidth", path, bandwidthModel, baseline.name, loader(path, baseline), (p) => Ref.set(serving, p)),
      )
    }
    if (loads.length > 0) {
      // Importing onnxruntime and creating the session block the event loop for 0.2-0.4 s (measured
      // in the agent): inside a boot the load waits for the kernel's READY, then for the host's own
      // READY steps (health check, registration, sd_notify), so it never competes with them.
      const boot = yield* Effect.serviceOption(BootStatus)
      const afterBoot =
        boot._tag === "Some" ? Effect.zipRight(boot.value.booted, Effect.sleep(afterReady)) : Effect.void
      // The loads' scope is the engine's: the models (an onnxruntime session) are released with it.
      // Side by side: a stuck load of one model does not hold the other.
      yield* Effect.forkScoped(
        Effect.zipRight(afterBoot, Effect.all(loads, { concurrency: "unbounded", discard: true })),
      )
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
      placementModel,
      placementOptimizer: Ref.get(optimizer),
      status: Effect.all({
        bandwidth: SubscriptionRef.get(bandwidthModel),
        placement: SubscriptionRef.get(placementModel),
      }),
    } satisfies MlEngineApi
  })

/**
 * The engine as a layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  settings: MlSettings,
  loader?: BandwidthLoader,
  placementLoader?: PlacementLoader,
): Layer.Layer<MlEngine> => Layer.scoped(MlEngine, make(settings, loader, placementLoader))

const unserved = (model: string, s: ModelState): string | undefined => {
  switch (s.state) {
    case "loaded":
      return undefined
    case "loading":
      return `${model} model loading; ${s.baseline} serves`
    case "disabled":
      return `${s.reason ?? "disabled"}; ${s.baseline} serves`
    case "fallback":
      return `${s.reason}; ${s.baseline} serves`
  }
}

/**
 * Healthy with both models loaded; degraded (naming why, model by model) while one loads, when
 * it fell back, or when it is off.
 *
 * @since 0.1.0
 * @category health
 */
export const healthCheck: Effect.Effect<Component.HealthResult, never, MlEngine> = Effect.gen(function* () {
  const { bandwidth, placement } = yield* (yield* MlEngine).status
  const details = { bandwidth: bandwidth.state, placement: placement.state }
  const why = [unserved("bandwidth", bandwidth), unserved("placement", placement)].filter((m) => m !== undefined)
  return why.length === 0 ? { status: "healthy", details } : { status: "degraded", message: why.join("; "), details }
})

/**
 * The engine as an `@novacron/init` component spec (`ml-engine`). It starts in no time (the
 * models load afterwards) and never fails.
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
export const component = (settings: MlSettings, loader?: BandwidthLoader, placementLoader?: PlacementLoader) =>
  Component.spec({
    name: "ml-engine",
    description: "bandwidth model and placement optimiser (loaded after boot; baselines until then), accuracy metrics",
    layer: layer(settings, loader, placementLoader),
    healthCheck,
    expectedDuration: "1 millis",
  })
