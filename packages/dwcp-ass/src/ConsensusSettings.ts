/**
 * The `dwcp.consensus` section of `novacron.yaml`: which protocol keeps the cluster state and how
 * it is tuned. `@novacron/config` composes this schema (the design's `protocol` is an alias of
 * `algorithm`); loading it does not load the runtime.
 *
 * @since 0.1.0
 */
import * as Common from "@novacron/init/CommonSettings"
import { Duration as D, Schema } from "effect"

const allowed = (message: string) => ({ message: () => ({ message, override: true }) })

/**
 * `raft`: etcd (linearizable) when `etcd_endpoints` is set, else the node's local database;
 * `gossip` and `pbft` are later modes.
 *
 * @since 0.1.0
 * @category settings
 */
export const Algorithm = Schema.Literal("raft", "pbft", "gossip").annotations(
  allowed('expected one of "raft", "pbft", "gossip"'),
)

/**
 * An etcd client URL (`http://10.0.0.5:2379`).
 *
 * @since 0.1.0
 * @category settings
 */
export const EtcdEndpoint = Schema.String.pipe(Schema.pattern(/^https?:\/\/[^\s/]+$/)).annotations(
  allowed("expected an etcd client URL like http://10.0.0.5:2379"),
)

/**
 * @since 0.1.0
 * @category settings
 */
export const ConsensusSettings = Schema.Struct({
  /** Protocol; the design writes it `protocol`. */
  algorithm: Schema.optionalWith(Algorithm, { default: () => "raft" as const, exact: true }),
  /** etcd's `--election-timeout` (LAN: etcd's 1 s; the design's WAN value is 5 s). */
  election_timeout: Schema.optionalWith(Common.Duration, { default: () => D.seconds(1), exact: true }),
  /** etcd's `--heartbeat-interval` (LAN: 100 ms; WAN: 500 ms); must be below `election_timeout`. */
  heartbeat_interval: Schema.optionalWith(Common.Duration, { default: () => D.millis(100), exact: true }),
  /** Byzantine fault tolerance (PBFT mode, not built yet). */
  byzantine_tolerance: Schema.optionalWith(Schema.Boolean.annotations(allowed("expected true or false")), {
    default: () => false,
    exact: true,
  }),
  /** etcd members to use in raft mode; empty: the single-node local store. */
  etcd_endpoints: Schema.optionalWith(Schema.Array(EtcdEndpoint), { default: () => [], exact: true }),
  /** Lease of an elected coordinator: a dead leader is replaced within about this long. */
  lease_ttl: Schema.optionalWith(Common.Duration, { default: () => D.seconds(10), exact: true }),
  /** Deadline of one call to the store (a write that hits it is reported as of unknown outcome). */
  call_timeout: Schema.optionalWith(Common.Duration, { default: () => D.seconds(5), exact: true }),
})

/**
 * @since 0.1.0
 * @category settings
 */
export type ConsensusSettings = typeof ConsensusSettings.Type

/**
 * The defaults (the decoding of an empty section).
 *
 * @since 0.1.0
 * @category settings
 */
export const defaults: ConsensusSettings = Schema.decodeUnknownSync(ConsensusSettings)({})

/**
 * Decodes a raw section (`election_timeout: "5s"`, ...), filling the defaults.
 *
 * @since 0.1.0
 * @category settings
 */
export const decode = (raw: unknown): ConsensusSettings => Schema.decodeUnknownSync(ConsensusSettings)(raw)
