/**
 * One Redis connection for the node: connect failing fast at boot, one reconnect Schedule, a
 * typed RedisUnavailable, a scoped client Layer.
 *
 * @packageDocumentation
 */

/** @since 0.1.0 */
export * as RedisConnection from "./RedisConnection.js"
