/**
 * Node state store: SQLite (embedded), PostgreSQL or Redis behind one typed repository API, with
 * checksummed versioned migrations.
 *
 * @packageDocumentation
 */

/** @since 0.1.0 */
export * as Database from "./Database.js"
/** @since 0.1.0 */
export * as DatabaseComponent from "./DatabaseComponent.js"
/** @since 0.1.0 */
export * as DatabaseError from "./DatabaseError.js"
/** @since 0.2.0 */
export * as DatabaseMaintenance from "./DatabaseMaintenance.js"
/** @since 0.1.0 */
export * as Migration from "./Migration.js"
/** @since 0.1.0 */
export * as Model from "./Model.js"
/** @since 0.1.0 */
export * as StorageSettings from "./StorageSettings.js"
