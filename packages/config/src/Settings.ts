/**
 * The whole `novacron.yaml` as an Effect `Schema`, with its defaults. Decoding `{}` yields the
 * embedded defaults; encoding gives back the file form (durations as `"30s"`).
 *
 * Every leaf carries a `message` annotation saying what is allowed, which the loader puts in
 * its issues.
 *
 * @since 0.1.0
 */
import { ApiSettings } from "@novacron/api/ApiSettings"
import { CacheSettings } from "@novacron/cache/CacheSettings"
import { ClusterSettings } from "@novacron/cluster/ClusterSettings"
import { StorageSettings } from "@novacron/database/StorageSettings"
import { DwcpSettings } from "@novacron/dwcp/DwcpSettings"
import { TransportSettings } from "@novacron/dwcp-amst/TransportSettings"
import { ConsensusSettings } from "@novacron/dwcp-ass/ConsensusSettings"
import { CompressionSettings } from "@novacron/dwcp-hde/HdeSettings"
import { PlacementSection, PlacementSettings } from "@novacron/dwcp-itp/PlacementSettings"
import { Mode as DetectionMode, DetectionSettings } from "@novacron/environment/DetectionSettings"
import * as Common from "@novacron/init/CommonSettings"
import * as SystemSettings from "@novacron/init/SystemSettings"
import { LoggingSettings, SystemLogLevel } from "@novacron/logging/LoggingSettings"
import { MigrationSettings } from "@novacron/migration/MigrationSettings"
import { MlSettings } from "@novacron/ml/MlSettings"
import { MonitoringSettings } from "@novacron/monitoring/MonitoringSettings"
import { NetworkSettings } from "@novacron/network/NetworkSettings"
import { OrchestrationSettings } from "@novacron/orchestration/OrchestrationSettings"
import { ResourceProfile as Profile, ResourceSettings } from "@novacron/resources/ResourceSettings"
import { SecuritySettings, TokenEntry } from "@novacron/security/SecuritySettings"
import { VmSettings } from "@novacron/vm/VmSettings"
import { Duration as D, Schema } from "effect"

/**
 * A duration written `500ms`, `30s`, `5m` or `1h`, decoded to an effect `Duration` (the one
 * schema every section uses, from `@novacron/init/CommonSettings`).
 *
 * @since 0.1.0
 */
export const Duration = Common.Duration

const { bool, section, withDefault: opt } = Common

/**
 * Minimum CPU / memory / disk a node needs. `production` is the design's 4 CPU, 8 GiB, 100 GiB;
 * `minimal` (the default) lets the agent run on a 2-core laptop.
 *
 * @since 0.1.0
 */
export const ResourceProfile = Profile

/**
 * The deadline of each boot phase (owned by `@novacron/init/SystemSettings`).
 *
 * @since 0.1.0
 */
export const PhaseTimeouts = SystemSettings.PhaseTimeouts

const { node_id, data_dir, ...boot } = SystemSettings.SystemSettings.fields

/**
 * The `system` section, composed from its owners: the boot kernel's keys
 * (`@novacron/init/SystemSettings`), `log_level` (`@novacron/logging/LoggingSettings`) and the
 * resource minimums (`@novacron/resources/ResourceSettings`).
 *
 * @since 0.1.0
 */
export const System = Schema.Struct({
  node_id,
  data_dir,
  ...SystemLogLevel.fields,
  ...boot,
  ...ResourceSettings.fields,
})

/**
 * Where logs go besides stdout (owned by `@novacron/logging/LoggingSettings`). `file` is relative
 * to `system.data_dir`; empty = stdout only.
 *
 * @since 0.1.0
 */
export const Logging = LoggingSettings

/**
 * The `network` section: owned by `@novacron/network` (its schema, bounds and defaults).
 *
 * @since 0.1.0
 */
export const Network = NetworkSettings

/**
 * The `storage` section: the database's keys (`@novacron/database/StorageSettings`) and the
 * cache's (`@novacron/cache/CacheSettings`, the design's `enable_cache` included).
 *
 * @since 0.1.0
 */
export const Storage = Schema.Struct({
  ...StorageSettings.fields,
  ...CacheSettings.fields,
})
/**
 * An API token: only the SHA-256 of the secret is stored (owned by `@novacron/security`).
 *
 * @since 0.1.0
 */
export const Token = TokenEntry

/**
 * The `security` section: owned by `@novacron/security` (the design's encryption keys included).
 *
 * @since 0.1.0
 */
export const Security = SecuritySettings

/**
 * The `monitoring` section: owned by `@novacron/monitoring`.
 *
 * @since 0.1.0
 */
export const Monitoring = MonitoringSettings

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
export const Mode = DetectionMode

/**
 * Workload placement, owned by `@novacron/dwcp-itp/PlacementSettings`. `auto` means
 * `fragmentation` when `enable_v3_placement` is on, else `binpack`.
 *
 * @since 0.1.0
 */
export const Placement = PlacementSection

/**
 * The `dwcp` section: detection keys from `@novacron/environment/DetectionSettings`, each
 * subsection from the package that runs it.
 *
 * @since 0.1.0
 */
export const Dwcp = Schema.Struct({
  ...DetectionSettings.fields,
  // The rollout and the v3 switches: @novacron/dwcp's.
  ...DwcpSettings.fields,
  enable_v3_placement: PlacementSettings.fields.enable_v3_placement,
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
  /** Owned by `@novacron/vm` (QEMU, accelerator, stop timeout, capacity reserves). */
  vm: section(VmSettings),
  /** Owned by `@novacron/api` (listen address, port 7782, gRPC port 7783, body and rate limits). */
  api: section(ApiSettings),
  /** Owned by `@novacron/orchestration` (task retries and timeout, agent states, drain, coordinator TTL). */
  orchestration: section(OrchestrationSettings),
  /** Owned by `@novacron/ml` (bandwidth model path, enable, load timeout). */
  ml: section(MlSettings),
  /** Owned by `@novacron/migration` (tunnel port 7702, downtime limit, multifd, auto-converge, postcopy, timeouts). */
  migration: section(MigrationSettings),
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
