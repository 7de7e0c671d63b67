/**
 * The orchestration routes over `@novacron/orchestration`'s task service: `/v1/tasks` lists the
 * node's durable tasks with their state, `/v1/tasks/{id}` one with its history (and a drain's
 * progress), `/v1/nodes/{id}/drain` submits a drain task on the coordinator;
 * `/v1/vms/{id}/migrate` starts a live migration on the node's `Migrations` (`@novacron/migration`)
 * and `/v1/migrations` lists its runs.
 *
 * @since 0.1.0
 */

import type { Migrations } from "@novacron/migration"
import { AgentManager, Coordinator, type Task as OrchTask, Tasks } from "@novacron/orchestration"
import { Effect, Layer, Option } from "effect"
import type { Migration, Task, TaskDetail } from "./Api.js"
import { Conflict, NotFound, ServiceUnavailable, Unprocessable } from "./ApiError.js"
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
  spec._tag === "VmCreate" ? spec.spec.id : spec._tag === "Noop" || spec._tag === "Drain" ? null : spec.vm

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
  node_id: r.spec._tag === "Drain" ? r.spec.node : (r.placement?.chosen ?? nodeId),
  vm_id: vmOf(r.spec),
  created_at: r.created_at,
  updated_at: r.updated_at,
  error: r.last_error,
})

/**
 * A migration run as the API shows it.
 *
 * @since 0.1.0
 * @category conversions
 */
export const migrationToApi = (r: Migrations.Run): Migration => ({
  id: r.id,
  vm_id: r.vm,
  source: r.source,
  target: r.target,
  state: r.state,
  started_at: r.startedAt,
  finished_at: r.finishedAt,
})

const unavailable = (reason: string) => new ServiceUnavailable({ service: "orchestration", reason })

/**
 * A task with its history as the API shows it.
 *
 * @since 0.1.0
 * @category conversions
 */
export const toDetail = (v: OrchTask.TaskView, nodeId: string): TaskDetail => ({
  ...toApi(v, nodeId),
  history: v.history,
  progress: v.progress,
  placement: v.placement,
})

const storeFailed = (e: { readonly message: string }) => unavailable(`the task store failed: ${e.message}`)

/**
 * `TaskSource` from the orchestration task service. A drain is submitted only on the coordinator
 * (the drain's writes are fenced by its term, and it waits for it): elsewhere it is a 409 naming
 * the election; a node the agent manager does not know is a 404; a drain of a node that already
 * has one running returns that one.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  tasks: Tasks.TasksApi,
  nodeId: string,
  coordinator: Option.Option<Coordinator.CoordinatorApi> = Option.none(),
  agents: Option.Option<Pick<AgentManager.AgentManagerApi, "list">> = Option.none(),
  migrations: Option.Option<Migrations.Service> = Option.none(),
): TaskSource["Type"] => ({
  tasks: tasks.list().pipe(
    Effect.map((rs) => rs.map((r) => toApi(r, nodeId))),
    Effect.mapError(storeFailed),
  ),
  task: (id) =>
    tasks.get(id).pipe(
      Effect.map((r) => toDetail(r, nodeId)),
      Effect.catchTags({
        TaskNotFound: () => Effect.fail(new NotFound({ kind: "task", id })),
        TaskStoreError: (e) => Effect.fail(storeFailed(e)),
      }),
    ),
  migrations: Option.match(migrations, {
    onNone: () => Effect.succeed([]),
    onSome: (m) => Effect.map(m.list, (runs) => runs.map(migrationToApi)),
  }),
  drain: (node, request) =>
    Effect.gen(function* () {
      if (request.force === true)
        return yield* new Unprocessable({
          kind: "drain",
          id: node,
          reason: "force is not built: a drain that passes its deadline fails with the VMs left",
        })
      if (Option.isNone(coordinator)) return yield* unavailable("the coordinator is not running on this node")
      if (Option.isNone(yield* coordinator.value.term))
        return yield* new Conflict({
          kind: "node",
          id: node,
          reason: `${nodeId} is not the orchestration coordinator: send the drain to the leader of ${Coordinator.election} (GET /v1/status/leader)`,
        })
      // a node the agent manager never saw is a typo, not a drain (it would be recorded as an
      // agent); this node is always known (its record may not be written yet right after boot)
      if (Option.isSome(agents) && node !== nodeId) {
        const known = yield* agents.value.list.pipe(
          Effect.mapError((e) => unavailable(`the cluster state failed: ${e.message}`)),
        )
        if (!known.some((a) => a.node === node)) return yield* new NotFound({ kind: "node", id: node })
      }
      const running = [
        ...(yield* tasks.list({ kind: "Drain", status: "running" })),
        ...(yield* tasks.list({ kind: "Drain", status: "queued" })),
      ].find((t) => t.spec._tag === "Drain" && t.spec.node === node)
      if (running !== undefined) return toApi(running, nodeId)
      const task = yield* tasks.submit(
        { _tag: "Drain", node, max_parallel: request.max_parallel },
        { timeout: request.deadline_s === undefined ? undefined : `${request.deadline_s} seconds` },
      )
      return toApi(task, nodeId)
    }).pipe(
      Effect.catchTags({
        TaskStoreError: (e) => Effect.fail(storeFailed(e)),
        InvalidTask: (e) => Effect.fail(new Unprocessable({ kind: "drain", id: node, reason: e.reason })),
      }),
    ),
  migrate: (vm, request) =>
    Option.match(migrations, {
      onNone: () =>
        Effect.fail(
          new ServiceUnavailable({ service: "migration", reason: "live migration does not run on this node" }),
        ),
      onSome: (m) =>
        request.target_node === undefined
          ? Effect.fail(
              new Unprocessable({
                kind: "migration",
                id: vm,
                reason: "target_node is required: choosing a target by placement is not built",
              }),
            )
          : m.start(vm, request.target_node).pipe(
              Effect.map(migrationToApi),
              Effect.catchAll((e) =>
                Effect.fail(
                  e._tag === "MigrationInvalid"
                    ? /not (found|defined)|no VM/i.test(e.detail)
                      ? new NotFound({ kind: "vm", id: vm })
                      : e.detail === "cannot migrate to itself"
                        ? new Unprocessable({ kind: "migration", id: vm, reason: e.message })
                        : new Conflict({ kind: "vm", id: vm, reason: e.message })
                    : e._tag === "MigrationPeerUnreachable" || e._tag === "MigrationRejected"
                      ? new Conflict({ kind: "node", id: request.target_node!, reason: e.message })
                      : new Conflict({ kind: "migration", id: vm, reason: e.message }),
                ),
              ),
            ),
    }),
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
    Effect.all([
      Tasks.Tasks,
      Effect.serviceOption(Coordinator.Coordinator),
      Effect.serviceOption(AgentManager.AgentManager),
    ]).pipe(Effect.map(([t, c, a]) => make(t, nodeId, c, a))),
  )
