/**
 * VM manager: real VMs through QEMU over QMP — define, start, graceful stop, kill, reattach after
 * agent restart, capacity, ownership, local admin socket.
 *
 * @packageDocumentation
 */

/** @since 0.1.0 */
export * as Qmp from "./Qmp.js"
/** @since 0.1.0 */
export * as QmpError from "./QmpError.js"
/** @since 0.1.0 */
export * as Vm from "./Vm.js"
/** @since 0.1.0 */
export * as VmAdmin from "./VmAdmin.js"
/** @since 0.1.0 */
export * as VmCapacity from "./VmCapacity.js"
/** @since 0.1.0 */
export * as VmCommand from "./VmCommand.js"
/** @since 0.1.0 */
export * as VmComponent from "./VmComponent.js"
/** @since 0.1.0 */
export * as VmError from "./VmError.js"
/** @since 0.1.0 */
export * as VmManager from "./VmManager.js"
/** @since 0.1.0 */
export * as VmOwnership from "./VmOwnership.js"
/** @since 0.1.0 */
export * as VmSettings from "./VmSettings.js"
/** @since 0.1.0 */
export * as VmStore from "./VmStore.js"
