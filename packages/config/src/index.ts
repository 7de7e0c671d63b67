/**
 * Loads, layers and validates the NovaCron node configuration (YAML/JSON, env, flags) with
 * provenance and redaction.
 *
 * @packageDocumentation
 */

/** @since 0.1.0 */
export * as Config from "./Config.js"
/** @since 0.1.0 */
export * as ConfigError from "./ConfigError.js"
/** @since 0.1.0 */
export * as Env from "./Env.js"
/** @since 0.1.0 */
export * as Flags from "./Flags.js"
/** @since 0.1.0 */
export * as Origin from "./Origin.js"
/** @since 0.1.0 */
export * as Redact from "./Redact.js"
/** @since 0.1.0 */
export * as Settings from "./Settings.js"
