// 1,000 queued tasks all complete, each exactly once, on SQLite and on PostgreSQL.

import * as path from "node:path"
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { tempDir } from "@novacron/testing"
import { Effect, Layer } from "effect"
import * as OrchestrationSettings from "../src/OrchestrationSettings.js"
import * as Tasks from "../src/Tasks.js"
import { freshDatabase, havePostgres } from "./pg.js"

const N = 1000

const thousand = (store: Tasks.StoreOptions) =>
  Effect.gen(function* () {
    const ctx = yield* Layer.build(
      Layer.merge(Tasks.layer(store, { settings: OrchestrationSettings.defaults }), Tasks.layerSql(store)),
    )
    const tasks = ctx.unsafeMap.get(Tasks.Tasks.key) as Tasks.TasksApi
    const sql = ctx.unsafeMap.get(SqlClient.SqlClient.key) as SqlClient.SqlClient
    yield* Effect.forEach(
      Array.from({ length: N }, (_, i) => i),
      (i) => tasks.submit({ _tag: "Noop" }, { id: `bulk-${i}` }),
      { concurrency: 16, discard: true },
    )
    yield* Effect.forEach(
      Array.from({ length: N }, (_, i) => i),
      (i) => tasks.await(`bulk-${i}`, { interval: "100 millis" }),
      { concurrency: 50, discard: true },
    )
    expect(yield* tasks.counts).toEqual({ succeeded: N })
    const log = yield* sql<{
      n: number
      d: number
    }>`SELECT COUNT(*) AS n, COUNT(DISTINCT task_id) AS d FROM orch_noop_log`
    expect([Number(log[0]!.n), Number(log[0]!.d)]).toEqual([N, N])
    const attempts = yield* sql<{ n: number }>`SELECT COUNT(*) AS n FROM orch_steps`
    expect(Number(attempts[0]!.n)).toBe(N)
  })

const pg = await havePostgres()

describe("1,000 queued no-op tasks", () => {
  it.scopedLive(
    "SQLite: all succeed, each step acted exactly once",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        yield* thousand({ _tag: "sqlite", filename: path.join(dir, "orch.db") })
      }),
    240_000,
  )
  it.scopedLive.skipIf(!pg)(
    "PostgreSQL: all succeed, each step acted exactly once",
    () =>
      Effect.gen(function* () {
        const db = yield* freshDatabase("orch_many")
        yield* thousand({ _tag: "postgres", url: db.url })
      }),
    240_000,
  )
})
