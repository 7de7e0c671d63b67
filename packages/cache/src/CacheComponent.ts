/**
 * The `@novacron/init` component spec: the Redis-backed layer, its retry and the in-memory
 * fallback. The host's boot table places it (phase, criticality, dependencies).
 *
 * @since 0.1.0
 */
import { Component } from "@novacron/init"
import { Effect } from "effect"
import * as Cache from "./Cache.js"
import type { CacheSettings } from "./CacheSettings.js"

/**
 * Healthy when connected or memory-only by configuration; degraded while Redis is unreachable.
 *
 * @since 0.1.0
 */
export const healthCheck: Effect.Effect<Component.HealthResult, never, Cache.Cache> = Effect.flatMap(
  Cache.Cache,
  (cache) =>
    Effect.map(cache.stats, (s): Component.HealthResult => {
      const details = { status: s.status, local_entries: s.localEntries, recoveries: s.recoveries }
      return s.status === "degraded"
        ? {
            status: "degraded",
            message: `redis unreachable since ${new Date(s.degradedSince ?? 0).toISOString()}; serving the in-memory level`,
            details,
          }
        : { status: "healthy", details }
    }),
)

/**
 * The component descriptor: the layer needs Redis (when configured); the kernel retries it per
 * `Cache.retrySchedule` (1 s, 2 s, 4 s), then boots on `Cache.layerDegraded`, which reconnects in
 * the background and reports recovery through the health check.
 *
 * @since 0.1.0
 */
export const component = (settings: CacheSettings, options: Cache.Options = {}) =>
  Component.spec({
    name: "cache",
    layer: Cache.layerStrict(settings, options),
    fallback: Cache.layerDegraded(settings, options),
    retry: Cache.retrySchedule,
    healthCheck,
    timeout: "5 seconds",
    expectedDuration: settings.cache_redis_url === "" ? "1 millis" : "20 millis",
    description: settings.cache_redis_url === "" ? "in-memory LRU cache" : "in-memory LRU cache over shared redis",
  })
