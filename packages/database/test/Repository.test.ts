import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { service, tempDir } from "@novacron/testing"
import BetterSqlite3 from "better-sqlite3"
import { Context, Effect, Layer, Option, type Scope } from "effect"
import { Redis } from "ioredis"
import postgres from "postgres"
import * as Database from "../src/Database.js"
import type { DatabaseError, MigrationError } from "../src/DatabaseError.js"
import type { TaskRecord } from "../src/Model.js"
import { pgSchema, pgUrl, redisPrefix, redisUrl } from "./helpers.js"

type Make = Effect.Effect<Layer.Layer<Database.Database, DatabaseError | MigrationError>, never, Scope.Scope>

const backends: ReadonlyArray<{ name: string; up: boolean; make: Make }> = [
  {
    name: "sqlite",
    up: true,
    make: Effect.map(tempDir, (dir) => Database.layerSqlite({ path: path.join(dir, "state.db") })),
  },
  {
    name: "postgres",
    up: await service("PostgreSQL", pgUrl),
    make: Effect.map(pgSchema, (schema) => Database.layerPostgres({ url: pgUrl, max: 4, schema })),
  },
  {
    name: "redis",
    up: await service("Redis", redisUrl),
    make: Effect.map(redisPrefix, (prefix) => Database.layerRedis({ url: redisUrl, prefix })),
  },
]

/** A repository on a fresh file, schema or key prefix, closed and cleaned with the test's scope. */
const open = (make: Make) =>
  Effect.gen(function* () {
    const layer = yield* make
    return Context.get(yield* Layer.build(layer), Database.Database)
  }).pipe(Effect.orDie)

const task = (id: string, created_at: number, extra: Partial<TaskRecord> = {}): TaskRecord => ({
  id,
  kind: "migrate-vm",
  status: "pending",
  node_id: null,
  payload: { vm: id, pages: [1, 2, 3], nested: { ok: true } },
  created_at,
  updated_at: created_at,
  ...extra,
})

for (const backend of backends) {
  describe.skipIf(!backend.up)(`repository on ${backend.name}`, () => {
    it.scoped("nodes: put replaces, list is ordered by id, remove reports", () =>
      Effect.gen(function* () {
        const db = yield* open(backend.make)
        expect(db.backend).toBe(backend.name)
        yield* db.nodes.put({ id: "n2", address: "10.0.0.2:7700", state: "up", labels: {}, updated_at: 1 })
        yield* db.nodes.put({ id: "n1", address: "10.0.0.1:7700", state: "up", labels: { zone: "a" }, updated_at: 2 })
        yield* db.nodes.put({
          id: "n2",
          address: "10.0.0.9:7700",
          state: "draining",
          labels: { gpu: "1" },
          updated_at: 3,
        })
        expect(yield* db.nodes.get("n2")).toEqual(
          Option.some({ id: "n2", address: "10.0.0.9:7700", state: "draining", labels: { gpu: "1" }, updated_at: 3 }),
        )
        expect((yield* db.nodes.list).map((n) => n.id)).toEqual(["n1", "n2"])
        expect(yield* db.nodes.remove("n1")).toBe(true)
        expect(yield* db.nodes.remove("n1")).toBe(false)
        expect(yield* db.nodes.get("n1")).toEqual(Option.none())
      }),
    )

    it.scoped("tasks: filter by status and node, setStatus, JSON payload round trip", () =>
      Effect.gen(function* () {
        const db = yield* open(backend.make)
        yield* db.tasks.put(task("t3", 30, { node_id: "n1" }))
        yield* db.tasks.put(task("t1", 10))
        yield* db.tasks.put(task("t2", 20, { node_id: "n1", status: "running", payload: null }))
        expect((yield* db.tasks.list()).map((t) => t.id)).toEqual(["t1", "t2", "t3"])
        expect((yield* db.tasks.list({ node_id: "n1" })).map((t) => t.id)).toEqual(["t2", "t3"])
        expect((yield* db.tasks.list({ status: "running" })).map((t) => t.id)).toEqual(["t2"])
        expect((yield* db.tasks.list({ status: "pending", node_id: "n1" })).map((t) => t.id)).toEqual(["t3"])
        expect(yield* db.tasks.get("t1")).toEqual(Option.some(task("t1", 10)))
        expect(yield* db.tasks.get("t2")).toEqual(
          Option.some(task("t2", 20, { node_id: "n1", status: "running", payload: null })),
        )

        expect(yield* db.tasks.setStatus("t1", "succeeded", 99)).toBe(true)
        expect(yield* db.tasks.setStatus("nope", "failed", 99)).toBe(false)
        expect(yield* db.tasks.get("nope")).toEqual(Option.none())
        const t1 = Option.getOrThrow(yield* db.tasks.get("t1"))
        expect([t1.status, t1.updated_at, t1.created_at]).toEqual(["succeeded", 99, 10])
        expect(yield* db.tasks.remove("t1")).toBe(true)
        expect(yield* db.tasks.remove("t1")).toBe(false)
        expect((yield* db.tasks.list()).map((t) => t.id)).toEqual(["t2", "t3"])
      }),
    )

    it.scoped("checkpoints: sequences per name, latest, prune keeps the newest", () =>
      Effect.gen(function* () {
        const db = yield* open(backend.make)
        expect(yield* db.checkpoints.latest("boot")).toEqual(Option.none())
        for (let i = 1; i <= 5; i++) {
          const c = yield* db.checkpoints.append("boot", { phase: i, list: ["a", i] }, 1000 + i)
          expect(c).toEqual({ name: "boot", sequence: i, data: { phase: i, list: ["a", i] }, created_at: 1000 + i })
        }
        expect((yield* db.checkpoints.append("other", "x", 7)).sequence).toBe(1)
        expect(Option.map(yield* db.checkpoints.latest("boot"), (c) => c.sequence)).toEqual(Option.some(5))
        expect(yield* db.checkpoints.prune("boot", 2)).toBe(3)
        expect((yield* db.checkpoints.list("boot")).map((c) => [c.sequence, c.data])).toEqual([
          [4, { phase: 4, list: ["a", 4] }],
          [5, { phase: 5, list: ["a", 5] }],
        ])
        // Numbering goes on after pruning; other series are untouched.
        expect((yield* db.checkpoints.append("boot", null, 2000)).sequence).toBe(6)
        expect((yield* db.checkpoints.list("other")).map((c) => c.data)).toEqual(["x"])
      }),
    )

    it.scoped("checkpoints: concurrent appends to one series get distinct consecutive sequences", () =>
      Effect.gen(function* () {
        const db = yield* open(backend.make)
        const made = yield* Effect.all(
          Array.from({ length: 16 }, (_, i) => db.checkpoints.append("race", i, i)),
          { concurrency: "unbounded" },
        )
        expect(made.map((c) => c.sequence).sort((a, b) => a - b)).toEqual(Array.from({ length: 16 }, (_, i) => i + 1))
        expect((yield* db.checkpoints.list("race")).map((c) => c.data).sort((a, b) => Number(a) - Number(b))).toEqual(
          Array.from({ length: 16 }, (_, i) => i),
        )
      }),
    )

    it.scoped("kv: set overwrites, list matches a literal prefix, delete reports", () =>
      Effect.gen(function* () {
        const db = yield* open(backend.make)
        yield* db.kv.set("vm/%1", "a")
        yield* db.kv.set("vm/_2", "b")
        yield* db.kv.set("vmX3", "c")
        yield* db.kv.set("vm/%1", "a2")
        expect(yield* db.kv.get("vm/%1")).toEqual(Option.some("a2"))
        expect(yield* db.kv.get("missing")).toEqual(Option.none())
        expect(yield* db.kv.list("vm/")).toEqual([
          ["vm/%1", "a2"],
          ["vm/_2", "b"],
        ])
        expect(yield* db.kv.list("vm/%")).toEqual([["vm/%1", "a2"]])
        expect(yield* db.kv.delete("vm/_2")).toBe(true)
        expect(yield* db.kv.delete("vm/_2")).toBe(false)
        expect((yield* db.kv.list("")).map(([k]) => k)).toEqual(["vm/%1", "vmX3"])
      }),
    )

    it.scoped("health answers while open; operations fail once the scope is closed", () =>
      Effect.gen(function* () {
        const make = yield* backend.make
        const db = yield* Effect.scoped(
          Effect.gen(function* () {
            const db = Context.get(yield* Layer.build(make), Database.Database)
            const h = yield* db.health
            expect(h.backend).toBe(backend.name)
            expect(h.latency_ms).toBeGreaterThanOrEqual(0)
            return db
          }),
        )
        const after = yield* Effect.either(db.kv.get("k"))
        expect(after._tag).toBe("Left")
      }),
    )
  })
}

// Rows are decoded with the Model's Schemas: a row another writer corrupted is a typed error naming
// the table and the column, not a record of the wrong shape (or a thrown defect).
describe("a stored row that does not match its Schema", () => {
  it.scoped("sqlite: tasks.get and nodes.list fail naming the table and column", () =>
    Effect.gen(function* () {
      const file = path.join(yield* tempDir, "state.db")
      const db = yield* open(Effect.succeed(Database.layerSqlite({ path: file })))
      yield* db.tasks.put(task("t1", 1))
      yield* db.nodes.put({ id: "n1", address: "a:1", state: "up", labels: {}, updated_at: 1 })
      const raw = new BetterSqlite3(file)
      raw.prepare("UPDATE tasks SET status = 'exploded'").run()
      raw.prepare("UPDATE nodes SET labels = '{\"zone\": 7}'").run()
      raw.close()
      const task1 = yield* Effect.flip(db.tasks.get("t1"))
      expect(task1._tag).toBe("DatabaseError")
      expect(task1.message).toMatch(/^sqlite: tasks\.get failed: stored tasks row does not decode: column status: /)
      expect(task1.message).toContain('"exploded"')
      const nodes = yield* Effect.flip(db.nodes.list)
      expect(nodes.message).toMatch(/stored nodes row does not decode: column labels\.zone: Expected string, actual 7/)
    }),
  )

  it.scoped("sqlite: a kv value or a migration record of the wrong type fails naming the table and column", () =>
    Effect.gen(function* () {
      const file = path.join(yield* tempDir, "state.db")
      const db = yield* open(Effect.succeed(Database.layerSqlite({ path: file })))
      yield* db.kv.set("a", "x")
      const raw = new BetterSqlite3(file)
      // SQLite stores a blob in a TEXT column as it is: another writer can put bytes where text belongs.
      raw.prepare("UPDATE kv SET value = x'00ff'").run()
      raw.prepare("UPDATE novacron_migrations SET checksum = x'07'").run()
      raw.close()
      expect((yield* Effect.flip(db.kv.get("a"))).message).toMatch(
        /^sqlite: kv\.get failed: stored kv row does not decode: column value: Expected string, actual /,
      )
      expect((yield* Effect.flip(db.kv.list(""))).message).toMatch(/stored kv row does not decode: column value:/)
      const reopened = yield* Effect.flip(Layer.build(Database.layerSqlite({ path: file })))
      expect(reopened.message).toMatch(
        /stored novacron_migrations row does not decode: column checksum: Expected string, actual /,
      )
    }),
  )

  it.scoped.skipIf(!backends[1]!.up)("postgres: checkpoints.latest fails naming the table and column", () =>
    Effect.gen(function* () {
      const schema = yield* pgSchema
      const db = yield* open(Effect.succeed(Database.layerPostgres({ url: pgUrl, max: 2, schema })))
      yield* db.checkpoints.append("s", { a: 1 }, 5)
      yield* Effect.promise(async () => {
        const sql = postgres(pgUrl, { max: 1, onnotice: () => {} })
        await sql.unsafe(`UPDATE "${schema}".checkpoints SET data = 'not json'`)
        await sql.end()
      })
      const e = yield* Effect.flip(db.checkpoints.latest("s"))
      expect(e.message).toMatch(
        /^postgres: checkpoints\.latest failed: stored checkpoints row does not decode: column data: /,
      )
    }),
  )

  it.scoped.skipIf(!backends[2]!.up)("redis: nodes.get fails naming the key's table and column, as a typed error", () =>
    Effect.gen(function* () {
      const prefix = yield* redisPrefix
      const db = yield* open(Effect.succeed(Database.layerRedis({ url: redisUrl, prefix })))
      yield* Effect.promise(async () => {
        const client = new Redis(redisUrl)
        await client.hset(`${prefix}nodes`, "n1", JSON.stringify({ id: "n1", address: "a:1", state: "up", labels: {} }))
        await client.quit()
      })
      const e = yield* Effect.flip(db.nodes.get("n1"))
      expect(e._tag).toBe("DatabaseError")
      expect(e.message).toMatch(
        /^redis: nodes\.get failed: stored nodes row does not decode: column updated_at: is missing/,
      )
    }),
  )
})
