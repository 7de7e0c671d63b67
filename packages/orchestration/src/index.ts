/**
 * Cluster orchestration: durable tasks, one fenced coordinator, the agent manager, drain.
 *
 * @packageDocumentation
 */

/** @since 0.1.0 */
export * as AgentManager from "./AgentManager.js"
/** @since 0.1.0 */
export * as Coordinator from "./Coordinator.js"
/** @since 0.1.0 */
export * as OrchestrationComponent from "./OrchestrationComponent.js"
/** @since 0.1.0 */
export * as OrchestrationError from "./OrchestrationError.js"
/** @since 0.1.0 */
export * as OrchestrationSettings from "./OrchestrationSettings.js"
/** @since 0.1.0 */
export * as Task from "./Task.js"
/** @since 0.1.0 */
export * as Tasks from "./Tasks.js"
/** @since 0.1.0 */
export * as VmMover from "./VmMover.js"
