/**
 * Gossip mode: the state API without a quorum, for agents over the internet. Membership is SWIM
 * with Lifeguard (HashiCorp memberlist's algorithm and defaults), the state a delta-state CRDT
 * (Yjs, one `YKeyValue` document per writer node) spread by rumor mongering and repaired by
 * push-pull anti-entropy on state vectors. Everything travels as signed UDP datagrams: a datagram
 * counts only when signed by a node certificate of the cluster CA, and the signer's certificate
 * common name is its node id.
 *
 * Consistency, per operation:
 * - `get`, `list`: this node's replica (eventual: another node's write shows up within a few
 *   gossip rounds; a node's own writes are read back at once).
 * - `put`, `delete`: single writer per key. A node writes only keys it owns, `<space>/<node id>`
 *   or `<space>/<node id>/...`; any other key fails with `NotOwner`, and a peer's update that
 *   writes a key its writer does not own is refused by every receiver (logged).
 * - `watch`: every change this replica applies, in the order applied (revisions are local).
 * - `lease`: membership. A key put under a lease shows while this run of its writer is a live
 *   member, stops showing when SWIM declares the writer dead or it leaves, and is deleted when the
 *   lease's scope closes; the TTL is not used.
 * - `compareAndSet`, `campaign`, `leader`, writes with a `fence`: fail with `NotLinearizable`.
 *
 * @since 0.3.0
 */

import { Context, Effect, Layer } from "effect"
import * as Internal from "./internal/gossipStore.js"
import type { StateUnavailable } from "./StateError.js"
import { StateStore } from "./StateStore.js"

/**
 * A member as this node sees it.
 *
 * @since 0.3.0
 * @category models
 */
export interface Member {
  readonly id: string
  readonly addr: string
  readonly state: "alive" | "suspect" | "dead" | "left"
  readonly incarnation: number
  readonly meta: string
}

/**
 * The gossip agent behind the store: this node's id (its certificate's common name) and its view
 * of the membership.
 *
 * @since 0.3.0
 * @category services
 */
export class Gossip extends Context.Tag("@novacron/dwcp-ass/Gossip")<Gossip, GossipApi>() {}

/**
 * What {@link Gossip} offers.
 *
 * @since 0.5.0
 * @category models
 */
export interface GossipApi {
  readonly id: string
  readonly addr: string
  readonly members: Effect.Effect<ReadonlyArray<Member>>
  /** Updates refused since start (foreign keys, malformed, oversized). */
  readonly refused: Effect.Effect<number>
}

/**
 * @since 0.3.0
 * @category models
 */
export interface Options {
  /** UDP address to listen on, `host:port` (`0.0.0.0:7946`, `[::]:7946`). Port 0: any free port. */
  readonly bind: string
  /** Address other members reach this node at; default: `bind` (required when bind is a wildcard). */
  readonly advertise?: string | undefined
  /** Members to join through, `host:port`. */
  readonly seeds?: ReadonlyArray<string> | undefined
  /** memberlist's LAN (probe 1 s, timeout 500 ms) or WAN (5 s, 3 s) profile. */
  readonly profile?: "lan" | "wan" | undefined
  /** PEM files: the cluster CA, this node's certificate (its CN is the node id) and key. */
  readonly caFile: string
  readonly certFile: string
  readonly keyFile: string
  /** Announced to the other members in the SWIM metadata (hybrid mode's site). */
  readonly site?: string | undefined
  /** Datagrams older (or further in the future) than this are refused as replays. Default 60 s. */
  readonly maxSkewMs?: number | undefined
  /** Changes kept for watches that start in the past. Default 10000. */
  readonly history?: number | undefined
}

/**
 * Splits `host:port` and `[v6]:port`.
 *
 * @since 0.3.0
 * @category utils
 */
export const parseAddress = Internal.parseAddress

/**
 * The state service in gossip mode, plus the {@link Gossip} agent. The socket closes, and the
 * node announces it leaves, when the layer's scope closes.
 *
 * @example
 * ```ts
 * import { GossipStore, StateStore } from "@novacron/dwcp-ass"
 * import { Effect } from "effect"
 *
 * const live = GossipStore.layer({
 *   bind: "10.0.0.5:7946",
 *   seeds: ["10.0.0.6:7946"],
 *   caFile: "/var/lib/novacron/tls/ca.crt",
 *   certFile: "/var/lib/novacron/tls/node.crt",
 *   keyFile: "/var/lib/novacron/tls/node.key",
 * })
 * const program = Effect.gen(function* () {
 *   const store = yield* StateStore.StateStore
 *   // This node's certificate says node-a: it may write keys of node-a only.
 *   yield* store.put("capacity/node-a", JSON.stringify({ vcpus_free: 12 }))
 * })
 * Effect.runPromise(program.pipe(Effect.provide(live), Effect.scoped))
 * ```
 *
 * @since 0.3.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<StateStore | Gossip, StateUnavailable> =>
  Layer.scopedContext(
    Internal.make(options).pipe(
      Effect.map(({ store, gossip }) => Context.make(StateStore, store).pipe(Context.add(Gossip, Gossip.of(gossip)))),
    ),
  )
