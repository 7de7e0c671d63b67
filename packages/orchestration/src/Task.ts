/**
 * Task records: what a task asks for ({@link TaskSpec}), where it stands ({@link TaskStatus}) and
 * what it did ({@link StepRecord}, its visible history). Every record read back from the database
 * is decoded with these schemas.
 *
 * @since 0.1.0
 */
import { Vm } from "@novacron/vm"
import { Schema } from "effect"

/**
 * The kinds of work a task does. VM kinds act through the node's `VmManager`; `Drain` marks a
 * node ineligible and moves its VMs away through the `VmMover` (at most `max_parallel` at once,
 * default `orchestration.drain_max_parallel`); `noop` runs `steps` steps (tests, benchmarks) that
 * each log one row, optionally sleeping `sleep_ms` first.
 *
 * @since 0.1.0
 * @category schemas
 */
export const TaskSpec = Schema.Union(
  Schema.TaggedStruct("VmCreate", {
    spec: Vm.VmSpec,
    start: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  }),
  Schema.TaggedStruct("VmStart", { vm: Schema.String }),
  Schema.TaggedStruct("VmStop", { vm: Schema.String }),
  Schema.TaggedStruct("VmDelete", { vm: Schema.String }),
  Schema.TaggedStruct("Drain", {
    node: Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/)),
    max_parallel: Schema.optional(Schema.Int.pipe(Schema.between(1, 1024))),
  }),
  Schema.TaggedStruct("Noop", {
    steps: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 100)), { default: () => 1 }),
    sleep_ms: Schema.optionalWith(Schema.Int.pipe(Schema.between(0, 3_600_000)), { default: () => 0 }),
    /** Sleep after each step's effect is recorded, before the step completes (crash tests). */
    sleep_after_ms: Schema.optionalWith(Schema.Int.pipe(Schema.between(0, 3_600_000)), { default: () => 0 }),
    /** Steps whose number (1-based) is listed here fail every attempt (tests of dead-lettering). */
    fail_steps: Schema.optionalWith(Schema.Array(Schema.Int), { default: () => [] }),
  }),
)

/**
 * @since 0.1.0
 * @category models
 */
export type TaskSpec = typeof TaskSpec.Type

/**
 * The encoded (JSON) form, as clients write it.
 *
 * @since 0.1.0
 * @category models
 */
export type TaskSpecInput = typeof TaskSpec.Encoded

/**
 * `queued` (accepted, not started), `running`, `succeeded`, `dead` (dead-lettered: a step failed
 * every attempt or the task timed out; `last_error` says why), `cancelled`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const TaskStatus = Schema.Literal("queued", "running", "succeeded", "dead", "cancelled")

/**
 * @since 0.1.0
 * @category models
 */
export type TaskStatus = typeof TaskStatus.Type

/**
 * Whether a task with this status will not change any more.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isFinal = (status: TaskStatus): boolean =>
  status === "succeeded" || status === "dead" || status === "cancelled"

/**
 * One attempt of one step, as the history shows it.
 *
 * @since 0.1.0
 * @category schemas
 */
export const StepRecord = Schema.Struct({
  step: Schema.String,
  attempt: Schema.Int,
  started_at: Schema.Number,
  finished_at: Schema.NullOr(Schema.Number),
  /** `ok`, `replayed` (its effect was already recorded: not acted again), `failed`, or null while running. */
  outcome: Schema.NullOr(Schema.Literal("ok", "replayed", "failed")),
  error: Schema.NullOr(Schema.String),
  /**
   * What the step recorded when it acted (`ok` and `replayed` attempts): e.g. a drain's move says
   * where the VM went and the placement decision that sent it there.
   */
  result: Schema.NullOr(Schema.String),
})

/**
 * @since 0.1.0
 * @category models
 */
export type StepRecord = typeof StepRecord.Type

/**
 * Where placement (`dwcp-itp`) put a VM of a `VmCreate` task, and why: the policy, how many hosts
 * were feasible, the best ones with their scores, and the filters that removed the others.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PlacementDecision = Schema.Struct({
  chosen: Schema.NullOr(Schema.String),
  policy: Schema.String,
  hosts: Schema.Int,
  feasible: Schema.Int,
  ranking: Schema.Array(
    Schema.Struct({
      host: Schema.String,
      total: Schema.Number,
      scores: Schema.Record({ key: Schema.String, value: Schema.Number }),
    }),
  ),
  filters: Schema.Array(Schema.Struct({ name: Schema.String, removed: Schema.Int })),
  /**
   * Feasible hosts passed over because the agent manager has them draining, suspect, failed or
   * left (or they are the node being drained), with that reason.
   */
  excluded: Schema.optionalWith(Schema.Array(Schema.Struct({ host: Schema.String, reason: Schema.String })), {
    default: () => [],
  }),
})

/**
 * @since 0.1.0
 * @category models
 */
export type PlacementDecision = typeof PlacementDecision.Type

/**
 * A task as stored.
 *
 * @since 0.1.0
 * @category schemas
 */
export const TaskRecord = Schema.Struct({
  id: Schema.String,
  kind: Schema.String,
  spec: TaskSpec,
  status: TaskStatus,
  last_error: Schema.NullOr(Schema.String),
  cancel_requested: Schema.Boolean,
  created_at: Schema.Number,
  updated_at: Schema.Number,
  /** Epoch ms after which the task fails at its next step. */
  deadline_at: Schema.Number,
  /** `VmCreate` with placement: the decision and its explanation. */
  placement: Schema.NullOr(PlacementDecision),
})

/**
 * @since 0.1.0
 * @category models
 */
export type TaskRecord = typeof TaskRecord.Type

/**
 * Where a drain stands: the VMs found on the node when it started, those moved away, those left.
 *
 * @since 0.1.0
 * @category models
 */
export interface DrainProgress {
  readonly node: string
  /** Null until the drain listed the node's VMs. */
  readonly total: number | null
  readonly moved: ReadonlyArray<string>
  readonly left: ReadonlyArray<string>
}

/**
 * A task with its history (and, for a drain, its progress).
 *
 * @since 0.1.0
 * @category models
 */
export interface TaskView extends TaskRecord {
  readonly history: ReadonlyArray<StepRecord>
  readonly progress: DrainProgress | null
}
