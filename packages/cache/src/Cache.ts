/**
 * A two-level cache: an in-memory LRU with TTL in front of Redis as the level shared by all
 * nodes. A write or invalidation publishes on Redis before it returns, and every hit of the local
 * level is validated against the shared entry's version in the same round trip that would fetch
 * it, so no node serves a value older than a write that has returned (see the README).
 *
 * @since 0.1.0
 */
import { Context, Duration, Effect, Layer, type Option, Schedule, type SubscriptionRef } from "effect"
import type { RedisUnavailable } from "./CacheError.js"
import type { CacheSettings } from "./CacheSettings.js"
import * as internal from "./internal/cache.js"

/**
 * - `memory-only`: no `cache_redis_url`; healthy.
 * - `connected`: both levels in use; healthy.
 * - `degraded`: Redis unreachable; serving the in-memory level while reconnecting in the background.
 *
 * @since 0.1.0
 */
export type Status = "memory-only" | "connected" | "degraded"

/**
 * Counters since the cache was built.
 *
 * @since 0.1.0
 */
export interface Stats {
  readonly status: Status
  /** Entries currently in the in-memory level. */
  readonly localEntries: number
  /** Served from the in-memory level (validated against Redis when connected). */
  readonly localHits: number
  /** Fetched from Redis (absent or outdated locally). */
  readonly sharedHits: number
  readonly misses: number
  /** Local entries dropped on another node's publication. */
  readonly remoteInvalidations: number
  /** Times the Redis link came back after being lost (or absent at boot). */
  readonly recoveries: number
  /** When the current degraded period began (Unix ms), if degraded. */
  readonly degradedSince: number | undefined
}

/**
 * The cache service. Values are strings; operations never fail (a Redis error degrades the cache).
 *
 * @since 0.1.0
 */
export interface CacheService {
  readonly get: (key: string) => Effect.Effect<Option.Option<string>>
  /** Stores on both levels and publishes the change before returning. `ttl` defaults to `cache_ttl`. */
  readonly set: (key: string, value: string, ttl?: Duration.DurationInput) => Effect.Effect<void>
  /** Removes from both levels and publishes the removal before returning. */
  readonly invalidate: (key: string) => Effect.Effect<void>
  /** The cached value, or `compute`'s result, stored. */
  readonly getOrSet: <E, R>(key: string, compute: Effect.Effect<string, E, R>) => Effect.Effect<string, E, R>
  /** Current status; `statusChanges` to follow it. */
  readonly status: Effect.Effect<Status>
  readonly statusRef: SubscriptionRef.SubscriptionRef<Status>
  readonly stats: Effect.Effect<Stats>
  /** Diagnostics: what the in-memory level holds for `key`, without touching Redis or recency. */
  readonly peekLocal: (key: string) => Option.Option<string>
}

/**
 * @since 0.1.0
 */
export class Cache extends Context.Tag("@novacron/cache/Cache")<Cache, CacheService>() {}

/**
 * Knobs that are not settings.
 *
 * @since 0.1.0
 */
export interface Options {
  /** Prefix of the Redis keys and of the pub/sub channel; nodes sharing entries use the same. Default `novacron:cache:`. */
  readonly namespace?: string | undefined
  /** Background reconnection on the node's one Redis schedule (`@novacron/redis`): exponential from `reconnectBase` (default 200 ms) capped at `reconnectMax` (default 5 s). */
  readonly reconnectBase?: Duration.DurationInput | undefined
  readonly reconnectMax?: Duration.DurationInput | undefined
}

/**
 * The boot retry policy for Redis: 3 retries after 1 s, 2 s and 4 s.
 *
 * @since 0.1.0
 */
export const retrySchedule: Schedule.Schedule<unknown, unknown> = Schedule.exponential(Duration.seconds(1)).pipe(
  Schedule.intersect(Schedule.recurs(3)),
)

/**
 * Requires Redis at acquisition when `cache_redis_url` is set (one attempt); the component's
 * layer, which the boot kernel retries with `retrySchedule` before falling back to `layerDegraded`.
 *
 * @since 0.1.0
 */
export const layerStrict = (settings: CacheSettings, options: Options = {}): Layer.Layer<Cache, RedisUnavailable> =>
  Layer.scoped(Cache, internal.make(settings, options, "strict"))

/**
 * Starts on the in-memory level, marked degraded, and connects to Redis in the background,
 * reporting recovery. With no `cache_redis_url` it is simply memory-only.
 *
 * @since 0.1.0
 */
export const layerDegraded = (settings: CacheSettings, options: Options = {}): Layer.Layer<Cache> =>
  Layer.scoped(Cache, Effect.orDie(internal.make(settings, options, "degraded")))

/**
 * Standalone form of the component's policy: tries Redis, retries per `retrySchedule`, then
 * starts degraded and keeps reconnecting in the background. Never fails.
 *
 * @since 0.1.0
 */
export const layer = (settings: CacheSettings, options: Options = {}): Layer.Layer<Cache> =>
  Layer.scoped(
    Cache,
    internal.make(settings, options, "strict").pipe(
      Effect.retry(retrySchedule),
      Effect.catchAll((e) =>
        Effect.logWarning(`${e.message}; starting on the in-memory level`).pipe(
          Effect.zipRight(Effect.orDie(internal.make(settings, options, "degraded"))),
        ),
      ),
    ),
  )
