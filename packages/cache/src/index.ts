/**
 * Two-level cache: in-memory LRU with TTL, Redis as the shared level, pub/sub coherency across
 * nodes, degraded in-memory mode with background recovery.
 *
 * @packageDocumentation
 */

/** @since 0.1.0 */
export * as Cache from "./Cache.js"
/** @since 0.1.0 */
export * as CacheComponent from "./CacheComponent.js"
/** @since 0.1.0 */
export * as CacheError from "./CacheError.js"
/** @since 0.1.0 */
export * as CacheSettings from "./CacheSettings.js"
