/**
 * The cache keys of the `storage` section (same names and defaults as `@novacron/config`); other
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
  cache_ttl: Schema.optionalWith(Duration, { default: () => D.minutes(5) }),
  /** Bound of the in-memory level (least recently used entries go first). */
  cache_max_entries: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 100_000_000)), { default: () => 10_000 }),
  /** Empty: in-memory only. */
  cache_redis_url: Schema.optionalWith(Schema.String, { default: () => "" }),
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
