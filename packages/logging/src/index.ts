/**
 * JSON-lines Effect logger for NovaCron: pretty on a TTY, optional size-rotated file under data_dir.
 *
 * @packageDocumentation
 */

/** @since 0.1.0 */
export * as Logging from "./Logging.js"
/** @since 0.2.0 */
export * as LoggingSettings from "./LoggingSettings.js"
