/**
 * Checks CPU, memory and disk against a resource profile and guards the data directory with an
 * exclusive pid lock and port checks.
 *
 * @packageDocumentation
 */

/** @since 0.1.0 */
export * as ConflictCheck from "./ConflictCheck.js"
/** @since 0.1.0 */
export * as Profile from "./Profile.js"
/** @since 0.2.0 */
export * as ResourceSettings from "./ResourceSettings.js"
/** @since 0.1.0 */
export * as ResourceValidator from "./ResourceValidator.js"
