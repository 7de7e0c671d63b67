/**
 * Detects the node's network environment (datacenter, internet, hybrid) from measured peer
 * links and RDMA, and keeps re-detecting.
 *
 * @packageDocumentation
 */

/** @since 0.1.0 */
export * as Classify from "./Classify.js"
/** @since 0.2.0 */
export * as DetectionSettings from "./DetectionSettings.js"
/** @since 0.1.0 */
export * as EnvironmentDetector from "./EnvironmentDetector.js"
/** @since 0.1.0 */
export * as Probe from "./Probe.js"
