/**
 * The bandwidth predictor's accuracy on real transfers: each finished transfer that had a
 * prediction (DWCP publishes them) is recorded in the engine's metrics, predicted beside measured.
 * The engine does not depend on DWCP: the host hands this component DWCP's observations.
 *
 * @since 0.1.0
 */
import { Component } from "@novacron/init"
import { Effect, Layer, type Queue, type Scope, Stream } from "effect"
import { MlEngine } from "./MlEngine.js"

/**
 * One finished transfer: what was predicted for its link and what it measured (bytes/s).
 *
 * @since 0.1.0
 * @category models
 */
export interface Observation {
  readonly predictedBps: number
  readonly measuredBps: number
  readonly predictor: string
}

/**
 * Records every observation of the stream until it ends or the fiber is interrupted.
 *
 * @since 0.1.0
 * @category constructors
 */
export const record = <E, R>(observations: Stream.Stream<Observation, E, R>): Effect.Effect<void, E, MlEngine | R> =>
  Effect.flatMap(MlEngine, (ml) =>
    Stream.runForEach(observations, (o) =>
      ml.recordTransfer({ predicted: o.predictedBps, measured: o.measuredBps, predictor: o.predictor }),
    ),
  )

/**
 * The `transfer-accuracy` component: subscribes (in its scope) and records every observation for
 * as long as it runs. It needs the engine and whatever `subscribe` needs (DWCP, in the agent).
 *
 * @example
 * ```ts
 * import { TransferAccuracy } from "@novacron/ml"
 * import { Effect, PubSub } from "effect"
 *
 * const hub = Effect.runSync(PubSub.sliding<TransferAccuracy.Observation>(64))
 * const spec = TransferAccuracy.component(PubSub.subscribe(hub))
 * console.log(spec.name) // "transfer-accuracy"
 * ```
 *
 * @since 0.1.0
 * @category components
 */
export const component = <R>(subscribe: Effect.Effect<Queue.Dequeue<Observation>, never, R | Scope.Scope>) =>
  Component.spec({
    name: "transfer-accuracy",
    description: "records the bandwidth predictor's error on each finished transfer",
    layer: Layer.scopedDiscard(
      // Subscribed before the component reports started, so no transfer after that is missed.
      Effect.flatMap(subscribe, (queue) => Effect.forkScoped(record(Stream.fromQueue(queue)))),
    ),
    expectedDuration: "1 millis",
  })
