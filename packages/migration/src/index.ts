/**
 * Live migration of a running VM between two agents: QEMU's migration stream carried over an mTLS
 * tunnel between nodes, policy from the link, progress, cancel, ownership handover at switchover.
 *
 * @packageDocumentation
 */

/** @since 0.1.0 */
export * as Migration from "./Migration.js"
/** @since 0.1.0 */
export * as MigrationComponent from "./MigrationComponent.js"
/** @since 0.1.0 */
export * as MigrationError from "./MigrationError.js"
/** @since 0.1.0 */
export * as MigrationPolicy from "./MigrationPolicy.js"
/** @since 0.1.0 */
export * as MigrationSettings from "./MigrationSettings.js"
/** @since 0.1.0 */
export * as Migrations from "./Migrations.js"
/** @since 0.1.0 */
export * as Wire from "./Wire.js"
