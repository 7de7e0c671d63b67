/**
 * Errors of the VM manager, each a distinct tag naming the VM.
 *
 * @since 0.1.0
 */
import { Data } from "effect"

/**
 * No VM with this id on this node.
 *
 * @since 0.1.0
 * @category errors
 */
export class VmNotFound extends Data.TaggedError("VmNotFound")<{ readonly id: string }> {
  override get message() {
    return `vm ${this.id}: not defined on this node`
  }
}

/**
 * A VM with this id is already defined.
 *
 * @since 0.1.0
 * @category errors
 */
export class VmAlreadyDefined extends Data.TaggedError("VmAlreadyDefined")<{ readonly id: string }> {
  override get message() {
    return `vm ${this.id}: already defined`
  }
}

/**
 * The operation is not allowed in the VM's state (start of a running VM, delete of a running one...).
 *
 * @since 0.1.0
 * @category errors
 */
export class VmInvalidState extends Data.TaggedError("VmInvalidState")<{
  readonly id: string
  readonly state: string
  readonly operation: string
}> {
  override get message() {
    return `vm ${this.id}: cannot ${this.operation} while ${this.state}`
  }
}

/**
 * The definition is invalid (decoding error, missing base image...).
 *
 * @since 0.1.0
 * @category errors
 */
export class VmInvalidSpec extends Data.TaggedError("VmInvalidSpec")<{ readonly id: string; readonly detail: string }> {
  override get message() {
    return `vm ${this.id}: invalid definition: ${this.detail}`
  }
}

/**
 * The host lacks the capacity to start the VM.
 *
 * @since 0.1.0
 * @category errors
 */
export class VmCapacityExceeded extends Data.TaggedError("VmCapacityExceeded")<{
  readonly id: string
  readonly resource: "vcpus" | "memory" | "disk"
  readonly requested: number
  readonly available: number
}> {
  override get message() {
    const unit = this.resource === "vcpus" ? "vCPUs" : "MiB"
    return `vm ${this.id}: host out of ${this.resource}: needs ${this.requested} ${unit}, ${this.available} ${unit} available`
  }
}

/**
 * QEMU (or qemu-img) failed: did not start, refused the image (its lock held by another QEMU), ...
 *
 * @since 0.1.0
 * @category errors
 */
export class VmQemuFailed extends Data.TaggedError("VmQemuFailed")<{
  readonly id: string
  readonly operation: string
  readonly detail: string
}> {
  override get message() {
    return `vm ${this.id}: ${this.operation} failed: ${this.detail}`
  }
}

/**
 * QEMU is not installed or not runnable: the VM component is degraded.
 *
 * @since 0.1.0
 * @category errors
 */
export class VmQemuUnavailable extends Data.TaggedError("VmQemuUnavailable")<{ readonly detail: string }> {
  override get message() {
    return `qemu unavailable: ${this.detail}`
  }
}

/**
 * This node does not hold (or could not take) the VM's ownership term.
 *
 * @since 0.1.0
 * @category errors
 */
export class VmOwnershipError extends Data.TaggedError("VmOwnershipError")<{
  readonly id: string
  readonly detail: string
}> {
  override get message() {
    return `vm ${this.id}: ownership: ${this.detail}`
  }
}

/**
 * The VM store failed, or holds a record that does not decode.
 *
 * @since 0.1.0
 * @category errors
 */
export class VmStoreError extends Data.TaggedError("VmStoreError")<{ readonly key: string; readonly detail: string }> {
  override get message() {
    return `vm store ${this.key}: ${this.detail}`
  }
}

/**
 * Any VM manager error.
 *
 * @since 0.1.0
 * @category errors
 */
export type VmError =
  | VmNotFound
  | VmAlreadyDefined
  | VmInvalidState
  | VmInvalidSpec
  | VmCapacityExceeded
  | VmQemuFailed
  | VmQemuUnavailable
  | VmOwnershipError
  | VmStoreError
