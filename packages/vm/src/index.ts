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
