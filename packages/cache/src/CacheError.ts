/**
 * Typed failures of the cache. Only acquisition fails: once built, the cache serves from memory
 * when Redis is unreachable instead of failing callers.
 *
 * @since 0.1.0
 */
import { RedisConnection } from "@novacron/redis"

/**
 * Redis could not be reached when a connected start was required (the node's one Redis error,
 * from `@novacron/redis`; its message never shows the password).
 *
 * @since 0.1.0
 */
export const RedisUnavailable = RedisConnection.RedisUnavailable

/**
 * @since 0.1.0
 */
export type RedisUnavailable = RedisConnection.RedisUnavailable
