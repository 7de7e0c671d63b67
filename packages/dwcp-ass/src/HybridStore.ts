/**
 * Hybrid mode (Consul's model): Raft inside a site, gossip between sites. Each site runs its own
 * etcd; its agents keep everything linearizable there. One gossip pool spans the sites, each
 * member announcing its site; a site's keys in the pool, `site/<site>/...`, are written by one
 * node only: the site's coordinator (elected in the site's etcd), which re-publishes what its
 * etcd holds under `site/<site>/`. Readers in other sites see them eventually.
 *
 * Consistency, per operation (key routing: `site/<other site>/...` is another site's, every
 * other key this site's):
 * - this site's keys (`vm/...`, `site/<this site>/...`): every operation is linearizable, on the
 *   site's etcd (as in Raft mode), and so are `lease`, `campaign` and `leader`.
 * - another site's keys: `get`, `list`, `watch` read this node's gossip replica (eventual: as
 *   fresh as the other site's coordinator last re-published and gossip carried); `put`,
 *   `delete`, `compareAndSet` fail with `NotOwner` (write them in their site).
 * - `list`/`watch` of `site/` (or `site/<partial name>`): every site's keys from the gossip
 *   replica, this site's included as its coordinator re-published them (eventual). A prefix
 *   spanning this site's etcd and the replica (`""`, `"s"`) fails with `NotLinearizable`: the two
 *   have no common revision.
 * - revisions: etcd's for this site's keys, the replica's own counter for the others'.
 *
 * @since 0.5.0
 */
import { Context, type Duration, Effect, Layer } from "effect"
import type * as EtcdStore from "./EtcdStore.js"
import * as GossipStore from "./GossipStore.js"
import * as Internal from "./internal/hybrid.js"
import type { StateUnavailable } from "./StateError.js"
import { StateStore } from "./StateStore.js"

/**
 * @since 0.5.0
 * @category models
 */
export interface Options {
  /** This node's site: `[a-z0-9][a-z0-9_.-]*`, at most 63 characters. */
  readonly site: string
  /** The site's etcd. */
  readonly etcd: EtcdStore.Options
  /** The gossip pool that spans the sites (its `site` is set from {@link Options.site}). */
  readonly gossip: GossipStore.Options
  /** Election of the site's coordinator in the site's etcd. Default `hybrid/coordinator`. */
  readonly election?: string | undefined
  /**
   * How often the coordinator compares its etcd with the site's keys in the pool and repairs the
   * difference (besides on every change of either). Default 1 s.
   */
  readonly reconcileEvery?: Duration.DurationInput | undefined
}

/**
 * The hybrid agent: this node's site, whether it coordinates the site now, and the sites the
 * gossip pool knows of (from the members' SWIM metadata).
 *
 * @since 0.5.0
 * @category services
 */
export class Hybrid extends Context.Tag("@novacron/dwcp-ass/Hybrid")<Hybrid, HybridApi>() {}

/**
 * What {@link Hybrid} offers.
 *
 * @since 0.5.0
 * @category models
 */
export interface HybridApi {
  readonly site: string
  /** Whether this node is its site's coordinator, the one writer of its site's keys in the pool. */
  readonly coordinator: Effect.Effect<boolean>
  /** Live members' sites, member id to site. */
  readonly sites: Effect.Effect<ReadonlyMap<string, string>>
  /** Terms this node has coordinated since start (each a fresh election). */
  readonly terms: Effect.Effect<number>
}

/**
 * The site a key belongs to when it is a site key (`site/<site>/...`), else undefined.
 *
 * @since 0.5.0
 * @category utils
 */
export const siteOf = Internal.siteOf

/**
 * The hybrid store: the site's etcd and the inter-site gossip pool, the coordinator's candidacy
 * and re-publishing running in the layer's scope.
 *
 * @example
 * ```ts
 * import { HybridStore, StateStore } from "@novacron/dwcp-ass"
 * import { Effect } from "effect"
 *
 * const live = HybridStore.layer({
 *   site: "fra",
 *   etcd: { endpoints: ["http://10.1.0.5:2379", "http://10.1.0.6:2379", "http://10.1.0.7:2379"] },
 *   gossip: {
 *     bind: "10.1.0.5:7946",
 *     seeds: ["10.2.0.5:7946"],
 *     caFile: "/var/lib/novacron/tls/ca.crt",
 *     certFile: "/var/lib/novacron/tls/node.crt",
 *     keyFile: "/var/lib/novacron/tls/node.key",
 *   },
 * })
 * const program = Effect.gen(function* () {
 *   const store = yield* StateStore.StateStore
 *   // Linearizable, in fra's etcd; fra's coordinator re-publishes it to the other sites.
 *   yield* store.put("site/fra/capacity", JSON.stringify({ vcpus_free: 96 }))
 *   // Another site's summary, as gossip last brought it.
 *   const ams = yield* store.get("site/ams/capacity")
 *   console.log(ams)
 * })
 * Effect.runPromise(program.pipe(Effect.provide(live), Effect.scoped))
 * ```
 *
 * @since 0.5.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<StateStore | Hybrid | GossipStore.Gossip, StateUnavailable> =>
  Layer.scopedContext(
    Internal.make(options).pipe(
      Effect.map(({ store, hybrid, gossip }) =>
        Context.make(StateStore, store).pipe(
          Context.add(Hybrid, Hybrid.of(hybrid)),
          Context.add(GossipStore.Gossip, GossipStore.Gossip.of(gossip)),
        ),
      ),
    ),
  )
