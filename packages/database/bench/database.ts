// Database bench: each repository figure beside a baseline measured in the same run on the same data,
// the driver alone with the same SQL (better-sqlite3 prepared statements; postgres.js tagged queries).
// Each pair alternates 3 times and keeps the best of each (the machine is shared).
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import BetterSqlite3 from "better-sqlite3"
import { Context, Effect, Layer } from "effect"
import postgres from "postgres"
import * as Database from "../src/Database.js"

const N = Number(process.env.BENCH_N ?? 5000)
const PG = process.env.NOVACRON_BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test"

const timeEffect = <A, E>(n: number, f: (i: number) => Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const t = process.hrtime.bigint()
    for (let i = 0; i < n; i++) yield* f(i)
    return Number(process.hrtime.bigint() - t) / 1e3 / n
  })

const time = async (n: number, f: (i: number) => unknown) => {
  const t = process.hrtime.bigint()
  for (let i = 0; i < n; i++) await f(i)
  return Number(process.hrtime.bigint() - t) / 1e3 / n
}

const best = <E>(ours: Effect.Effect<number, E>, base: () => Promise<number>) =>
  Effect.gen(function* () {
    let o = Number.POSITIVE_INFINITY
    let b = Number.POSITIVE_INFINITY
    for (let r = 0; r < 3; r++) {
      o = Math.min(o, yield* ours)
      b = Math.min(b, yield* Effect.promise(base))
    }
    return [o, b] as const
  })

const row = (name: string, [ours, base]: readonly [number, number], baseName: string) =>
  console.log(
    `${name.padEnd(28)} ${ours.toFixed(2).padStart(8)} µs/op   ${baseName.padEnd(30)} ${base.toFixed(2).padStart(8)} µs/op   ratio ${(ours / base).toFixed(2)}`,
  )

const value = JSON.stringify({ vm: "vm-7", pages: Array.from({ length: 20 }, (_, i) => i) })

const sqlite = Effect.gen(function* () {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "novacron-bench-"))
  yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
  const db = Context.get(
    yield* Layer.build(Database.layerSqlite({ path: path.join(dir, "repo.db") })),
    Database.Database,
  )
  // The baseline: a second file with the same schema, WAL and pragmas, used directly.
  yield* Effect.scoped(Layer.build(Database.layerSqlite({ path: path.join(dir, "raw.db") })))
  const raw = new BetterSqlite3(path.join(dir, "raw.db"))
  raw.pragma("journal_mode = WAL")
  raw.pragma("synchronous = NORMAL")
  yield* Effect.addFinalizer(() => Effect.sync(() => raw.close()))
  const set = raw.prepare(
    "INSERT INTO kv (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
  )
  const get = raw.prepare("SELECT value FROM kv WHERE key = ?")
  row(
    "sqlite kv.set (upsert)",
    yield* best(
      timeEffect(N, (i) => db.kv.set(`k${i % 1000}`, value)),
      () => time(N, (i) => set.run(`k${i % 1000}`, value, Date.now())),
    ),
    "better-sqlite3 statement",
  )
  row(
    "sqlite kv.get",
    yield* best(
      timeEffect(N, (i) => db.kv.get(`k${i % 1000}`)),
      () => time(N, (i) => get.get(`k${i % 1000}`)),
    ),
    "better-sqlite3 statement",
  )
})

const pg = Effect.gen(function* () {
  const schema = `novacron_bench_${process.pid}`
  const admin = postgres(PG, { max: 1, onnotice: () => {} })
  yield* Effect.addFinalizer(() =>
    Effect.promise(async () => {
      await admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
      await admin.end()
    }),
  )
  const db = Context.get(yield* Layer.build(Database.layerPostgres({ url: PG, max: 4, schema })), Database.Database)
  const raw = postgres(PG, { max: 4, connection: { search_path: schema }, onnotice: () => {} })
  yield* Effect.addFinalizer(() => Effect.promise(() => raw.end()))
  for (let i = 0; i < 1000; i++) yield* db.kv.set(`k${i}`, value)
  const n = Math.ceil(N / 5)
  row(
    "postgres kv.get",
    yield* best(
      timeEffect(n, (i) => db.kv.get(`k${i % 1000}`)),
      () => time(n, (i) => raw`SELECT value FROM kv WHERE key = ${`k${i % 1000}`}`),
    ),
    "postgres.js query",
  )
  row(
    "postgres kv.set (upsert)",
    yield* best(
      timeEffect(n, (i) => db.kv.set(`k${i % 1000}`, value)),
      () =>
        time(
          n,
          (i) =>
            raw`INSERT INTO kv (key, value, updated_at) VALUES (${`k${i % 1000}`}, ${value}, ${Date.now()})
              ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
        ),
    ),
    "postgres.js query",
  )
})

console.log(`database bench: ${N} sqlite ops, ${Math.ceil(N / 5)} postgres ops per figure`)
await Effect.runPromise(Effect.scoped(sqlite))
await Effect.runPromise(
  Effect.scoped(pg).pipe(
    Effect.catchAllDefect((e) => Effect.sync(() => console.log(`postgres skipped: ${String(e)}`))),
    Effect.catchAll((e) => Effect.sync(() => console.log(`postgres skipped: ${e.message}`))),
  ),
)
