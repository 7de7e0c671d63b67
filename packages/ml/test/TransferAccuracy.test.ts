import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Metric, PubSub } from "effect"
import * as MlEngine from "../src/MlEngine.js"
import * as MlSettings from "../src/MlSettings.js"
import * as TransferAccuracy from "../src/TransferAccuracy.js"

const lstmError = MlEngine.predictionError.pipe(Metric.tagged("predictor", "lstm"))
const baselineError = MlEngine.predictionError.pipe(Metric.tagged("predictor", "baseline"))

describe("TransferAccuracy", () => {
  it.scopedLive("records each observation published after the component started, per predictor", () =>
    Effect.gen(function* () {
      const hub = yield* PubSub.unbounded<TransferAccuracy.Observation>()
      const spec = TransferAccuracy.component(PubSub.subscribe(hub))
      const engine = MlEngine.layer({ ...MlSettings.defaults, enabled: false })
      const lstm0 = yield* Metric.value(lstmError)
      const base0 = yield* Metric.value(baselineError)
      yield* Layer.build(spec.layer.pipe(Layer.provide(engine)))
      // Published right after start, with no wait: the subscription is in place already.
      yield* PubSub.publish(hub, { predictedBps: 100e6, measuredBps: 80e6, predictor: "lstm" })
      yield* PubSub.publish(hub, { predictedBps: 90e6, measuredBps: 100e6, predictor: "last-value" })
      yield* Effect.sleep(20)
      const lstm1 = yield* Metric.value(lstmError)
      const base1 = yield* Metric.value(baselineError)
      expect(lstm1.count - lstm0.count).toBe(1)
      expect(lstm1.sum - lstm0.sum).toBeCloseTo(0.25, 9)
      expect(base1.count - base0.count).toBe(1)
      expect(base1.sum - base0.sum).toBeCloseTo(0.1, 9)
    }),
  )
})
