/**
 * The `storage` section of the node configuration (same names and defaults as `@novacron/config`).
 *
 * @since 0.1.0
 */
import * as Common from "@novacron/init/CommonSettings"
import { Duration as D, Schema } from "effect"

// Each leaf says what is allowed: the configuration loader prints it next to the key and its source.
const allowed = (message: string) => ({ message: () => ({ message, override: true }) })
const int = (min: number, max: number) =>
  Schema.Int.pipe(Schema.between(min, max)).annotations(allowed(`expected an integer ${min}..${max}`))
const str = Schema.String.annotations(allowed("expected a string"))
const opt = <S extends Schema.Schema.AnyNoContext>(schema: S, value: () => Schema.Schema.Type<S>) =>
  Schema.optionalWith(schema, { default: value, exact: true })

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
export const Backend = Schema.Literal("sqlite", "postgres", "redis").annotations(
  allowed('expected one of "sqlite", "postgres", "redis"'),
)

/**
 * @since 0.1.0
 */
export type Backend = typeof Backend.Type

/**
 * The whole `storage` section (the cache keys included, so one decoded section serves both packages).
 * This package owns it: `@novacron/config` composes it (subpath `@novacron/database/StorageSettings`).
 *
 * @since 0.1.0
 */
export const StorageSettings = Schema.Struct({
  backend: opt(Backend, () => "sqlite" as const),
  /** Empty: `<data_dir>/novacron.db`. */
  sqlite_path: opt(str, () => ""),
  postgres_url: opt(str, () => ""),
  redis_url: opt(str, () => ""),
  /** Upper bound of the PostgreSQL pool. */
  max_connections: opt(int(1, 10_000), () => 10),
  cache_ttl: opt(Duration, () => D.minutes(5)),
  /** At least 1: the cache would read 0 as an unbounded LRU. */
  cache_max_entries: opt(int(1, 100_000_000), () => 10_000),
  /** Empty: in-memory cache only. */
  cache_redis_url: opt(str, () => ""),
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
