/**
 * The database keys of the `storage` section; the cache keys beside them are owned by
 * `@novacron/cache/CacheSettings`, and `@novacron/config` composes the two.
 *
 * @since 0.1.0
 */
import * as Common from "@novacron/init/CommonSettings"
import { Schema } from "effect"

// Each leaf says what is allowed: the configuration loader prints it next to the key and its source.
const { int, oneOf, str, withDefault: opt } = Common

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
export const Backend = oneOf("sqlite", "postgres", "redis")

/**
 * @since 0.1.0
 */
export type Backend = typeof Backend.Type

/**
 * The database keys of `storage`. This package owns them: `@novacron/config` composes them with
 * the cache's (subpath `@novacron/database/StorageSettings`). Other keys are ignored.
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
 * Decodes a raw section (`backend: "postgres"`, ...), filling the defaults.
 *
 * @since 0.1.0
 */
export const decode = (raw: unknown): StorageSettings => Schema.decodeUnknownSync(StorageSettings)(raw)
