/**
 * Raft mode: the state API on an etcd cluster (etcd 3.4+, client `etcd3`). Every operation is
 * linearizable (reads are quorum reads; writes and compare-and-set are etcd transactions).
 * Each call has a deadline; a write that hits it, or whose connection drops after it was sent,
 * fails with `StateTimeout` (outcome unknown) and is not retried; one refused before it was
 * proposed (member down, no leader) is retried on another member until the deadline.
 *
 * @since 0.1.0
 */
import { Duration, Effect, Layer } from "effect"
import type { ConsensusSettings } from "./ConsensusSettings.js"
import * as Core from "./internal/core.js"
import { StateStore } from "./StateStore.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Client URLs of the members (`http://127.0.0.1:2379`). */
  readonly endpoints: ReadonlyArray<string>
  /** Deadline of one call (default 5 s). */
  readonly callTimeout?: Duration.DurationInput | undefined
  /** How long a failing member is skipped before it is probed again (default 200 ms). */
  readonly halfOpenAfter?: Duration.DurationInput | undefined
  /** TTL of a campaign's lease when none is given (default 10 s; etcd rounds up to seconds). */
  readonly leaseTtl?: Duration.DurationInput | undefined
  /** Prefix of every key in etcd (default none). */
  readonly namespace?: string | undefined
}

/**
 * The state service on etcd; the client is closed with the Scope.
 *
 * @example
 * ```ts
 * import { EtcdStore, StateStore } from "@novacron/dwcp-ass"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function* () {
 *   const store = yield* StateStore.StateStore
 *   const leadership = yield* store.campaign("coordinator", "node-1")
 *   // Refused with Deposed once this node is no longer the leader.
 *   yield* store.put("placement/vm-7", JSON.stringify({ node: "node-1" }), { fence: leadership })
 * })
 *
 * program.pipe(
 *   Effect.scoped,
 *   Effect.provide(EtcdStore.layer({ endpoints: ["http://127.0.0.1:2379"] })),
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<StateStore> =>
  Layer.scoped(
    StateStore,
    // Loaded on use: the etcd client (gRPC) is not read by a node on its local state, and the agent's
    // start-up time is mostly module loading.
    Effect.flatMap(
      Effect.promise(() => import("./internal/etcd.js")),
      (Etcd) =>
        Effect.map(
          Etcd.make({
            endpoints: options.endpoints,
            callTimeout: Duration.decode(options.callTimeout ?? Duration.seconds(5)),
            halfOpenAfter: Duration.decode(options.halfOpenAfter ?? Duration.millis(200)),
            defaultLeaseTtl: Duration.decode(options.leaseTtl ?? Duration.seconds(10)),
            namespace: options.namespace,
          }),
          Core.make,
        ),
    ),
  )

/**
 * {@link layer} from the `dwcp.consensus` section (`etcd_endpoints`, `call_timeout`, `lease_ttl`).
 *
 * @since 0.1.0
 * @category layers
 */
export const fromSettings = (settings: ConsensusSettings): Layer.Layer<StateStore> =>
  layer({ endpoints: settings.etcd_endpoints, callTimeout: settings.call_timeout, leaseTtl: settings.lease_ttl })
