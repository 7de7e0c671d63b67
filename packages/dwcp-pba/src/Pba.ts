/**
 * The predictive bandwidth allocation service: per-link histories, a predictor (the LSTM,
 * loaded in the background, or a baseline) and allocation of the predicted capacity.
 *
 * @since 0.1.0
 */
import { Context, Deferred, Duration, Effect, Layer, Ref, Schedule, Schema, type Scope, Stream } from "effect"
import * as Allocation from "./Allocation.js"
import * as History from "./History.js"
import * as Lstm from "./Lstm.js"
import * as Predictor from "./Predictor.js"

const Baseline = Schema.Literal("last-value", "ewma", "harmonic-mean", "best")

/**
 * Settings, decoded with `Schema` (`Schema.decodeUnknown(PbaSettings)(raw)`); every field has
 * a default.
 *
 * @since 0.1.0
 */
export const PbaSettings = Schema.Struct({
  /** `dwcp.enable_v3_prediction`: when false, the `fallback` baseline predicts and no model loads. */
  enableV3Prediction: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  /** Samples kept per link. */
  window: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 100_000)), { default: () => 60 }),
  /** Sample period in milliseconds; the LSTM needs 1000 and falls back otherwise. */
  periodMs: Schema.optionalWith(Schema.Number.pipe(Schema.positive()), { default: () => 1000 }),
  /**
   * Baseline used when the LSTM is disabled, loading or unusable. Default `last-value`: the best
   * baseline at 1 s (MAPE) on the validation and held-out traces.
   */
  fallback: Schema.optionalWith(Baseline, { default: () => "last-value" as const }),
  harmonicN: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 5 }),
  ewmaAlpha: Schema.optionalWith(Schema.Number.pipe(Schema.between(0.001, 1)), { default: () => 0.3 }),
  /** Model file; defaults to the one shipped in the package. */
  modelPath: Schema.optional(Schema.String),
  /**
   * False: this service loads no model of its own; the `fallback` baseline predicts unless the
   * caller passes a predictor to `predict` (in the agent, the ML engine's: one model per process).
   */
  loadModel: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  /** Allocate the predicted mean or the lower end of the 80 % interval. */
  capacityBasis: Schema.optionalWith(Schema.Literal("mean", "lower"), { default: () => "mean" as const }),
})

/**
 * @since 0.1.0
 */
export type PbaSettings = typeof PbaSettings.Type

/**
 * State of the LSTM model (`Disabled` also when `loadModel` is false).
 *
 * @since 0.1.0
 */
export type ModelStatus =
  | { readonly _tag: "Disabled" }
  | { readonly _tag: "Loading" }
  | { readonly _tag: "Ready"; readonly path: string }
  | { readonly _tag: "Unavailable"; readonly reason: string }

/**
 * Result of allocating a link.
 *
 * @since 0.1.0
 */
export interface LinkAllocation {
  readonly prediction: Predictor.Prediction
  readonly capacity: number
  readonly grants: ReadonlyArray<Allocation.Grant>
}

/**
 * The service.
 *
 * @since 0.1.0
 */
export interface PbaService {
  /** Records bytes delivered on a link at a monotonic time in milliseconds. */
  readonly record: (link: string, bytes: number, atMs: number) => Effect.Effect<void>
  /** Appends a finished throughput sample (bytes per second) to a link's history. */
  readonly push: (link: string, bytesPerSecond: number) => Effect.Effect<void>
  /** Closes idle periods of every link up to `nowMs`. */
  readonly advance: (nowMs: number) => Effect.Effect<void>
  /**
   * Forecasts a link's throughput (degraded with no history). With `predictor`, that predictor
   * forecasts from the link's history instead of this service's own (a served one, swapped at run
   * time by the caller).
   */
  readonly predict: (link: string, predictor?: Predictor.Predictor) => Effect.Effect<Predictor.Prediction>
  /** Name of the baseline that predicts when the model is off, loading or unusable. */
  readonly baseline: string
  /** Predicts the link and shares the predicted capacity among `transfers`; call again to re-allocate. */
  readonly allocate: (link: string, transfers: ReadonlyArray<Allocation.Transfer>) => Effect.Effect<LinkAllocation>
  /**
   * Re-allocates the link once per sample period (first at once) with the transfers `transfers`
   * reads at that moment, emitting only when the capacity or a rate changed. Feed ACP's pacing
   * and AMST's stream count from it.
   */
  readonly allocations: (
    link: string,
    transfers: Effect.Effect<ReadonlyArray<Allocation.Transfer>>,
  ) => Stream.Stream<LinkAllocation>
  /** Current model state. */
  readonly modelStatus: Effect.Effect<ModelStatus>
  /** Waits until the model has loaded or failed to (immediate when disabled). */
  readonly awaitModel: Effect.Effect<ModelStatus>
}

/**
 * Tag of the service.
 *
 * @since 0.1.0
 */
export class Pba extends Context.Tag("@novacron/dwcp-pba/Pba")<Pba, PbaService>() {}

/**
 * Builds the service in a scope. The LSTM loads in a background fiber; until it is ready (or if
 * it never is) predictions come from the fallback baseline, marked degraded.
 *
 * @since 0.1.0
 */
export const make = (settings: PbaSettings): Effect.Effect<PbaService, never, Scope.Scope> =>
  Effect.gen(function* () {
    const fallback = Predictor.baseline(settings.fallback, settings)
    const histories = new Map<string, History.History>()
    const historyOf = (link: string) => {
      let h = histories.get(link)
      if (h === undefined) {
        h = History.make({ window: settings.window, periodMs: settings.periodMs })
        histories.set(link, h)
      }
      return h
    }
    const loading = settings.enableV3Prediction && settings.loadModel
    const status = yield* Ref.make<ModelStatus>(loading ? { _tag: "Loading" } : { _tag: "Disabled" })
    const lstm = yield* Ref.make<Predictor.Predictor | undefined>(undefined)
    const loaded = yield* Deferred.make<ModelStatus>()
    if (loading) {
      yield* Effect.forkScoped(
        Lstm.loadOrFallback(settings.modelPath ?? Lstm.defaultModelPath, fallback).pipe(
          Effect.flatMap(({ predictor, error }) => {
            const s: ModelStatus =
              error === undefined
                ? { _tag: "Ready", path: settings.modelPath ?? Lstm.defaultModelPath }
                : { _tag: "Unavailable", reason: error.reason }
            return Ref.set(lstm, error === undefined ? predictor : undefined).pipe(
              Effect.zipRight(Ref.set(status, s)),
              Effect.zipRight(Deferred.succeed(loaded, s)),
            )
          }),
        ),
      )
    } else {
      yield* Deferred.succeed(loaded, { _tag: "Disabled" })
    }
    const predict = (link: string, served?: Predictor.Predictor) =>
      Effect.gen(function* () {
        const xs = histories.get(link)?.samples() ?? new Float64Array(0)
        if (served !== undefined) return yield* served.predict(xs)
        const s = yield* Ref.get(status)
        if (s._tag === "Disabled") return fallback.predictSync(xs)
        if (settings.periodMs !== 1000) {
          return Predictor.degrade(fallback.predictSync(xs), "lstm needs a 1000 ms sample period")
        }
        const model = yield* Ref.get(lstm)
        if (model === undefined) {
          const reason =
            s._tag === "Loading"
              ? "lstm model loading"
              : `lstm model unavailable: ${s._tag === "Unavailable" ? s.reason : ""}`
          return Predictor.degrade(fallback.predictSync(xs), reason)
        }
        return yield* model.predict(xs)
      })
    const allocate = (link: string, transfers: ReadonlyArray<Allocation.Transfer>) =>
      Effect.map(predict(link), (prediction): LinkAllocation => {
        const capacity = Allocation.capacityOf(prediction, settings.capacityBasis)
        return { prediction, capacity, grants: Allocation.allocate(capacity, transfers) }
      })
    const same = (a: LinkAllocation, b: LinkAllocation) =>
      a.capacity === b.capacity &&
      a.grants.length === b.grants.length &&
      a.grants.every((g, i) => g.id === b.grants[i]!.id && g.rate === b.grants[i]!.rate)
    return {
      record: (link, bytes, atMs) => Effect.sync(() => historyOf(link).record(bytes, atMs)),
      push: (link, v) => Effect.sync(() => historyOf(link).push(v)),
      advance: (nowMs) =>
        Effect.sync(() => {
          for (const h of histories.values()) h.advance(nowMs)
        }),
      predict,
      baseline: fallback.name,
      allocate,
      allocations: (link, transfers) => {
        const once = Effect.flatMap(transfers, (ts) => allocate(link, ts))
        return Stream.fromEffect(once).pipe(
          Stream.concat(
            Stream.fromSchedule(Schedule.spaced(Duration.millis(settings.periodMs))).pipe(Stream.mapEffect(() => once)),
          ),
          Stream.changesWith(same),
        )
      },
      modelStatus: Ref.get(status),
      awaitModel: Deferred.await(loaded),
    }
  })

/**
 * Layer of the service; the model's onnxruntime session is released with the layer.
 *
 * @since 0.1.0
 */
export const layer = (settings: PbaSettings): Layer.Layer<Pba> => Layer.scoped(Pba, make(settings))
