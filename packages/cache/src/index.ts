/**
 * Two-level cache: in-memory LRU with TTL, Redis as the shared level, pub/sub coherency across nodes, degraded in-memory mode with background recovery.
 *
 * @packageDocumentation
 */
export {}
