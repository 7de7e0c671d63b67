/**
 * The whole `novacron.yaml` as an Effect `Schema`, with its defaults. Decoding `{}` yields the
 * embedded defaults; encoding gives back the file form (durations as `"30s"`).
 *
 * Every leaf carries a `message` annotation saying what is allowed, which the loader puts in
 * its issues.
 *
 * @since 0.1.0
 */
import { hostname } from "node:os"
import { ClusterSettings } from "@novacron/cluster/ClusterSettings"
import { StorageSettings } from "@novacron/database/StorageSettings"
import { TransportSettings } from "@novacron/dwcp-amst/TransportSettings"
import { ConsensusSettings } from "@novacron/dwcp-ass/ConsensusSettings"
import { CompressionSettings } from "@novacron/dwcp-hde/HdeSettings"
import * as Common from "@novacron/init/CommonSettings"
import { NetworkSettings } from "@novacron/network/NetworkSettings"
import { SecuritySettings, TokenEntry } from "@novacron/security/SecuritySettings"
import { Duration as D, Schema } from "effect"

const allowed = (message: string) => ({ message: () => ({ message, override: true }) })

/**
 * A duration written `500ms`, `30s`, `5m` or `1h`, decoded to an effect `Duration` (the one
 * schema every section uses, from `@novacron/init/CommonSettings`).
 *
 * @since 0.1.0
 */
export const Duration = Common.Duration

const int = (min: number, max: number) =>
  Schema.Int.pipe(Schema.between(min, max)).annotations(allowed(`expected an integer ${min}..${max}`))
const bool = Schema.Boolean.annotations(allowed("expected true or false"))
const str = Schema.String.annotations(allowed("expected a string"))
const oneOf = <const L extends ReadonlyArray<string>>(...values: L) =>
  Schema.Literal(...values).annotations(allowed(`expected one of ${values.map((v) => JSON.stringify(v)).join(", ")}`))
const port = Common.Port
const bytes = (min: number) => Common.bytes(min)

const opt = <S extends Schema.Schema.AnyNoContext>(schema: S, value: () => Schema.Schema.Type<S>) =>
  Schema.optionalWith(schema, { default: value, exact: true })

/** A section whose every field has a default, so `{}` decodes and the section itself may be omitted. */
const section = <S extends Schema.Schema.AnyNoContext>(schema: S) =>
  Schema.optionalWith(schema, { default: () => Schema.decodeUnknownSync(schema)({}), exact: true })

/**
 * Minimum CPU / memory / disk a node needs. `production` is the design's 4 CPU, 8 GiB, 100 GiB;
 * `minimal` (the default) lets the agent run on a 2-core laptop.
 *
 * @since 0.1.0
 */
export const ResourceProfile = oneOf("production", "minimal")

/**
 * @since 0.1.0
 */
export const PhaseTimeouts = Schema.Struct({
  pre_init: opt(Duration, () => D.seconds(10)),
  core: opt(Duration, () => D.seconds(20)),
  services: opt(Duration, () => D.seconds(20)),
  post_init: opt(Duration, () => D.seconds(10)),
})

/**
 * @since 0.1.0
 */
export const System = Schema.Struct({
  node_id: opt(Schema.NonEmptyString.annotations(allowed("expected a non-empty string")), () => hostname()),
  data_dir: opt(Schema.NonEmptyString.annotations(allowed("expected a non-empty path")), () => "./.novacron"),
  log_level: opt(oneOf("debug", "info", "warn", "error"), () => "info" as const),
  max_concurrency: opt(int(1, 1024), () => 8),
  health_check_port: opt(port, () => 7780),
  shutdown_timeout: opt(Duration, () => D.seconds(30)),
  phase_timeouts: section(PhaseTimeouts),
  resource_profile: opt(ResourceProfile, () => "minimal" as const),
  /** Overrides of the profile's minimums; 0 keeps the profile's value. */
  min_cpus: opt(int(0, 4096), () => 0),
  min_memory: opt(bytes(0), () => 0),
  min_disk: opt(bytes(0), () => 0),
})

/**
 * Where logs go besides stdout. `file` is relative to `system.data_dir`; empty = stdout only.
 *
 * @since 0.1.0
 */
export const Logging = Schema.Struct({
  format: opt(oneOf("auto", "json", "pretty"), () => "auto" as const),
  file: opt(str, () => ""),
  max_size: opt(bytes(4096), () => 10 * 1024 * 1024),
  max_files: opt(int(1, 100), () => 5),
})

/**
 * The `network` section: owned by `@novacron/network` (its schema, bounds and defaults).
 *
 * @since 0.1.0
 */
export const Network = NetworkSettings

/**
 * The `storage` section: owned by `@novacron/database` (the cache keys included), plus the
 * design's `enable_cache`.
 *
 * @since 0.1.0
 */
export const Storage = Schema.Struct({
  ...StorageSettings.fields,
  /** The design's switch for the cache; `false` is accepted but not in effect yet (the cache always runs). */
  enable_cache: opt(bool, () => true),
})

/**
 * An API token: only the SHA-256 of the secret is stored (owned by `@novacron/security`).
 *
 * @since 0.1.0
 */
export const Token = TokenEntry

/**
 * The `security` section: owned by `@novacron/security`, plus the design's encryption keys.
 *
 * @since 0.1.0
 */
export const Security = Schema.Struct({
  ...SecuritySettings.fields,
  /** Secrets at rest are always sealed; `false` is accepted but not in effect yet. */
  enable_encryption: opt(bool, () => true),
  /** The AEAD that seals secrets at rest: the only one built. */
  encryption_algo: opt(oneOf("aes-256-gcm"), () => "aes-256-gcm" as const),
})

/**
 * @since 0.1.0
 */
export const Monitoring = Schema.Struct({
  enabled: opt(bool, () => true),
  /** Where health and metrics listen (they are unauthenticated, hence loopback by default). */
  listen_address: opt(Schema.NonEmptyString.annotations(allowed("expected an address")), () => "127.0.0.1"),
  metrics_port: opt(port, () => 7781),
  /** Accepted; no tracer is built yet, so `true` is not in effect. */
  tracing: opt(bool, () => false),
  tracing_endpoint: opt(str, () => ""),
  /** Accepted; no profiler is built yet, so `true` is not in effect. */
  enable_profiling: opt(bool, () => false),
  profiling_port: opt(port, () => 6060),
})

/**
 * `dwcp.transport`: owned by `@novacron/dwcp-amst`. Its `min_streams <= max_streams` check is the
 * loader's rule here, so it is reported on the key rather than on the section.
 *
 * @since 0.1.0
 */
export const Transport = Schema.Struct({
  ...TransportSettings.from.fields,
  /** The design's key; streams have no timeout of their own yet, so it is accepted but not in effect. */
  stream_timeout: opt(Duration, () => D.seconds(60)),
})

/**
 * `dwcp.compression`: owned by `@novacron/dwcp-hde`. The level's bound per algorithm (lz4 0..12)
 * is the loader's rule here, so it is reported on the key rather than on the section.
 *
 * @since 0.1.0
 */
export const Compression = Schema.Struct({
  ...CompressionSettings.from.fields,
  /** The design's key; no learned model is built yet, so `true` is accepted but not in effect. */
  enable_ml_model: opt(bool, () => false),
})

/**
 * `dwcp.consensus`: owned by `@novacron/dwcp-ass` (the design's `protocol` is an alias of
 * `algorithm`). The agent does not start a consensus component yet, so none of it is in effect.
 *
 * @since 0.1.0
 */
export const Consensus = ConsensusSettings

/**
 * The three network environments DWCP adapts to; `""` = auto-detect.
 *
 * @since 0.1.0
 */
export const Mode = oneOf("", "datacenter", "internet", "hybrid")

/**
 * Workload placement (`@novacron/dwcp-itp`). `auto` means `fragmentation` when
 * `enable_v3_placement` is on, else `binpack`.
 *
 * @since 0.1.0
 */
export const Placement = Schema.Struct({
  policy: opt(oneOf("auto", "binpack", "spread", "balanced", "fragmentation"), () => "auto" as const),
  seed: opt(int(0, 2 ** 32 - 1), () => 0),
  fragmentation_classes: opt(int(1, 1024), () => 64),
  fragmentation_half_life: opt(int(1, 1_000_000_000), () => 10_000),
  optimizer_top_k: opt(int(1, 100), () => 5),
})

/**
 * @since 0.1.0
 */
export const Dwcp = Schema.Struct({
  enable_auto_detection: opt(bool, () => true),
  forced_mode: opt(Mode, () => "" as const),
  detection_interval: opt(Duration, () => D.seconds(30)),
  v3_rollout_percentage: opt(int(0, 100), () => 0),
  enable_v3_transport: opt(bool, () => false),
  enable_v3_compression: opt(bool, () => false),
  enable_v3_prediction: opt(bool, () => false),
  enable_v3_state_sync: opt(bool, () => false),
  enable_v3_consensus: opt(bool, () => false),
  enable_v3_placement: opt(bool, () => false),
  transport: section(Transport),
  compression: section(Compression),
  consensus: section(Consensus),
  placement: section(Placement),
})

/**
 * The whole configuration file.
 *
 * @since 0.1.0
 */
export const Settings = Schema.Struct({
  system: section(System),
  logging: section(Logging),
  network: section(Network),
  storage: section(Storage),
  security: section(Security),
  monitoring: section(Monitoring),
  dwcp: section(Dwcp),
  /** Owned by `@novacron/cluster` (join server and join tokens). */
  cluster: section(ClusterSettings),
})

/**
 * The decoded configuration.
 *
 * @since 0.1.0
 */
export type Settings = typeof Settings.Type

/**
 * The configuration as written in a file (durations as strings, every key present).
 *
 * @since 0.1.0
 */
export type Encoded = typeof Settings.Encoded

/**
 * The embedded defaults. `system.node_id` is the host name.
 *
 * @since 0.1.0
 */
export const defaults = (): Settings => Schema.decodeUnknownSync(Settings)({})
