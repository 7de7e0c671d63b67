/**
 * The LSTM predictor: a small ONNX model (trained by `training/train.py`, shipped in `model/`)
 * run by onnxruntime-node. It sees the last `window` one-second samples relative to their mean
 * and forecasts 1 s and 5 s ahead with a 10 %–90 % quantile interval. When the model is missing,
 * corrupt, fed too little history, or answers NaN/Inf, it falls back to a baseline and marks the
 * prediction degraded.
 *
 * @since 0.1.0
 */
import { readFile } from "node:fs/promises"
import { fileURLToPath } from "node:url"
import { Data, Effect, Schema, type Scope } from "effect"
import * as ort from "onnxruntime-node"
import { EPS } from "./internal/features.js"
import type { Forecast, Prediction, Predictor, SyncPredictor } from "./Predictor.js"
import { degrade, lastValue } from "./Predictor.js"

// This file sits one level below the package root both as src/Lstm.ts and bundled as dist/index.js.
/**
 * Path of the shipped model.
 *
 * @since 0.1.0
 */
export const defaultModelPath: string = fileURLToPath(new URL("../model/pba-lstm.onnx", import.meta.url))

/**
 * Metadata written next to the model by the training script.
 *
 * @since 0.1.0
 */
export const ModelMetadata = Schema.Struct({
  format: Schema.Literal("dwcp-pba-lstm/1"),
  window: Schema.Int.pipe(Schema.positive()),
  periodMs: Schema.Literal(1000),
  eps: Schema.Literal(EPS),
  horizonsS: Schema.Tuple(Schema.Literal(1), Schema.Literal(5)),
  outputs: Schema.Tuple(Schema.Literal("point"), Schema.Literal("q10"), Schema.Literal("q90")),
  /** Per-horizon factor on the quantile heads' distances from the point, calibrated on validation data. */
  intervalScale: Schema.Tuple(Schema.Number.pipe(Schema.positive()), Schema.Number.pipe(Schema.positive())),
})

/**
 * @since 0.1.0
 */
export type ModelMetadata = typeof ModelMetadata.Type

/**
 * The model could not be loaded: missing file, bad metadata, a file onnxruntime rejects, or a
 * probe run with the wrong output shape.
 *
 * @since 0.1.0
 */
export class ModelLoadError extends Data.TaggedError("ModelLoadError")<{
  readonly path: string
  readonly reason: string
  readonly cause?: unknown
}> {}

/**
 * A loaded model: its metadata and a function running one window of features.
 *
 * @since 0.1.0
 */
export interface Model {
  readonly path: string
  readonly metadata: ModelMetadata
  /** Raw model outputs (6 numbers: point, q10, q90 for 1 s then 5 s) for one window of samples. */
  readonly run: (samples: ArrayLike<number>) => Effect.Effect<Float32Array, ModelRunError>
}

/**
 * onnxruntime failed while running the model.
 *
 * @since 0.1.0
 */
export class ModelRunError extends Data.TaggedError("ModelRunError")<{ readonly cause: unknown }> {}

const metadataPathOf = (modelPath: string) => modelPath.replace(/\.onnx$/, ".json")

/**
 * Loads a model and its metadata (`<name>.json` beside `<name>.onnx`), probes it once, and
 * releases the onnxruntime session when the scope closes.
 *
 * @since 0.1.0
 */
export const load = (modelPath: string = defaultModelPath): Effect.Effect<Model, ModelLoadError, Scope.Scope> =>
  Effect.gen(function* () {
    const fail = (reason: string) => (cause: unknown) => new ModelLoadError({ path: modelPath, reason, cause })
    const metaText = yield* Effect.tryPromise({
      try: () => readFile(metadataPathOf(modelPath), "utf8"),
      catch: fail("cannot read model metadata"),
    })
    const metadata = yield* Schema.decodeUnknown(Schema.parseJson(ModelMetadata))(metaText).pipe(
      Effect.mapError(fail("invalid model metadata")),
    )
    const bytes = yield* Effect.tryPromise({ try: () => readFile(modelPath), catch: fail("cannot read model") })
    const session = yield* Effect.acquireRelease(
      Effect.tryPromise({
        // One thread: a 20-step LSTM gains nothing from more, and the node shares its cores.
        try: () => ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1 }),
        catch: fail("onnxruntime rejected the model"),
      }),
      (s) => Effect.promise(() => s.release()).pipe(Effect.ignore),
    )
    const inputName = session.inputNames[0]
    const outputName = session.outputNames[0]
    if (inputName === undefined || outputName === undefined) {
      return yield* new ModelLoadError({ path: modelPath, reason: "model has no input or output" })
    }
    const window = metadata.window
    const run = (samples: ArrayLike<number>) =>
      Effect.tryPromise({
        try: async () => {
          const input = new Float32Array(window)
          const off = samples.length - window
          let sum = 0
          for (let i = 0; i < window; i++) sum += samples[off + i]!
          const m = sum / window + EPS
          for (let i = 0; i < window; i++) input[i] = Math.log((samples[off + i]! + EPS) / m)
          const out = await session.run({ [inputName]: new ort.Tensor("float32", input, [1, window, 1]) })
          return out[outputName]!.data as Float32Array
        },
        catch: (cause) => new ModelRunError({ cause }),
      })
    const probe = yield* run(new Float64Array(window).fill(1e6)).pipe(Effect.mapError(fail("probe run failed")))
    if (probe.length !== 6) {
      return yield* new ModelLoadError({ path: modelPath, reason: `expected 6 outputs, got ${probe.length}` })
    }
    return { path: modelPath, metadata, run }
  })

const forecastOf = (horizonS: number, m: number, point: number, q10: number, q90: number, scale: number): Forecast => {
  const at = (z: number) => Math.max(0, m * Math.exp(z) - EPS)
  // Quantile heads are trained independently of the point head: keep the interval around it.
  return {
    horizonS,
    mean: at(point),
    lower: at(point - scale * Math.max(0, point - q10)),
    upper: at(point + scale * Math.max(0, q90 - point)),
  }
}

/**
 * Wraps a loaded model as a predictor that falls back to `fallback` (default: last value, the
 * best baseline at 1 s on validation and held-out data) with a degraded status when the history is shorter than the model's window, when
 * onnxruntime fails, or when any output is NaN or infinite.
 *
 * @since 0.1.0
 */
export const predictor = (model: Model, fallback: SyncPredictor = lastValue()): Predictor => {
  const window = model.metadata.window
  const fall = (xs: ArrayLike<number>, reason: string) => degrade(fallback.predictSync(xs), reason)
  return {
    name: "lstm",
    predict: (xs) => {
      if (xs.length < window) return Effect.succeed(fall(xs, `lstm needs ${window} samples, has ${xs.length}`))
      return model.run(xs).pipe(
        Effect.map((o): Prediction => {
          for (let i = 0; i < 6; i++) if (!Number.isFinite(o[i]!)) return fall(xs, "lstm output is not finite")
          let sum = 0
          for (let i = xs.length - window; i < xs.length; i++) sum += xs[i]!
          const m = sum / window + EPS
          const [s1, s5] = model.metadata.intervalScale
          const oneSecond = forecastOf(1, m, o[0]!, o[1]!, o[2]!, s1)
          const fiveSeconds = forecastOf(5, m, o[3]!, o[4]!, o[5]!, s5)
          if (![oneSecond, fiveSeconds].every((f) => Number.isFinite(f.mean) && Number.isFinite(f.upper))) {
            return fall(xs, "lstm output is not finite")
          }
          return { oneSecond, fiveSeconds, predictor: "lstm", status: "ok" }
        }),
        Effect.catchAll((e) => Effect.succeed(fall(xs, `lstm run failed: ${String(e.cause)}`))),
      )
    },
  }
}

/**
 * A predictor that could not load its model: every prediction comes from the fallback, degraded.
 *
 * @since 0.1.0
 */
export const unavailable = (reason: string, fallback: SyncPredictor = lastValue()): Predictor => ({
  name: "lstm",
  predict: (xs) => Effect.sync(() => degrade(fallback.predictSync(xs), reason)),
})

/**
 * Loads the model and returns its predictor, or, if loading fails, a predictor that always falls
 * back (degraded) together with the load error.
 *
 * @since 0.1.0
 */
export const loadOrFallback = (
  modelPath: string = defaultModelPath,
  fallback: SyncPredictor = lastValue(),
): Effect.Effect<{ readonly predictor: Predictor; readonly error?: ModelLoadError }, never, Scope.Scope> =>
  load(modelPath).pipe(
    Effect.map((model) => ({ predictor: predictor(model, fallback) })),
    Effect.catchAll((error) =>
      Effect.succeed({ predictor: unavailable(`lstm model unavailable: ${error.reason}`, fallback), error }),
    ),
  )
