/**
 * The task service: submit, list, get (with history), cancel and await durable tasks. Tasks run
 * as `@effect/workflow` executions on an `@effect/cluster` runner whose state is in SQL (SQLite on
 * one node, PostgreSQL for a cluster), so a task survives the crash of the process running it.
 *
 * @since 0.1.0
 */
import { ClusterWorkflowEngine, type ShardingConfig, SingleRunner } from "@effect/cluster"
import type { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { SqliteClient } from "@effect/sql-sqlite-node"
import type { WorkflowEngine } from "@effect/workflow"
import type { Placement } from "@novacron/dwcp-itp"
import type { VmManager } from "@novacron/vm"
import { Clock, Context, Duration, Effect, Layer, Option, ParseResult, Redacted, Schema } from "effect"
import type { AgentManagerApi } from "./AgentManager.js"
import type { CoordinatorApi } from "./Coordinator.js"
import * as Engine from "./internal/engine.js"
import * as Store from "./internal/store.js"
import { InvalidTask, TaskNotFound, TaskStoreError } from "./OrchestrationError.js"
import type { OrchestrationSettings } from "./OrchestrationSettings.js"
import {
  type DrainProgress,
  isFinal,
  type TaskRecord,
  TaskSpec,
  type TaskSpecInput,
  type TaskStatus,
  type TaskView,
} from "./Task.js"
import type { VmMoverApi, VmOnNode } from "./VmMover.js"

/**
 * Options of {@link TasksApi.submit}.
 *
 * @since 0.1.0
 * @category models
 */
export interface SubmitOptions {
  /**
   * The task's id and idempotency key: submitting the same id again returns the existing task
   * instead of running the work twice. Default: a random UUID.
   */
  readonly id?: string | undefined
  /** Overrides `orchestration.task_timeout` for this task. */
  readonly timeout?: Duration.DurationInput | undefined
}

/**
 * Filter of {@link TasksApi.list}.
 *
 * @since 0.1.0
 * @category models
 */
export interface ListFilter {
  readonly status?: TaskStatus | undefined
  /** The spec's tag: `VmCreate`, `VmStart`, `VmStop`, `VmDelete`, `Drain`, `Noop`. */
  readonly kind?: string | undefined
  /** At most this many, oldest first (default 1000). */
  readonly limit?: number | undefined
}

/**
 * The task API (what the HTTP API and the CLI call).
 *
 * @since 0.1.0
 * @category models
 */
export interface TasksApi {
  /** Stores the task (decoding its spec) and starts its workflow; returns the stored record. */
  readonly submit: (
    spec: TaskSpecInput | TaskSpec,
    options?: SubmitOptions,
  ) => Effect.Effect<TaskRecord, InvalidTask | TaskStoreError>
  /** The task with its history (one row per step attempt, with times) and a drain's progress. */
  readonly get: (id: string) => Effect.Effect<TaskView, TaskNotFound | TaskStoreError>
  readonly list: (filter?: ListFilter) => Effect.Effect<ReadonlyArray<TaskRecord>, TaskStoreError>
  /** Tasks per status. */
  readonly counts: Effect.Effect<Partial<Record<TaskStatus, number>>, TaskStoreError>
  /**
   * Asks the task to stop: it ends `cancelled` before its next step (a step already acting
   * finishes). A task already final is returned unchanged.
   */
  readonly cancel: (id: string) => Effect.Effect<TaskRecord, TaskNotFound | TaskStoreError>
  /** Waits until the task is final (polling the store every `interval`, default 50 ms). */
  readonly await: (
    id: string,
    options?: { readonly interval?: Duration.DurationInput | undefined },
  ) => Effect.Effect<TaskRecord, TaskNotFound | TaskStoreError>
}

/**
 * The task service.
 *
 * @since 0.1.0
 * @category services
 */
export class Tasks extends Context.Tag("@novacron/orchestration/Tasks")<Tasks, TasksApi>() {}

const decodeSpec = Schema.decodeUnknown(TaskSpec)

// From the recorded effects: the inventory step's VM list and the move steps done.
const drainProgress = (id: string, node: string) =>
  Effect.map(Store.effectsOf(id), (effects): DrainProgress => {
    const listed = effects.get("inventory")
    if (listed === undefined) return { node, total: null, moved: [], left: [] }
    const vms = (JSON.parse(listed) as ReadonlyArray<VmOnNode>).map((v) => v.id)
    const moved = vms.filter((vm) => effects.has(`move ${vm}`))
    return { node, total: vms.length, moved, left: vms.filter((vm) => !effects.has(`move ${vm}`)) }
  })

const make = (settings: OrchestrationSettings) =>
  Effect.gen(function* () {
    const sql = yield* Effect.context<SqlClient.SqlClient | WorkflowEngine.WorkflowEngine>()
    const run = <A, E>(effect: Effect.Effect<A, E, SqlClient.SqlClient | WorkflowEngine.WorkflowEngine>) =>
      Effect.provide(effect, sql)
    const start = (id: string) => Engine.TaskWorkflow.execute({ taskId: id }, { discard: true })

    const get = (id: string) =>
      run(
        Effect.gen(function* () {
          const task = yield* Store.getTask(id)
          if (Option.isNone(task)) return yield* new TaskNotFound({ id })
          const history = yield* Store.history(id)
          const spec = task.value.spec
          const progress = spec._tag === "Drain" ? yield* drainProgress(id, spec.node) : null
          return { ...task.value, history, progress } satisfies TaskView
        }),
      )

    const submit: TasksApi["submit"] = (input, options = {}) =>
      run(
        Effect.gen(function* () {
          const spec = yield* decodeSpec(
            // Accept both the encoded form (clients) and decoded values (callers in this process).
            input,
          ).pipe(Effect.mapError((e) => new InvalidTask({ reason: ParseResult.TreeFormatter.formatErrorSync(e) })))
          const id = options.id ?? crypto.randomUUID()
          const at = yield* Clock.currentTimeMillis
          const timeout = Duration.decode(options.timeout ?? settings.task_timeout)
          const record: TaskRecord = {
            id,
            kind: spec._tag,
            spec,
            status: "queued",
            last_error: null,
            cancel_requested: false,
            created_at: at,
            updated_at: at,
            deadline_at: at + Duration.toMillis(timeout),
            placement: null,
          }
          const json = JSON.stringify(Schema.encodeSync(TaskSpec)(spec))
          yield* Store.insertTask(record, json)
          yield* start(id)
          return Option.getOrElse(yield* Store.getTask(id), () => record)
        }),
      )

    const cancel = (id: string) =>
      run(
        Effect.gen(function* () {
          yield* Store.requestCancel(id, yield* Clock.currentTimeMillis)
          const task = yield* Store.getTask(id)
          if (Option.isNone(task)) return yield* new TaskNotFound({ id })
          return task.value
        }),
      )

    const awaitTask: TasksApi["await"] = (id, options = {}) =>
      Effect.gen(function* () {
        for (;;) {
          const task = yield* run(Store.getTask(id))
          if (Option.isNone(task)) return yield* new TaskNotFound({ id })
          if (isFinal(task.value.status)) return task.value
          yield* Effect.sleep(options.interval ?? "50 millis")
        }
      })

    // A task stored but never started (the process died between the two) starts now; starting
    // one that runs or ran is a no-op (the execution id is the task id).
    const pending = [
      ...(yield* Store.listTasks({ status: "queued", limit: 100_000 })),
      ...(yield* Store.listTasks({ status: "running", limit: 100_000 })),
    ]
    yield* Effect.forEach(pending, (t) => start(t.id), { discard: true })

    return Tasks.of({
      submit,
      get,
      list: (filter = {}) => run(Store.listTasks(filter)),
      counts: run(Store.countByStatus),
      cancel,
      await: awaitTask,
    })
  })

/**
 * Where the task store is.
 *
 * @since 0.1.0
 * @category models
 */
export type StoreOptions =
  | { readonly _tag: "sqlite"; readonly filename: string }
  | {
      readonly _tag: "postgres"
      readonly url: string
      readonly maxConnections?: number | undefined
    }

/**
 * The SQL client of the task store, with the orchestration tables created.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSql = (store: StoreOptions): Layer.Layer<SqlClient.SqlClient, TaskStoreError> => {
  const client: Layer.Layer<SqlClient.SqlClient, unknown> =
    store._tag === "sqlite"
      ? SqliteClient.layer({ filename: store.filename })
      : PgClient.layer({
          url: Redacted.make(store.url),
          maxConnections: store.maxConnections ?? 10,
          applicationName: "novacron-orchestration",
        })
  return Layer.effectDiscard(Store.migrate).pipe(
    Layer.provideMerge(client),
    Layer.mapError((e) => (e instanceof TaskStoreError ? e : new TaskStoreError({ operation: "connect", cause: e }))),
  )
}

/**
 * Options of {@link layer}.
 *
 * @since 0.1.0
 * @category models
 */
export interface LayerOptions {
  readonly settings: OrchestrationSettings
  /** The node's VM manager; without it VM tasks fail (dead-lettered with that reason). */
  readonly vm?: VmManager.Manager | undefined
  /**
   * Placement (`dwcp-itp`) and this node's id: a `VmCreate` first asks where the VM goes and
   * stores the decision with the task. Without it VMs are created on this node.
   */
  readonly placement?: { readonly service: Placement.PlacementService; readonly node: string } | undefined
  /**
   * The coordinator and its agent manager: a drain marks its node through them and acts only
   * from the coordinator; placement passes over draining, suspect, failed and left agents.
   * Without them a drain is dead-lettered at once.
   */
  readonly cluster?:
    | { readonly coordinator: CoordinatorApi; readonly agents: Pick<AgentManagerApi, "list" | "setDraining"> }
    | undefined
  /** How a drain moves VMs (live migration when it exists; stop/start otherwise). */
  readonly mover?: VmMoverApi | undefined
  /**
   * Passed to the cluster runner (`ShardingConfig`): e.g. `entityMessagePollInterval` bounds how
   * soon a resumed runner picks up work it did not receive directly.
   */
  readonly sharding?: Partial<ShardingConfig.ShardingConfig["Type"]> | undefined
}

/**
 * The workflow engine for the tasks: a single `@effect/cluster` runner whose messages (workflow
 * executions, activity results) and shard locks are in the task store.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerEngine = (
  sharding?: Partial<ShardingConfig.ShardingConfig["Type"]>,
): Layer.Layer<WorkflowEngine.WorkflowEngine, never, SqlClient.SqlClient> =>
  ClusterWorkflowEngine.layer.pipe(
    Layer.provide(SingleRunner.layer({ runnerStorage: "sql", shardingConfig: sharding })),
    Layer.orDie,
  )

/**
 * The task service on a task store: the tables, the cluster runner, the workflow of every task
 * kind, and the start of tasks stored but never started.
 *
 * @example
 * ```ts
 * import { OrchestrationSettings, Tasks } from "@novacron/orchestration"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function* () {
 *   const tasks = yield* Tasks.Tasks
 *   const task = yield* tasks.submit({ _tag: "Noop", steps: 2 })
 *   const done = yield* tasks.await(task.id)
 *   console.log(done.status) // "succeeded"
 * })
 *
 * const live = Tasks.layer(
 *   { _tag: "sqlite", filename: "/tmp/orchestration-example.db" },
 *   { settings: OrchestrationSettings.defaults },
 * )
 * Effect.runPromise(program.pipe(Effect.provide(live)))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (store: StoreOptions, options: LayerOptions): Layer.Layer<Tasks, TaskStoreError> =>
  layerFromSql(options).pipe(Layer.provide(layerSql(store)))

/**
 * {@link layer} on the `SqlClient` in context (already migrated by {@link layerSql}), so other
 * services of the node (the coordinator) share the client.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFromSql = (options: LayerOptions): Layer.Layer<Tasks, TaskStoreError, SqlClient.SqlClient> => {
  const engine = Engine.layer({
    settings: options.settings,
    vm: Option.fromNullable(options.vm),
    placement: Option.fromNullable(options.placement),
    cluster: Option.fromNullable(options.cluster),
    mover: Option.fromNullable(options.mover),
  })
  return Layer.effect(Tasks, make(options.settings)).pipe(
    Layer.provideMerge(engine),
    Layer.provideMerge(layerEngine(options.sharding)),
    Layer.map((ctx) => Context.make(Tasks, Context.get(ctx, Tasks))),
  )
}
