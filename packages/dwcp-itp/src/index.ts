/**
 * Intelligent task placement for DWCP: a topology map of hosts with failure domains and network
 * distance, filter-then-score placement (binpack, spread, balanced, fragmentation-aware) that
 * explains itself.
 *
 * @packageDocumentation
 */

/** Why a placement went where it went. */
export * as Explanation from "./Explanation.js"
/**
 * The placement optimiser the ML engine serves: FGD re-ranking of the policy's top hosts.
 *
 * @since 0.2.0
 */
export * as FragmentationOptimizer from "./FragmentationOptimizer.js"
/** Hosts: resources, GPUs, labels, failure domains. */
export * as Host from "./Host.js"
/** The placement service, its settings and Layer. */
export * as Placement from "./Placement.js"
/** The `@novacron/init` component. */
export * as PlacementComponent from "./PlacementComponent.js"
/** Typed errors. */
export * from "./PlacementError.js"
/** @since 0.2.0 */
export * as PlacementSettings from "./PlacementSettings.js"
/** Placement's hosts from the cluster state (`capacity/<node>`). */
export * as PlacementSync from "./PlacementSync.js"
/** Filter and score plugins, policies. */
export * as Plugin from "./Plugin.js"
/** The synchronous engine. */
export * as Scheduler from "./Scheduler.js"
/** Workload requirements and allocations. */
export * as Workload from "./Workload.js"
