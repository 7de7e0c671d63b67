/**
 * Typed errors of the topology map and of placement.
 *
 * @since 0.1.0
 */
import { Data } from "effect"
import type { Explanation } from "./Explanation.js"

/**
 * No host passes every filter; the explanation says which filter removed which hosts.
 *
 * @since 0.1.0
 */
export class Unschedulable extends Data.TaggedError("Unschedulable")<{
  readonly workload: string
  readonly explanation: Explanation
}> {
  override get message(): string {
    const parts = this.explanation.filters.filter((f) => f.removed > 0).map((f) => `${f.name}: ${f.removed}`)
    return `workload ${this.workload} fits no host (${parts.join(", ") || "no hosts"})`
  }
}

/**
 * A request or host spec that cannot be valid (negative sizes, a GPU demand that is neither a
 * share nor whole GPUs, ...).
 *
 * @since 0.1.0
 */
export class InvalidSpec extends Data.TaggedError("InvalidSpec")<{ readonly id: string; readonly reason: string }> {
  override get message(): string {
    return `${this.id}: ${this.reason}`
  }
}

/**
 * @since 0.1.0
 */
export class UnknownHost extends Data.TaggedError("UnknownHost")<{ readonly host: string }> {}

/**
 * @since 0.1.0
 */
export class DuplicateHost extends Data.TaggedError("DuplicateHost")<{ readonly host: string }> {}

/**
 * @since 0.1.0
 */
export class UnknownWorkload extends Data.TaggedError("UnknownWorkload")<{ readonly workload: string }> {}

/**
 * @since 0.1.0
 */
export class DuplicateWorkload extends Data.TaggedError("DuplicateWorkload")<{ readonly workload: string }> {}

/**
 * A host change that would take away capacity its workloads hold.
 *
 * @since 0.1.0
 */
export class CapacityConflict extends Data.TaggedError("CapacityConflict")<{
  readonly host: string
  readonly reason: string
}> {}

/**
 * The unknown policy name.
 *
 * @since 0.1.0
 */
export class UnknownPolicy extends Data.TaggedError("UnknownPolicy")<{ readonly policy: string }> {}
