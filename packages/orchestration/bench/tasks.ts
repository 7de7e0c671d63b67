// Tasks/s end to end (submit -> succeeded, one no-op step) of the task service on SQLite and on
// PostgreSQL (one runner), beside pg-boss 10 on the same PostgreSQL in the same run (send -> the
// handler returned). Each figure is the median of ROUNDS runs of N tasks; the ratio is ours /
// pg-boss. Run it under the bench lock: `flock /tmp/novacron-bench.lock pnpm bench`.
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Context, Effect, Layer, Redacted } from "effect"
import PgBoss from "pg-boss"
import * as OrchestrationSettings from "../src/OrchestrationSettings.js"
import * as Tasks from "../src/Tasks.js"

const N = Number(process.env.BENCH_TASKS ?? 300)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const PG_URL = process.env.NOVACRON_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test"
const CONCURRENCY = 16
const BOSS_WORKERS = 4
const BOSS_BATCH = 50

const admin = PgClient.layer({ url: Redacted.make(PG_URL), maxConnections: 1 })
const database = (name: string) =>
  Effect.acquireRelease(
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      yield* sql.unsafe(`CREATE DATABASE ${name}`)
      const url = new URL(PG_URL)
      url.pathname = `/${name}`
      return url.toString()
    }).pipe(Effect.provide(admin), Effect.orDie),
    () =>
      Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).pipe(
        Effect.provide(admin),
        Effect.orDie,
      ),
  )

/** Seconds for N no-op tasks through the task service, submit to succeeded. */
const ours = (store: Tasks.StoreOptions, round: number) =>
  Effect.scoped(
    Effect.gen(function* () {
      const tasks = Context.get(
        yield* Layer.build(Tasks.layer(store, { settings: OrchestrationSettings.defaults })),
        Tasks.Tasks,
      )
      const ids = Array.from({ length: N }, (_, i) => `r${round}-${i}`)
      const t0 = performance.now()
      yield* Effect.forEach(ids, (id) => tasks.submit({ _tag: "Noop" }, { id }), {
        concurrency: CONCURRENCY,
        discard: true,
      })
      yield* Effect.forEach(ids, (id) => tasks.await(id, { interval: "10 millis" }), {
        concurrency: 64,
        discard: true,
      })
      const s = (performance.now() - t0) / 1000
      const counts = yield* tasks.counts
      if (counts.succeeded !== N) throw new Error(`expected ${N} succeeded, got ${JSON.stringify(counts)}`)
      return s
    }),
  )

/** Seconds for N no-op jobs through pg-boss, send to handled. */
const pgBoss = (url: string) =>
  Effect.promise(async () => {
    const boss = new PgBoss({ connectionString: url, max: 10 })
    boss.on("error", (e) => console.error("pg-boss:", e.message))
    await boss.start()
    const queue = `bench-${Date.now()}`
    await boss.createQueue(queue)
    let handled = 0
    let finished!: () => void
    const all = new Promise<void>((resolve) => {
      finished = resolve
    })
    // pg-boss's worker sleeps pollingInterval between fetches that leave it idle: several workers
    // with batches, at its shortest interval, keep it from being bound by one worker's polling
    for (let w = 0; w < BOSS_WORKERS; w++)
      await boss.work(queue, { batchSize: BOSS_BATCH, pollingIntervalSeconds: 0.5 }, async (jobs) => {
        handled += jobs.length
        if (handled >= N) finished()
      })
    const t0 = performance.now()
    const ids = Array.from({ length: N }, (_, i) => i)
    for (let i = 0; i < N; i += CONCURRENCY)
      await Promise.all(ids.slice(i, i + CONCURRENCY).map((n) => boss.send(queue, { n })))
    await all
    const s = (performance.now() - t0) / 1000
    await boss.stop({ graceful: true, wait: true, timeout: 5000 })
    return s
  })

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const load = () => execFileSync("uptime", { encoding: "utf8" }).trim()

const program = Effect.gen(function* () {
  const loadBefore = load()
  const rows: Array<{ name: string; runs: Array<number> }> = [
    { name: "ours, SQLite", runs: [] },
    { name: "ours, PostgreSQL (one runner)", runs: [] },
    { name: "pg-boss 10.4, same PostgreSQL", runs: [] },
  ]
  const tag = `${process.pid}_${Date.now().toString(36)}`
  for (let round = 0; round < ROUNDS; round++) {
    // interleaved, so load changes during the run hit every contender
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orch-bench-"))
    rows[0]!.runs.push(yield* ours({ _tag: "sqlite", filename: path.join(dir, "orch.db") }, round))
    fs.rmSync(dir, { recursive: true, force: true })
    rows[1]!.runs.push(
      yield* Effect.scoped(
        Effect.flatMap(database(`orch_bench_${tag}_${round}`), (url) =>
          ours({ _tag: "postgres", url, maxConnections: 10 }, round),
        ),
      ),
    )
    rows[2]!.runs.push(
      yield* Effect.scoped(Effect.flatMap(database(`boss_bench_${tag}_${round}`), (url) => pgBoss(url))),
    )
  }
  const loadAfter = load()
  const base = N / median(rows[2]!.runs)
  const lines = [
    `${N} no-op tasks per run, ${ROUNDS} runs each, interleaved; submit concurrency ${CONCURRENCY}; pg-boss: ${BOSS_WORKERS} workers, batchSize ${BOSS_BATCH}, pollingIntervalSeconds 0.5`,
    `load before: ${loadBefore}`,
    `load after:  ${loadAfter}`,
    "",
    "| contender | runs (s) | median tasks/s | ratio to pg-boss |",
    "| --- | --- | --- | --- |",
    ...rows.map((r) => {
      const rate = N / median(r.runs)
      return `| ${r.name} | ${r.runs.map((x) => x.toFixed(2)).join(", ")} | ${rate.toFixed(0)} | ${(rate / base).toFixed(2)} |`
    }),
  ]
  console.log(lines.join("\n"))
})

Effect.runPromise(program).catch((e) => {
  console.error(e)
  process.exit(1)
})
