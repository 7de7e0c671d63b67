// Three agents' task runners (real processes) on one PostgreSQL, each submitting its own tasks:
// every task completes exactly once, also after the runner process holding the shard locks is
// SIGKILLed mid-way (its advisory locks go with its sessions and another runner takes the shards).

import { type ChildProcess, spawn } from "node:child_process"
import * as path from "node:path"
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Schedule } from "effect"
import * as Tasks from "../src/Tasks.js"
import { freshDatabase, havePostgres } from "./pg.js"

const fixture = path.join(import.meta.dirname, "fixtures", "runner.ts")
const N = 20 // tasks per runner

const runner = (store: Tasks.StoreOptions, prefix: string) =>
  Effect.acquireRelease(
    Effect.async<ChildProcess, Error>((resume) => {
      const spec = { _tag: "Noop", steps: 2, sleep_ms: 10 }
      const args = ["--conditions", "@novacron/source", "--import", "tsx", fixture, JSON.stringify(store)]
      args.push(JSON.stringify(spec), String(N), prefix)
      const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"], cwd: import.meta.dirname })
      child.stdout!.on("data", (d: Buffer) => {
        // the runner's log (its errors included) goes to the test's stderr
        if (!d.toString().includes("ready")) process.stderr.write(d)
        if (d.toString().includes("ready")) resume(Effect.succeed(child))
      })
      child.once("exit", (code) => resume(Effect.fail(new Error(`runner ${prefix} exited with ${code} before ready`))))
    }),
    (child) => Effect.sync(() => child.exitCode === null && child.signalCode === null && child.kill("SIGKILL")),
  )

const pg = await havePostgres()

describe.runIf(pg)("three agents on PostgreSQL", () => {
  it.scopedLive(
    "three runner processes, 60 tasks: all succeed exactly once, across a SIGKILL of one runner",
    () =>
      Effect.gen(function* () {
        const { url } = yield* freshDatabase("orch_three")
        const store: Tasks.StoreOptions = { _tag: "postgres", url, maxConnections: 4 }
        const sql = Context.get(yield* Layer.build(Tasks.layerSql(store)), SqlClient.SqlClient)
        const count = (q: string) => Effect.map(sql.unsafe<{ n: string | number }>(q), (rows) => Number(rows[0]!.n))
        // a first (it makes the tables), then b and c together, racing a for the shard locks; all
        // three at once failed once (a runner exited before ready, its cause not caught)
        const a = yield* runner(store, "a")
        yield* Effect.all([runner(store, "b"), runner(store, "c")], { concurrency: "unbounded" })
        // kill one while work remains (whichever holds the shards, the others must finish it all)
        yield* count("SELECT COUNT(*) AS n FROM orch_tasks WHERE status = 'succeeded'").pipe(
          Effect.filterOrFail((n) => n >= 10),
          Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.upTo("60 seconds"))),
        )
        const left = yield* count("SELECT COUNT(*) AS n FROM orch_tasks WHERE status <> 'succeeded'")
        a.kill("SIGKILL")
        expect(left).toBeGreaterThan(0)

        yield* count("SELECT COUNT(*) AS n FROM orch_tasks WHERE status = 'succeeded'").pipe(
          Effect.filterOrFail((n) => n === 3 * N),
          Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo("90 seconds"))),
        )
        expect(yield* count("SELECT COUNT(*) AS n FROM orch_tasks")).toBe(3 * N)
        // each step's effect exactly once, each with its idempotency key
        expect(yield* count("SELECT COUNT(*) AS n FROM orch_noop_log")).toBe(3 * N * 2)
        expect(yield* count("SELECT COUNT(*) AS n FROM (SELECT DISTINCT task_id, step FROM orch_noop_log) d")).toBe(
          3 * N * 2,
        )
        expect(yield* count("SELECT COUNT(*) AS n FROM orch_effects")).toBe(3 * N * 2)
        // tasks of every runner, the killed one's included
        for (const p of ["a", "b", "c"])
          expect(
            yield* count(`SELECT COUNT(*) AS n FROM orch_tasks WHERE id LIKE '${p}-%' AND status = 'succeeded'`),
          ).toBe(N)
      }),
    150_000,
  )
})
