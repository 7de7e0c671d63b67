/**
 * Local mode: the state API on the node's own database (`@novacron/database`, SQLite by
 * default), for a single node with no etcd. Every operation is linearizable (one process,
 * writes serialized, each written to the database before it is visible). Watch history is kept
 * in memory (`history` changes; older start revisions get a `Reset`). Leases live in this process
 * only: after a restart, keys that were bound to one are gone, as if their holder had died.
 *
 * @since 0.1.0
 */
import { Database } from "@novacron/database"
import { Duration, Effect, Layer } from "effect"
import type { ConsensusSettings } from "./ConsensusSettings.js"
import * as Core from "./internal/core.js"
import * as Local from "./internal/local.js"
import type { StateUnavailable } from "./StateError.js"
import { StateStore } from "./StateStore.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** TTL of a campaign's lease when none is given (default 10 s). */
  readonly leaseTtl?: Duration.DurationInput | undefined
  /** Changes kept for watches that start in the past (default 10000). */
  readonly history?: number | undefined
}

/**
 * The state service on the `Database` in context.
 *
 * @example
 * ```ts
 * import { Database } from "@novacron/database"
 * import { LocalStore, StateStore } from "@novacron/dwcp-ass"
 * import { Effect, Layer } from "effect"
 *
 * const program = Effect.gen(function* () {
 *   const store = yield* StateStore.StateStore
 *   const rev = yield* store.put("vm/a", JSON.stringify({ owner: "node-1" }))
 *   yield* store.compareAndSet("vm/a", rev, JSON.stringify({ owner: "node-2" }))
 * })
 *
 * const live = LocalStore.layer().pipe(Layer.provide(Database.layerSqlite({ path: ":memory:" })))
 * Effect.runPromise(program.pipe(Effect.provide(live)))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<StateStore, StateUnavailable, Database.Database> =>
  Layer.scoped(
    StateStore,
    Effect.gen(function* () {
      const db = yield* Database.Database
      const backend = yield* Local.make({
        db,
        defaultLeaseTtl: Duration.decode(options.leaseTtl ?? Duration.seconds(10)),
        history: options.history,
      })
      return Core.make(backend)
    }),
  )

/**
 * {@link layer} with the `dwcp.consensus` section's lease TTL.
 *
 * @since 0.1.0
 * @category layers
 */
export const fromSettings = (
  settings: ConsensusSettings,
): Layer.Layer<StateStore, StateUnavailable, Database.Database> => layer({ leaseTtl: settings.lease_ttl })
