/**
 * The orchestration routes over `@novacron/orchestration`'s task service: `/v1/tasks` lists the
 * node's durable tasks with their state. Drain and migration are not built yet (issue 25's drain,
 * issue 27's live migration): those routes answer 503 saying so, not a fake task.
 *
 * @since 0.1.0
 */
import { Coordinator, type Task as OrchTask, Tasks } from "@novacron/orchestration"
import { Effect, Layer } from "effect"
import type { Task } from "./Api.js"
import { NotFound, ServiceUnavailable } from "./ApiError.js"
import { TaskSource } from "./ApiSources.js"

/**
 * The election `/v1/status/leader` reports: the orchestration coordinator's.
 *
 * @since 0.1.0
 * @category constants
 */
export const election: string = Coordinator.election

const states: Record<OrchTask.TaskStatus, Task["state"]> = {
  queued: "pending",
  running: "running",
  succeeded: "succeeded",
  dead: "failed",
  cancelled: "cancelled",
}

const vmOf = (spec: OrchTask.TaskSpec): string | null =>
  spec._tag === "VmCreate" ? spec.spec.id : spec._tag === "Noop" ? null : spec.vm

/**
 * A task record as the API shows it.
 *
 * @since 0.1.0
 * @category conversions
 */
export const toApi = (r: OrchTask.TaskRecord, nodeId: string): Task => ({
  id: r.id,
  kind: r.kind,
  state: states[r.status],
  node_id: r.placement?.chosen ?? nodeId,
  vm_id: vmOf(r.spec),
  created_at: r.created_at,
  updated_at: r.updated_at,
  error: r.last_error,
})

const unavailable = (reason: string) => new ServiceUnavailable({ service: "orchestration", reason })

/**
 * `TaskSource` from the orchestration task service.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (tasks: Tasks.TasksApi, nodeId: string): TaskSource["Type"] => ({
  tasks: tasks.list().pipe(
    Effect.map((rs) => rs.map((r) => toApi(r, nodeId))),
    Effect.mapError((e) => unavailable(`the task store failed: ${e.message}`)),
  ),
  task: (id) =>
    tasks.get(id).pipe(
      Effect.map((r) => toApi(r, nodeId)),
      Effect.catchTags({
        TaskNotFound: () => Effect.fail(new NotFound({ kind: "task", id })),
        TaskStoreError: (e) => Effect.fail(unavailable(`the task store failed: ${e.message}`)),
      }),
    ),
  migrations: Effect.succeed([]),
  drain: (node) => Effect.fail(unavailable(`draining ${node} is not built yet (orchestration runs VM tasks only)`)),
  migrate: (vm) => Effect.fail(unavailable(`live migration of ${vm} is not built yet`)),
})

/**
 * Provides `TaskSource` when the boot context has orchestration's `Tasks`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (nodeId: string): Layer.Layer<TaskSource, never, Tasks.Tasks> =>
  Layer.effect(
    TaskSource,
    Effect.map(Tasks.Tasks, (t) => make(t, nodeId)),
  )
