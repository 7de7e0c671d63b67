/**
 * The cache keys of the `storage` section (`cache_ttl`, `cache_max_entries`, `cache_redis_url`):
 * this package is their one owner; `@novacron/config` composes them with the database's keys
 * into `storage` (subpath `@novacron/cache/CacheSettings`, which loads no Redis client). Other
 * keys of the section are ignored, so the whole decoded section can be passed.
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
 * @since 0.1.0
 */
export const CacheSettings = Schema.Struct({
  /** Lifetime of an entry on both levels. */
  cache_ttl: Common.withDefault(Duration, () => D.minutes(5)),
  /** Bound of the in-memory level (least recently used entries go first). At least 1: lru-cache reads 0 as unbounded. */
  cache_max_entries: Common.withDefault(Common.int(1, 100_000_000), () => 10_000),
  /** Empty: in-memory only. */
  cache_redis_url: Common.withDefault(Common.str, () => ""),
  /** The design's switch: the cache always runs, so `false` is accepted but not in effect. */
  enable_cache: Common.withDefault(Common.bool, () => true),
})

/**
 * @since 0.1.0
 */
export type CacheSettings = typeof CacheSettings.Type

/**
 * The defaults (the decoding of an empty section).
 *
 * @since 0.1.0
 */
export const defaults: CacheSettings = Schema.decodeUnknownSync(CacheSettings)({})

/**
 * Decodes a raw section (`cache_ttl: "30s"`, ...), filling the defaults.
 *
 * @since 0.1.0
 */
export const decode = (raw: unknown): CacheSettings => Schema.decodeUnknownSync(CacheSettings)(raw)
