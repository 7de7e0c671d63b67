// The process running a task is SIGKILLed in the middle of a step; a new process on the same
// store finishes the task, and no step's side effect happened twice (checked in the database).

import { type ChildProcess, spawn } from "node:child_process"
import * as path from "node:path"
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { tempDir } from "@novacron/testing"
import { Effect, Layer, Schedule } from "effect"
import * as Tasks from "../src/Tasks.js"
import { freshDatabase, havePostgres } from "./pg.js"

const fixture = path.join(import.meta.dirname, "fixtures", "runner.ts")

const runner = (store: Tasks.StoreOptions, spec?: unknown) =>
  Effect.acquireRelease(
    Effect.async<ChildProcess, Error>((resume) => {
      const args = ["--conditions", "@novacron/source", "--import", "tsx", fixture, JSON.stringify(store)]
      if (spec !== undefined) args.push(JSON.stringify(spec))
      const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"], cwd: import.meta.dirname })
      child.stdout!.on("data", (d: Buffer) => {
        if (d.toString().includes("ready")) resume(Effect.succeed(child))
      })
      child.once("exit", (code) => resume(Effect.fail(new Error(`runner exited with ${code} before ready`))))
    }),
    (child) => Effect.sync(() => child.exitCode === null && child.signalCode === null && child.kill("SIGKILL")),
  )

const sigkill = (child: ChildProcess) =>
  Effect.async<void>((resume) => {
    child.once("exit", () => resume(Effect.void))
    child.kill("SIGKILL")
  })

interface Row {
  readonly step: string
  readonly attempt: number
  readonly finished_at: number | null
  readonly outcome: string | null
}

/**
 * `before`: killed inside step 2 before its effect (the step runs again, acts once);
 * `after`: killed after step 2's effect and key were committed but before the step completed
 * (the replay finds the key and does not act again).
 */
export const crashMidStep = (store: Tasks.StoreOptions, when: "before" | "after") =>
  Effect.gen(function* () {
    const sql = yield* Effect.provide(SqlClient.SqlClient, yield* Layer.build(Tasks.layerSql(store)))
    const spec =
      when === "before" ? { _tag: "Noop", steps: 3, sleep_ms: 400 } : { _tag: "Noop", steps: 3, sleep_after_ms: 400 }
    const first = yield* runner(store, spec)
    yield* sql<Row>`SELECT step, attempt, finished_at, outcome FROM orch_steps WHERE task_id = 't1' AND step = 'noop-2'`.pipe(
      Effect.filterOrFail((rows) => rows.length === 1 && rows[0]!.finished_at === null),
      Effect.zipRight(sql<{ key: string }>`SELECT key FROM orch_effects WHERE key = 't1/noop-2'`),
      Effect.filterOrFail((keys) => keys.length === (when === "before" ? 0 : 1)),
      Effect.retry(Schedule.spaced("10 millis").pipe(Schedule.upTo("20 seconds"))),
    )
    yield* sigkill(first)
    const before = yield* sql<{ step: string }>`SELECT step FROM orch_noop_log WHERE task_id = 't1' ORDER BY step`
    expect(before.map((r) => r.step)).toEqual(when === "before" ? ["noop-1"] : ["noop-1", "noop-2"])

    yield* runner(store)
    const status = yield* sql<{ status: string }>`SELECT status FROM orch_tasks WHERE id = 't1'`.pipe(
      Effect.map((rows) => rows[0]?.status),
      Effect.filterOrFail((s) => s === "succeeded" || s === "dead"),
      Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo("30 seconds"))),
    )
    expect(status).toBe("succeeded")
    // Each step's effect exactly once...
    const log = yield* sql<{ step: string; n: number }>`SELECT step, COUNT(*) AS n FROM orch_noop_log
      WHERE task_id = 't1' GROUP BY step ORDER BY step`
    expect(log.map((r) => [r.step, Number(r.n)])).toEqual([
      ["noop-1", 1],
      ["noop-2", 1],
      ["noop-3", 1],
    ])
    const keys = yield* sql<{ key: string }>`SELECT key FROM orch_effects WHERE task_id = 't1' ORDER BY key`
    expect(keys.map((r) => r.key)).toEqual(["t1/noop-1", "t1/noop-2", "t1/noop-3"])
    // ...although step 2 was started twice: the killed attempt never finished.
    const steps = yield* sql<Row>`SELECT step, attempt, finished_at, outcome FROM orch_steps
      WHERE task_id = 't1' ORDER BY step, attempt`
    expect(steps.map((r) => [r.step, Number(r.attempt), r.outcome])).toEqual([
      ["noop-1", 1, "ok"],
      ["noop-2", 1, null],
      ["noop-2", 2, when === "before" ? "ok" : "replayed"],
      ["noop-3", 1, "ok"],
    ])
  })

const pg = await havePostgres()

describe("a runner SIGKILLed mid-step", () => {
  it.scopedLive(
    "SQLite, killed before the step's effect: the restarted runner runs the step again, once",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        yield* crashMidStep({ _tag: "sqlite", filename: path.join(dir, "orch.db") }, "before")
      }),
    60_000,
  )
  it.scopedLive(
    "SQLite, killed after the step's effect: the restarted runner replays it without acting",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        yield* crashMidStep({ _tag: "sqlite", filename: path.join(dir, "orch.db") }, "after")
      }),
    60_000,
  )
  it.scopedLive.skipIf(!pg)(
    "PostgreSQL, killed after the step's effect: the restarted runner replays it without acting",
    () =>
      Effect.gen(function* () {
        const db = yield* freshDatabase("orch_crash")
        yield* crashMidStep({ _tag: "postgres", url: db.url }, "after")
      }),
    60_000,
  )
})
