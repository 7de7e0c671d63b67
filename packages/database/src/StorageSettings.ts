/**
 * The `storage` section of the node configuration (same names and defaults as `@novacron/config`).
 *
 * @since 0.1.0
 */
import * as Common from "@novacron/init/CommonSettings"
import { Duration as D, Schema } from "effect"

/**
 * A duration written `500ms`, `30s`, `5m` or `1h` (the configuration's one duration schema,
 * from `@novacron/init/CommonSettings`; encodes as `"30s"`).
 *
 * @since 0.1.0
 */
export const Duration = Common.Duration

/**
 * Which store keeps the node's state.
 *
 * @since 0.1.0
 */
export const Backend = Schema.Literal("sqlite", "postgres", "redis")

/**
 * @since 0.1.0
 */
export type Backend = typeof Backend.Type

/**
 * The whole `storage` section (the cache keys included, so one decoded section serves both packages).
 *
 * @since 0.1.0
 */
export const StorageSettings = Schema.Struct({
  backend: Schema.optionalWith(Backend, { default: () => "sqlite" as const }),
  /** Empty: `<data_dir>/novacron.db`. */
  sqlite_path: Schema.optionalWith(Schema.String, { default: () => "" }),
  postgres_url: Schema.optionalWith(Schema.String, { default: () => "" }),
  redis_url: Schema.optionalWith(Schema.String, { default: () => "" }),
  /** Upper bound of the PostgreSQL pool. */
  max_connections: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 10_000)), { default: () => 10 }),
  cache_ttl: Schema.optionalWith(Duration, { default: () => D.minutes(5) }),
  cache_max_entries: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 100_000_000)), { default: () => 10_000 }),
  /** Empty: in-memory cache only. */
  cache_redis_url: Schema.optionalWith(Schema.String, { default: () => "" }),
})

/**
 * @since 0.1.0
 */
export type StorageSettings = typeof StorageSettings.Type

/**
 * The defaults (the decoding of an empty section).
 *
 * @since 0.1.0
 */
export const defaults: StorageSettings = Schema.decodeUnknownSync(StorageSettings)({})

/**
 * Node facts from other sections that the database needs.
 *
 * @since 0.1.0
 */
export interface NodeInfo {
  /** `system.data_dir`: the embedded SQLite file defaults to `<data_dir>/novacron.db`. */
  readonly data_dir: string
}

/**
 * Decodes a raw section (`backend: "postgres"`, `cache_ttl: "30s"`, ...), filling the defaults.
 *
 * @since 0.1.0
 */
export const decode = (raw: unknown): StorageSettings => Schema.decodeUnknownSync(StorageSettings)(raw)
