/**
 * Metrics of the state API, as Effect metrics (the node's Prometheus endpoint exports them). The
 * labels are bounded: `op` is one of {@link operations}, `result` one of {@link results}, and
 * `election` names an election of the node's own code (not peer input).
 *
 * @since 0.2.0
 */
import { Metric, MetricBoundaries } from "effect"

/**
 * The timed operations of the state API.
 *
 * @since 0.2.0
 * @category models
 */
export type Operation = "get" | "list" | "put" | "compare_and_set" | "delete" | "campaign" | "leader"

/**
 * @since 0.2.0
 * @category models
 */
export const operations: ReadonlyArray<Operation> = [
  "get",
  "list",
  "put",
  "compare_and_set",
  "delete",
  "campaign",
  "leader",
]

/**
 * How an operation ended: `ok`, one per error tag, or `interrupted`.
 *
 * @since 0.2.0
 * @category models
 */
export type Result =
  | "ok"
  | "unavailable"
  | "timeout"
  | "compare_failed"
  | "deposed"
  | "decode_error"
  | "lease_lost"
  | "not_linearizable"
  | "not_owner"
  | "interrupted"

/**
 * @since 0.2.0
 * @category models
 */
export const results: ReadonlyArray<Result> = [
  "ok",
  "unavailable",
  "timeout",
  "compare_failed",
  "deposed",
  "decode_error",
  "lease_lost",
  "not_linearizable",
  "not_owner",
  "interrupted",
]

/**
 * Operations on the cluster state, tagged `op` and `result`.
 *
 * @since 0.2.0
 * @category metrics
 */
export const ops = Metric.counter("novacron_state_ops_total", {
  description: "State API operations by op and result",
  incremental: true,
})

/**
 * Seconds an operation took (whatever its result), tagged `op`. Buckets from 0.25 ms to ~8 s:
 * a local read is sub-millisecond, an etcd write across a failover takes seconds.
 *
 * @since 0.2.0
 * @category metrics
 */
export const opSeconds = Metric.histogram(
  "novacron_state_op_seconds",
  MetricBoundaries.exponential({ start: 0.00025, factor: 2, count: 16 }),
  "Seconds a state API operation took, by op",
)

/**
 * 1 while this node leads the election (tag `election`), 0 otherwise.
 *
 * @since 0.2.0
 * @category metrics
 */
export const leader = Metric.gauge("novacron_state_leader", {
  description: "1 while this node holds the leadership of the election",
})

/**
 * Gossip mode: members this node sees, tagged `state` (alive, suspect, dead, left), itself included.
 *
 * @since 0.3.0
 * @category metrics
 */
export const gossipMembers = Metric.gauge("novacron_gossip_members", {
  description: "Gossip members this node sees, by state",
})

/**
 * Gossip mode: what this node refused, tagged `what`: `datagram` (not from a cluster certificate,
 * a bad signature, a replay, a malformed message) or `update` (a state update writing keys its
 * writer does not own, malformed or oversized).
 *
 * @since 0.3.0
 * @category metrics
 */
export const gossipRefused = Metric.counter("novacron_gossip_refused_total", {
  description: "Gossip datagrams and state updates refused, by what",
  incremental: true,
})
