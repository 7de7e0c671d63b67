/**
 * The replicated records other packages share through the cluster state, one keyspace each, so a
 * writer and its readers agree on one Schema. A node writes only its own keys in these (single
 * writer per key), so they need no conflict resolution in any mode.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import * as Keyspace from "./Keyspace.js"

/**
 * What a node can run and runs now (written by its VM manager, read by placement on every node).
 *
 * @since 0.1.0
 * @category models
 */
export const NodeCapacity = Schema.Struct({
  node: Schema.String,
  cpus: Schema.Int,
  vcpus_total: Schema.Int,
  vcpus_used: Schema.Int,
  memory_mb_total: Schema.Int,
  memory_mb_reserved: Schema.Int,
  memory_mb_used: Schema.Int,
  disk_mb_free: Schema.Int,
  running: Schema.Int,
  accel: Schema.NullOr(Schema.Literal("kvm", "tcg")),
  updated_at: Schema.Number,
})

/**
 * @since 0.1.0
 * @category models
 */
export type NodeCapacity = typeof NodeCapacity.Type

/**
 * `capacity/<node id>`: written under the node's lease, so a dead node's record goes with it.
 *
 * @example
 * ```ts
 * import { ClusterState } from "@novacron/dwcp-ass"
 *
 * console.log(ClusterState.capacity.key("node-a")) // "capacity/node-a"
 * ```
 *
 * @since 0.1.0
 * @category keyspaces
 */
export const capacity = Keyspace.make("capacity/", NodeCapacity)
