/**
 * Shared test helpers for the NovaCron packages (a private workspace package, used as a
 * devDependency).
 *
 * @packageDocumentation
 */

/**
 * @since 0.1.0
 */
export * from "./Bytes.js"

/**
 * @since 0.1.0
 */
export * from "./Fuzz.js"
/**
 * @since 0.1.0
 */
export * from "./Otlp.js"
/**
 * @since 0.1.0
 */
export * from "./Prometheus.js"
/**
 * @since 0.1.0
 */
export * from "./RedisServer.js"
/**
 * @since 0.1.0
 */
export * from "./Services.js"
/**
 * @since 0.1.0
 */
export * from "./TempDir.js"
