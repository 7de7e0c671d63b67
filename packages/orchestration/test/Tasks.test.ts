import * as path from "node:path"
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { tempDir } from "@novacron/testing"
import { Effect, Layer } from "effect"
import * as OrchestrationSettings from "../src/OrchestrationSettings.js"
import * as Tasks from "../src/Tasks.js"

const settings = OrchestrationSettings.decode({ retry_base: "5ms", max_attempts: 3 })

// One store per test: a private SQLite file, the service plus its SQL client (to check the tables).
const withTasks = <A, E>(body: (tasks: Tasks.TasksApi, sql: SqlClient.SqlClient) => Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const dir = yield* tempDir
    const store = { _tag: "sqlite", filename: path.join(dir, "orch.db") } as const
    const ctx = yield* Layer.build(Layer.merge(Tasks.layer(store, { settings }), Tasks.layerSql(store)))
    const tasks = ctx.unsafeMap.get(Tasks.Tasks.key) as Tasks.TasksApi
    const sql = ctx.unsafeMap.get(SqlClient.SqlClient.key) as SqlClient.SqlClient
    return yield* body(tasks, sql)
  })

describe("Tasks on SQLite", () => {
  it.scopedLive("a no-op task runs its steps once each and shows them in its history", () =>
    withTasks((tasks, sql) =>
      Effect.gen(function* () {
        const t = yield* tasks.submit({ _tag: "Noop", steps: 3 })
        expect(t.status === "queued" || t.status === "running" || t.status === "succeeded").toBe(true)
        const done = yield* tasks.await(t.id)
        expect(done.status).toBe("succeeded")
        const view = yield* tasks.get(t.id)
        expect(view.history.map((h) => [h.step, h.outcome])).toEqual([
          ["noop-1", "ok"],
          ["noop-2", "ok"],
          ["noop-3", "ok"],
        ])
        for (const h of view.history) expect(h.finished_at).toBeGreaterThanOrEqual(h.started_at)
        const log = yield* sql<{ step: string }>`SELECT step FROM orch_noop_log WHERE task_id = ${t.id} ORDER BY step`
        expect(log.map((r) => r.step)).toEqual(["noop-1", "noop-2", "noop-3"])
      }),
    ),
  )

  it.scopedLive("submitting the same id twice is one task, run once", () =>
    withTasks((tasks, sql) =>
      Effect.gen(function* () {
        const a = yield* tasks.submit({ _tag: "Noop" }, { id: "same" })
        const b = yield* tasks.submit({ _tag: "Noop", steps: 5 }, { id: "same" })
        expect(b.id).toBe(a.id)
        expect(b.spec).toEqual(a.spec)
        yield* tasks.await("same")
        const log = yield* sql<{ n: number }>`SELECT COUNT(*) AS n FROM orch_noop_log WHERE task_id = 'same'`
        expect(Number(log[0]!.n)).toBe(1)
      }),
    ),
  )

  it.scopedLive("a step failing every attempt dead-letters the task with its last error, retried on the schedule", () =>
    withTasks((tasks) =>
      Effect.gen(function* () {
        const t = yield* tasks.submit({ _tag: "Noop", steps: 2, fail_steps: [2] })
        const done = yield* tasks.await(t.id)
        expect(done.status).toBe("dead")
        expect(done.last_error).toContain("noop-2 fails by request")
        expect(done.last_error).toContain("failed 3 attempts")
        const view = yield* tasks.get(t.id)
        const second = view.history.filter((h) => h.step === "noop-2")
        expect(second.map((h) => h.outcome)).toEqual(["failed", "failed", "failed"])
        // exponential from 5 ms: the third attempt starts at least 5 + 10 ms after the first
        expect(second[2]!.started_at - second[0]!.started_at).toBeGreaterThanOrEqual(15)
      }),
    ),
  )

  it.scopedLive("a cancelled task stops before its next step", () =>
    withTasks((tasks, sql) =>
      Effect.gen(function* () {
        const t = yield* tasks.submit({ _tag: "Noop", steps: 3, sleep_ms: 300 })
        yield* Effect.sleep("100 millis")
        yield* tasks.cancel(t.id)
        const done = yield* tasks.await(t.id)
        expect(done.status).toBe("cancelled")
        const log = yield* sql<{ n: number }>`SELECT COUNT(*) AS n FROM orch_noop_log WHERE task_id = ${t.id}`
        expect(Number(log[0]!.n)).toBeLessThan(3)
      }),
    ),
  )

  it.scopedLive("a task past its timeout is dead-lettered as timed out", () =>
    withTasks((tasks) =>
      Effect.gen(function* () {
        const t = yield* tasks.submit({ _tag: "Noop", steps: 3, sleep_ms: 200 }, { timeout: "300 millis" })
        const done = yield* tasks.await(t.id)
        expect(done.status).toBe("dead")
        expect(done.last_error).toMatch(/timed out/)
      }),
    ),
  )

  it.scopedLive("a spec that does not decode is refused with the field named", () =>
    withTasks((tasks) =>
      Effect.gen(function* () {
        const e = yield* Effect.flip(tasks.submit({ _tag: "VmStart" } as never))
        expect(e._tag).toBe("InvalidTask")
        expect(e.message).toContain("vm")
      }),
    ),
  )

  it.scopedLive("a VM task without a VM manager dead-letters with that reason", () =>
    withTasks((tasks) =>
      Effect.gen(function* () {
        const t = yield* tasks.submit({ _tag: "VmStart", vm: "web-1" })
        const done = yield* tasks.await(t.id)
        expect(done.status).toBe("dead")
        expect(done.last_error).toContain("no VM manager")
      }),
    ),
  )
})
