// The orchestration tables on the task store's SqlClient (SQLite or PostgreSQL; the SQL below is
// the common subset of both). Times are epoch milliseconds.
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Option, Schema } from "effect"
import { TaskStoreError } from "../OrchestrationError.js"
import { StepRecord, TaskRecord, type TaskSpec, type TaskStatus } from "../Task.js"

const fail = (operation: string) => (cause: unknown) => new TaskStoreError({ operation, cause })

const tables = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  // Nodes starting together on one PostgreSQL: CREATE TABLE IF NOT EXISTS races on the catalog.
  yield* sql.onDialectOrElse({
    pg: () => sql`SELECT pg_advisory_xact_lock(hashtext('novacron-orchestration-migrate'))`,
    orElse: () => Effect.void,
  })
  yield* sql`CREATE TABLE IF NOT EXISTS orch_tasks (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    spec TEXT NOT NULL,
    status TEXT NOT NULL,
    last_error TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deadline_at BIGINT NOT NULL,
    placement TEXT
  )`
  yield* sql`CREATE INDEX IF NOT EXISTS orch_tasks_status ON orch_tasks (status, created_at)`
  yield* sql`CREATE TABLE IF NOT EXISTS orch_steps (
    task_id TEXT NOT NULL,
    step TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    started_at BIGINT NOT NULL,
    finished_at BIGINT,
    outcome TEXT,
    error TEXT,
    PRIMARY KEY (task_id, step, attempt)
  )`
  // One row per step whose effect happened: the idempotency key of the step.
  yield* sql`CREATE TABLE IF NOT EXISTS orch_effects (
    key TEXT PRIMARY KEY,
    task_id TEXT NOT NULL,
    step TEXT NOT NULL,
    at BIGINT NOT NULL,
    result TEXT NOT NULL
  )`
  // The no-op step's own side effect (no unique key on purpose: a step acting twice shows here).
  yield* sql`CREATE TABLE IF NOT EXISTS orch_noop_log (task_id TEXT NOT NULL, step TEXT NOT NULL, at BIGINT NOT NULL)`
  // The coordinator term row: writes under a term compare it in the same transaction.
  yield* sql`CREATE TABLE IF NOT EXISTS orch_terms (
    name TEXT PRIMARY KEY,
    term BIGINT NOT NULL,
    holder TEXT NOT NULL,
    at BIGINT NOT NULL
  )`
})

export const migrate: Effect.Effect<void, TaskStoreError, SqlClient.SqlClient> = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) => sql.withTransaction(tables),
).pipe(Effect.mapError(fail("migrate")))

interface TaskRow {
  readonly id: string
  readonly kind: string
  readonly spec: string
  readonly status: string
  readonly last_error: string | null
  readonly cancel_requested: number | string | boolean
  readonly created_at: number | string
  readonly updated_at: number | string
  readonly deadline_at: number | string
  readonly placement: string | null
}

const decodeTask = Schema.decodeUnknown(TaskRecord)
const decodeStep = Schema.decodeUnknown(StepRecord)

// PostgreSQL returns BIGINT as text; SQLite as numbers.
const toTask = (row: TaskRow) =>
  Effect.try(() => [JSON.parse(row.spec), row.placement === null ? null : JSON.parse(row.placement)] as const).pipe(
    Effect.flatMap(([spec, placement]) =>
      decodeTask({
        id: row.id,
        kind: row.kind,
        spec,
        status: row.status,
        last_error: row.last_error,
        cancel_requested: row.cancel_requested === true || Number(row.cancel_requested) === 1,
        created_at: Number(row.created_at),
        updated_at: Number(row.updated_at),
        deadline_at: Number(row.deadline_at),
        placement,
      }),
    ),
    Effect.mapError(fail(`decode task ${row.id}`)),
  )

export const insertTask = (task: TaskRecord, specJson: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ id: string }>`INSERT INTO orch_tasks
      (id, kind, spec, status, last_error, cancel_requested, created_at, updated_at, deadline_at)
      VALUES (${task.id}, ${task.kind}, ${specJson}, ${task.status}, NULL, 0, ${task.created_at}, ${task.updated_at}, ${task.deadline_at})
      ON CONFLICT (id) DO NOTHING RETURNING id`
    return rows.length === 1
  }).pipe(Effect.mapError(fail(`insert task ${task.id}`)))

export const getTask = (id: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<TaskRow>`SELECT * FROM orch_tasks WHERE id = ${id}`.pipe(
      Effect.mapError(fail(`read task ${id}`)),
    )
    return rows.length === 0 ? Option.none() : Option.some(yield* toTask(rows[0]!))
  })

export interface ListFilter {
  readonly status?: TaskStatus | undefined
  readonly kind?: string | undefined
  readonly limit?: number | undefined
}

export const listTasks = (filter: ListFilter) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const limit = Math.max(1, Math.min(filter.limit ?? 1000, 100_000))
    const conds = [
      ...(filter.status !== undefined ? [sql`status = ${filter.status}`] : []),
      ...(filter.kind !== undefined ? [sql`kind = ${filter.kind}`] : []),
    ]
    const rows = yield* sql<TaskRow>`SELECT * FROM orch_tasks WHERE ${sql.and(conds)}
      ORDER BY created_at, id LIMIT ${limit}`.pipe(Effect.mapError(fail("list tasks")))
    return yield* Effect.forEach(rows, toTask)
  })

export const countByStatus = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{
    status: string
    n: number | string
  }>`SELECT status, COUNT(*) AS n FROM orch_tasks GROUP BY status`
  return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)])) as Partial<Record<TaskStatus, number>>
}).pipe(Effect.mapError(fail("count tasks")))

/** Sets the status unless the task already reached a final one. */
export const setStatus = (id: string, status: TaskStatus, at: number, lastError: string | null = null) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* sql`UPDATE orch_tasks SET status = ${status}, updated_at = ${at},
      last_error = COALESCE(${lastError}, last_error)
      WHERE id = ${id} AND status NOT IN ('succeeded', 'dead', 'cancelled')`
  }).pipe(Effect.mapError(fail(`set status of ${id}`)))

export const setPlacement = (id: string, placement: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql`UPDATE orch_tasks SET placement = ${placement} WHERE id = ${id}`)

export const requestCancel = (id: string, at: number) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* sql`UPDATE orch_tasks SET cancel_requested = 1, updated_at = ${at}
      WHERE id = ${id} AND status NOT IN ('succeeded', 'dead', 'cancelled')`
  }).pipe(Effect.mapError(fail(`cancel ${id}`)))

export const history = (taskId: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<Record<string, unknown>>`SELECT s.step, s.attempt, s.started_at, s.finished_at,
      s.outcome, s.error, e.result
      FROM orch_steps s LEFT JOIN orch_effects e ON e.key = s.task_id || '/' || s.step
      WHERE s.task_id = ${taskId} ORDER BY s.started_at, s.step, s.attempt`
    return yield* Effect.forEach(rows, (r) =>
      decodeStep({
        ...r,
        attempt: Number(r.attempt),
        started_at: Number(r.started_at),
        finished_at: r.finished_at === null ? null : Number(r.finished_at),
        // the effect's result belongs to the attempt that acted (or replayed), not failed ones
        result: r.outcome === "ok" || r.outcome === "replayed" ? (r.result ?? null) : null,
      }),
    )
  }).pipe(Effect.mapError(fail(`history of ${taskId}`)))

export const nextAttempt = (taskId: string, step: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ n: number | string | null }>`SELECT MAX(attempt) AS n FROM orch_steps
      WHERE task_id = ${taskId} AND step = ${step}`
    return Number(rows[0]?.n ?? 0) + 1
  })

export const stepStarted = (taskId: string, step: string, attempt: number, at: number) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      sql`INSERT INTO orch_steps (task_id, step, attempt, started_at) VALUES (${taskId}, ${step}, ${attempt}, ${at})`,
  )

export const stepFinished = (
  taskId: string,
  step: string,
  attempt: number,
  at: number,
  outcome: "ok" | "replayed" | "failed",
  error: string | null,
) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql`UPDATE orch_steps SET finished_at = ${at}, outcome = ${outcome}, error = ${error}
      WHERE task_id = ${taskId} AND step = ${step} AND attempt = ${attempt}`,
  )

export const effectOf = (key: string): Effect.Effect<Option.Option<string>, SqlError, SqlClient.SqlClient> =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ result: string }>`SELECT result FROM orch_effects WHERE key = ${key}`.pipe(
      Effect.map((rows) => Option.fromNullable(rows[0]?.result)),
    ),
  )

/** The recorded effects of a task's steps, by step name. */
export const effectsOf = (taskId: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ step: string; result: string }>`SELECT step, result FROM orch_effects WHERE task_id = ${taskId}`.pipe(
      Effect.map((rows) => new Map(rows.map((r) => [r.step, r.result]))),
    ),
  ).pipe(Effect.mapError(fail(`effects of ${taskId}`)))

export const recordEffect = (key: string, taskId: string, step: string, at: number, result: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      sql`INSERT INTO orch_effects (key, task_id, step, at, result) VALUES (${key}, ${taskId}, ${step}, ${at}, ${result})`,
  )

export const noopEffect = (taskId: string, step: string, at: number) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql`INSERT INTO orch_noop_log (task_id, step, at) VALUES (${taskId}, ${step}, ${at})`,
  )

export type { TaskSpec }
