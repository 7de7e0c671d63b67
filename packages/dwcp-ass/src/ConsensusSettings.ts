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
 * `gossip`: SWIM membership and CRDT state over signed UDP (eventual, single writer per key);
 * `hybrid`: etcd inside the `site`, gossip between sites (the design's mode table: Raft + gossip);
 * `pbft`: PBFT among the `pbft_members` (4 to 7), tolerating Byzantine members.
 *
 * @since 0.1.0
 * @category settings
 */
export const Algorithm = Schema.Literal("raft", "pbft", "gossip", "hybrid").annotations(
  allowed('expected one of "raft", "pbft", "gossip", "hybrid"'),
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
 * A gossip address, `host:port` or `[v6]:port`.
 *
 * @since 0.3.0
 * @category settings
 */
export const GossipAddress = Schema.String.pipe(
  Schema.pattern(/^(\[[0-9a-fA-F:.]+\]|[^\s:[\]/]+):\d{1,5}$/),
).annotations(allowed("expected host:port like 10.0.0.5:7946"))

/**
 * A site's name (hybrid mode): a key segment, `site/<site>/...`.
 *
 * @since 0.5.0
 * @category settings
 */
export const Site = Schema.String.pipe(Schema.pattern(/^[a-z0-9][a-z0-9_.-]{0,62}$/)).annotations(
  allowed("expected a site name: lowercase letters, digits, '_', '.', '-', at most 63"),
)

/**
 * A PBFT member, `<node id>@<host:port>` (`node-a@10.0.0.5:7947`): the node id is its
 * certificate's common name.
 *
 * @since 0.5.0
 * @category settings
 */
export const PbftMember = Schema.String.pipe(
  Schema.pattern(/^[^\s@]+@(\[[0-9a-fA-F:.]+\]|[^\s:[\]/]+):\d{1,5}$/),
).annotations(allowed("expected <node id>@<host:port> like node-a@10.0.0.5:7947"))

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
  /** Byzantine fault tolerance: informative, `algorithm: pbft` is what selects PBFT mode. */
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
  /**
   * PEM file of the CA that signed the etcd members' certificates (`https://` endpoints). Empty:
   * the cluster CA, `<data_dir>/tls/ca.crt`.
   */
  etcd_ca_file: Schema.optionalWith(Schema.String, { default: () => "", exact: true }),
  /** PEM client certificate shown to etcd (`--client-cert-auth`). Empty: `<data_dir>/tls/node.crt`. */
  etcd_cert_file: Schema.optionalWith(Schema.String, { default: () => "", exact: true }),
  /** PEM key of `etcd_cert_file`. Empty: `<data_dir>/tls/node.key`. */
  etcd_key_file: Schema.optionalWith(Schema.String, { default: () => "", exact: true }),
  /** Gossip mode: UDP address to listen on (memberlist's port, 7946). */
  gossip_bind: Schema.optionalWith(GossipAddress, { default: () => "0.0.0.0:7946", exact: true }),
  /** Gossip mode: the address other members reach this node at; needed when `gossip_bind` is a wildcard. */
  gossip_advertise: Schema.optionalWith(Schema.Union(Schema.Literal(""), GossipAddress), {
    default: () => "" as const,
    exact: true,
  }),
  /** Gossip mode: members to join through. */
  gossip_seeds: Schema.optionalWith(Schema.Array(GossipAddress), { default: () => [], exact: true }),
  /** Gossip mode: memberlist's LAN (probe 1 s, timeout 500 ms) or WAN (5 s, 3 s) timing. */
  gossip_profile: Schema.optionalWith(Schema.Literal("lan", "wan").annotations(allowed('expected "lan" or "wan"')), {
    default: () => "lan" as const,
    exact: true,
  }),
  /** Hybrid mode: this node's site; its `etcd_endpoints` are the site's etcd, the gossip_* keys the pool between sites. */
  site: Schema.optionalWith(Schema.Union(Schema.Literal(""), Site), { default: () => "" as const, exact: true }),
  /** PBFT mode: every member as `<node id>@<host:port>` (its certificate's CN, its peer link); 4 to 7, this node included. */
  pbft_members: Schema.optionalWith(Schema.Array(PbftMember), { default: () => [], exact: true }),
  /** PBFT mode: TCP address to listen on; empty: this node's own entry in `pbft_members`. */
  pbft_bind: Schema.optionalWith(Schema.Union(Schema.Literal(""), GossipAddress), {
    default: () => "" as const,
    exact: true,
  }),
  /** PBFT mode: first view-change timeout (a silent primary is replaced after about this); doubles per retry. */
  pbft_view_timeout: Schema.optionalWith(Common.Duration, { default: () => D.seconds(1), exact: true }),
}).pipe(
  Schema.filter((s) => {
    if (s.algorithm === "hybrid" && s.site === "")
      return { path: ["site"], message: "hybrid mode needs this node's site" }
    if (s.algorithm === "hybrid" && s.etcd_endpoints.length === 0)
      return { path: ["etcd_endpoints"], message: "hybrid mode needs the site's etcd members" }
    if (s.algorithm === "pbft") {
      const n = new Set(s.pbft_members.map((m) => m.slice(0, m.indexOf("@")))).size
      if (n !== s.pbft_members.length) return { path: ["pbft_members"], message: "a node id is listed twice" }
      if (n < 4 || n > 7)
        return {
          path: ["pbft_members"],
          message: `pbft needs 4 to 7 members (4-6 tolerate one Byzantine member, 7 two), got ${n}${n < 4 ? ": fewer than 4 cannot tolerate a Byzantine member" : ""}`,
        }
    }
    const https = s.etcd_endpoints.filter((e) => e.startsWith("https://")).length
    // One set of credentials serves every member: a mixed list would send some calls in clear.
    if (https > 0 && https < s.etcd_endpoints.length)
      return {
        path: ["etcd_endpoints"],
        message: "expected all etcd endpoints https:// or all http:// (one TLS setting serves every member)",
      }
    const files = (["etcd_ca_file", "etcd_cert_file", "etcd_key_file"] as const).filter((k) => s[k] !== "")
    if (https === 0 && files.length > 0)
      return { path: [files[0]!], message: "set, but etcd_endpoints are not https://" }
    if (files.length > 0 && files.includes("etcd_cert_file") !== files.includes("etcd_key_file"))
      return { path: ["etcd_key_file"], message: "etcd_cert_file and etcd_key_file must be set together" }
    return true
  }),
)

/**
 * Whether the etcd endpoints are `https://` (then the client shows a certificate).
 *
 * @since 0.2.0
 * @category settings
 */
export const usesTls = (settings: ConsensusSettings): boolean =>
  settings.etcd_endpoints.some((e) => e.startsWith("https://"))

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
