import * as fs from "node:fs"
import * as path from "node:path"
import BetterSqlite3 from "better-sqlite3"
import { Effect, Option, type Scope } from "effect"
import type { Repository } from "../Database.js"
import type { DatabaseError, MigrationError } from "../DatabaseError.js"
import * as Migration from "../Migration.js"
import { checksum, migrationFailure, planOrThrow, toJson, trySync } from "./common.js"
import { AppliedRow, CheckpointRow, KvRow, KvValueRow, NodeRow, rowDecoder, SequenceRow, TaskRow } from "./rows.js"

const attempt = trySync("sqlite")

const toNode = rowDecoder("nodes", NodeRow)

/** @internal */
export const toTask = rowDecoder("tasks", TaskRow)

/** @internal */
export const toCheckpoint = rowDecoder("checkpoints", CheckpointRow)

const toApplied = rowDecoder("novacron_migrations", AppliedRow)
const toKv = rowDecoder("kv", KvRow)
const toKvValue = rowDecoder("kv", KvValueRow)
const toSequence = rowDecoder("checkpoints", SequenceRow)

/** Applies pending migrations in one IMMEDIATE transaction, which serializes concurrent processes on the file. */
export const migrate = (db: BetterSqlite3.Database, migrations: ReadonlyArray<Migration.Migration>) => {
  db.exec(
    "CREATE TABLE IF NOT EXISTS novacron_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at INTEGER NOT NULL)",
  )
  const run = db.transaction(() => {
    const applied = db
      .prepare("SELECT version, name, checksum FROM novacron_migrations ORDER BY version")
      .all()
      .map(toApplied)
    const pending = planOrThrow(migrations, applied)
    const record = db.prepare(
      "INSERT INTO novacron_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)",
    )
    for (const m of pending) {
      db.exec(m.up)
      record.run(m.version, m.name, checksum(m), Date.now())
    }
    return pending.length
  })
  return run.immediate()
}

export const make = (options: {
  readonly path: string
  readonly migrations?: ReadonlyArray<Migration.Migration> | undefined
}): Effect.Effect<Repository, DatabaseError | MigrationError, Scope.Scope> =>
  Effect.gen(function* () {
    const db = yield* Effect.acquireRelease(
      attempt("open", () => {
        if (options.path !== ":memory:") fs.mkdirSync(path.dirname(path.resolve(options.path)), { recursive: true })
        const db = new BetterSqlite3(options.path)
        try {
          db.pragma("journal_mode = WAL")
          db.pragma("synchronous = NORMAL")
          db.pragma("busy_timeout = 5000")
        } catch (e) {
          db.close()
          throw e
        }
        return db
      }),
      (db) => Effect.sync(() => db.close()),
    )
    yield* Effect.try({
      try: () => migrate(db, options.migrations ?? Migration.sqlite),
      catch: migrationFailure("sqlite"),
    })

    // Prepared on first use: a custom migration list may not create every table.
    const lazy = (text: string) => {
      let stmt: BetterSqlite3.Statement | undefined
      return () => (stmt ??= db.prepare(text))
    }
    const st = {
      nodePut: lazy(
        "INSERT INTO nodes (id, address, state, labels, updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET address = excluded.address, state = excluded.state, labels = excluded.labels, updated_at = excluded.updated_at",
      ),
      nodeGet: lazy("SELECT * FROM nodes WHERE id = ?"),
      nodeList: lazy("SELECT * FROM nodes ORDER BY id"),
      nodeDel: lazy("DELETE FROM nodes WHERE id = ?"),
      taskPut: lazy(
        "INSERT INTO tasks (id, kind, status, node_id, payload, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, status = excluded.status, node_id = excluded.node_id, payload = excluded.payload, created_at = excluded.created_at, updated_at = excluded.updated_at",
      ),
      taskGet: lazy("SELECT * FROM tasks WHERE id = ?"),
      taskList: lazy(
        "SELECT * FROM tasks WHERE (@status IS NULL OR status = @status) AND (@node_id IS NULL OR node_id = @node_id) ORDER BY created_at, id",
      ),
      taskStatus: lazy("UPDATE tasks SET status = ?, updated_at = ? WHERE id = ?"),
      taskDel: lazy("DELETE FROM tasks WHERE id = ?"),
      cpInsert: lazy(
        "INSERT INTO checkpoints (name, sequence, data, created_at) SELECT @name, COALESCE(MAX(sequence), 0) + 1, @data, @at FROM checkpoints WHERE name = @name RETURNING sequence",
      ),
      cpLatest: lazy("SELECT * FROM checkpoints WHERE name = ? ORDER BY sequence DESC LIMIT 1"),
      cpList: lazy("SELECT * FROM checkpoints WHERE name = ? ORDER BY sequence"),
      cpPrune: lazy(
        "DELETE FROM checkpoints WHERE name = @name AND sequence <= (SELECT COALESCE(MAX(sequence), 0) FROM checkpoints WHERE name = @name) - @keep",
      ),
      kvGet: lazy("SELECT value FROM kv WHERE key = ?"),
      kvSet: lazy(
        "INSERT INTO kv (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
      ),
      kvDel: lazy("DELETE FROM kv WHERE key = ?"),
      // substr instead of LIKE: keys may contain % and _.
      kvList: lazy("SELECT key, value FROM kv WHERE substr(key, 1, length(@prefix)) = @prefix ORDER BY key"),
    }

    const repo: Repository = {
      backend: "sqlite",
      nodes: {
        put: (n) =>
          attempt(
            "nodes.put",
            () => void st.nodePut().run(n.id, n.address, n.state, JSON.stringify(n.labels), n.updated_at),
          ),
        get: (id) => attempt("nodes.get", () => Option.map(Option.fromNullable(st.nodeGet().get(id)), toNode)),
        list: attempt("nodes.list", () => st.nodeList().all().map(toNode)),
        remove: (id) => attempt("nodes.remove", () => st.nodeDel().run(id).changes > 0),
      },
      tasks: {
        put: (t) =>
          attempt(
            "tasks.put",
            () =>
              void st.taskPut().run(t.id, t.kind, t.status, t.node_id, toJson(t.payload), t.created_at, t.updated_at),
          ),
        get: (id) => attempt("tasks.get", () => Option.map(Option.fromNullable(st.taskGet().get(id)), toTask)),
        list: (filter = {}) =>
          attempt("tasks.list", () =>
            st
              .taskList()
              .all({ status: filter.status ?? null, node_id: filter.node_id ?? null })
              .map(toTask),
          ),
        setStatus: (id, status, at) =>
          attempt("tasks.setStatus", () => st.taskStatus().run(status, at, id).changes > 0),
        remove: (id) => attempt("tasks.remove", () => st.taskDel().run(id).changes > 0),
      },
      checkpoints: {
        append: (name, data, at) =>
          attempt("checkpoints.append", () => {
            const json = toJson(data)
            const { sequence } = toSequence(st.cpInsert().get({ name, data: json, at }))
            return { name, sequence: Number(sequence), data: JSON.parse(json), created_at: at }
          }),
        latest: (name) =>
          attempt("checkpoints.latest", () => Option.map(Option.fromNullable(st.cpLatest().get(name)), toCheckpoint)),
        list: (name) => attempt("checkpoints.list", () => st.cpList().all(name).map(toCheckpoint)),
        prune: (name, keep) =>
          attempt("checkpoints.prune", () => st.cpPrune().run({ name, keep: Math.max(0, keep) }).changes),
      },
      kv: {
        get: (key) =>
          attempt("kv.get", () => Option.map(Option.fromNullable(st.kvGet().get(key)), (r) => toKvValue(r).value)),
        set: (key, value) => attempt("kv.set", () => void st.kvSet().run(key, value, Date.now())),
        delete: (key) => attempt("kv.delete", () => st.kvDel().run(key).changes > 0),
        list: (prefix) =>
          attempt("kv.list", () =>
            st
              .kvList()
              .all({ prefix })
              .map((row) => {
                const r = toKv(row)
                return [r.key, r.value] as const
              }),
          ),
      },
      maintenance: attempt("maintenance", () => {
        db.pragma("optimize")
        const [wal] = db.pragma("wal_checkpoint(PASSIVE)") as Array<{
          busy: number
          log: number
          checkpointed: number
        }>
        return {
          backend: "sqlite" as const,
          actions: ["PRAGMA optimize", "PRAGMA wal_checkpoint(PASSIVE)"],
          details: { wal_pages: wal?.log ?? 0, checkpointed_pages: wal?.checkpointed ?? 0, busy: wal?.busy === 1 },
        }
      }),
      health: attempt("health", () => {
        const start = performance.now()
        db.prepare("SELECT 1").get()
        const latency_ms = performance.now() - start
        return {
          backend: "sqlite" as const,
          latency_ms,
          details: { path: options.path, journal_mode: db.pragma("journal_mode", { simple: true }) },
        }
      }),
    }
    return repo
  })
