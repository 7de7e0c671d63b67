/**
 * The records kept by the repository.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * A cluster node as last seen. Times are Unix milliseconds.
 *
 * @since 0.1.0
 */
export const NodeRecord = Schema.Struct({
  id: Schema.String,
  address: Schema.String,
  state: Schema.String,
  labels: Schema.Record({ key: Schema.String, value: Schema.String }),
  updated_at: Schema.Number,
})

/**
 * @since 0.1.0
 */
export type NodeRecord = typeof NodeRecord.Type

/**
 * Lifecycle of a task.
 *
 * @since 0.1.0
 */
export const TaskStatus = Schema.Literal("pending", "running", "succeeded", "failed", "cancelled")

/**
 * @since 0.1.0
 */
export type TaskStatus = typeof TaskStatus.Type

/**
 * A unit of work, optionally assigned to a node. `payload` is any JSON value.
 *
 * @since 0.1.0
 */
export const TaskRecord = Schema.Struct({
  id: Schema.String,
  kind: Schema.String,
  status: TaskStatus,
  node_id: Schema.NullOr(Schema.String),
  payload: Schema.Unknown,
  created_at: Schema.Number,
  updated_at: Schema.Number,
})

/**
 * @since 0.1.0
 */
export type TaskRecord = typeof TaskRecord.Type

/**
 * One checkpoint in a named series; `sequence` counts from 1 per name. `data` is any JSON value.
 *
 * @since 0.1.0
 */
export const CheckpointRecord = Schema.Struct({
  name: Schema.String,
  sequence: Schema.Number,
  data: Schema.Unknown,
  created_at: Schema.Number,
})

/**
 * @since 0.1.0
 */
export type CheckpointRecord = typeof CheckpointRecord.Type

/**
 * Filter for listing tasks; absent fields match everything.
 *
 * @since 0.1.0
 */
export interface TaskFilter {
  readonly status?: TaskStatus | undefined
  readonly node_id?: string | undefined
}
