/**
 * Errors of the orchestration API, one tag each.
 *
 * @since 0.1.0
 */
import { Data, Schema } from "effect"

/**
 * The task store (SQLite or PostgreSQL) failed or holds a record that does not decode.
 *
 * @since 0.1.0
 * @category errors
 */
export class TaskStoreError extends Data.TaggedError("TaskStoreError")<{
  readonly operation: string
  readonly cause: unknown
}> {
  override get message() {
    const why = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `orchestration task store: ${this.operation} failed: ${why}`
  }
}

/**
 * No task has this id.
 *
 * @since 0.1.0
 * @category errors
 */
export class TaskNotFound extends Data.TaggedError("TaskNotFound")<{ readonly id: string }> {
  override get message() {
    return `no task ${this.id}`
  }
}

/**
 * A submitted task spec does not decode (the message names the field).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidTask extends Data.TaggedError("InvalidTask")<{ readonly reason: string }> {
  override get message() {
    return `invalid task: ${this.reason}`
  }
}

/**
 * A write made under a coordinator term that is no longer the current one: a newer coordinator
 * was elected, so this one must stop acting.
 *
 * @since 0.1.0
 * @category errors
 */
export class CoordinatorDeposed extends Data.TaggedError("CoordinatorDeposed")<{
  readonly term: number
  readonly current: number | undefined
}> {
  override get message() {
    return `coordinator term ${this.term} is deposed (current term: ${this.current ?? "none"})`
  }
}

/**
 * This node is not the coordinator (it never was, or not any more): the write was not made.
 *
 * @since 0.1.0
 * @category errors
 */
export class NotCoordinator extends Data.TaggedError("NotCoordinator")<{ readonly node: string }> {
  override get message() {
    return `${this.node} is not the orchestration coordinator`
  }
}

/**
 * A step of a task failed (persisted with the workflow: its fields must encode).
 *
 * @since 0.1.0
 * @category errors
 */
export class StepFailed extends Schema.TaggedError<StepFailed>()("StepFailed", {
  step: Schema.String,
  reason: Schema.String,
  /** `dead`: attempts exhausted or timed out; `cancelled`: cancellation observed. */
  outcome: Schema.Literal("dead", "cancelled"),
}) {
  override get message() {
    return `step ${this.step}: ${this.reason}`
  }
}

/**
 * A VM could not be listed or moved off a node (the `VmMover` names the node, the VM and why).
 *
 * @since 0.1.0
 * @category errors
 */
export class MoveFailed extends Data.TaggedError("MoveFailed")<{
  readonly vm: string | null
  readonly node: string
  readonly reason: string
}> {
  override get message() {
    return this.vm === null ? `node ${this.node}: ${this.reason}` : `VM ${this.vm} on ${this.node}: ${this.reason}`
  }
}
