import { Duration, Effect, Option, Schedule, type Scope } from "effect"
import postgres from "postgres"
import type { Repository } from "../Database.js"
import { DatabaseError, type MigrationError } from "../DatabaseError.js"
import * as Migration from "../Migration.js"
import type { CheckpointRecord } from "../Model.js"
import { checksum, migrationFailure, planOrThrow, toJson, tryPromise } from "./common.js"
import { AppliedRow, KvRow, KvValueRow, NodeRow, rowDecoder } from "./rows.js"
import { toCheckpoint, toTask } from "./sqlite.js"

type Sql = postgres.Sql
const attempt = tryPromise("postgres")

/** Failures of the first connection worth waiting out: a server still starting or restarting. */
const transientCodes = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EAI_AGAIN", "57P03", "CONNECT_TIMEOUT"])

/** @internal */
export const isTransient = (e: DatabaseError): boolean =>
  transientCodes.has(String((e.cause as { code?: unknown } | undefined)?.code))

/** Where the URL points, for logs (never the credentials). */
const target = (url: string) => {
  try {
    const u = new URL(url)
    return `${u.hostname}:${u.port || "5432"}`
  } catch {
    return "the configured server"
  }
}

/** The default window for the first connection: a server coming up with the node is waited for. */
export const defaultConnectRetry = Duration.seconds(10)

/**
 * Connects once, then again on a transient failure with exponential backoff (100 ms doubling,
 * at most 2 s apart) until `window` has passed; each retry is logged. A refusal that outlasts
 * the window fails naming the attempts.
 */
const connectWithRetry = (sql: Sql, url: string, window: Duration.DurationInput) =>
  Effect.gen(function* () {
    let attempts = 0
    const started = Date.now()
    const once = Effect.suspend(() => {
      attempts++
      return attempt("connect", () => sql`SELECT 1`)
    })
    const schedule = Schedule.exponential("100 millis", 2).pipe(
      Schedule.union(Schedule.spaced("2 seconds")),
      Schedule.upTo(window),
    )
    yield* once.pipe(
      Effect.tapError((e) =>
        isTransient(e)
          ? Effect.logWarning(
              `postgres at ${target(url)} not reachable (${String((e.cause as { code?: unknown }).code)}), attempt ${attempts}: retrying with backoff for up to ${Duration.format(Duration.decode(window))}`,
            ).pipe(Effect.annotateLogs({ name: "database.retry", attempt: attempts }))
          : Effect.void,
      ),
      Effect.retry({ schedule, while: isTransient }),
      Effect.mapError((e) =>
        attempts > 1
          ? new DatabaseError({
              backend: "postgres",
              operation: `connect (${attempts} attempts over ${((Date.now() - started) / 1000).toFixed(1)} s)`,
              cause: e.cause,
            })
          : e,
      ),
    )
    if (attempts > 1)
      yield* Effect.logInfo(`postgres at ${target(url)} reachable after ${attempts} attempts`).pipe(
        Effect.annotateLogs({ name: "database.connected", attempt: attempts }),
      )
  })

/** The pool: at most `max` connections, each with `search_path` set to the schema. */
export const acquirePool = (options: {
  readonly url: string
  readonly max: number
  readonly schema?: string | undefined
  readonly applicationName?: string | undefined
  /** How long a refused first connection is retried; default {@link defaultConnectRetry}. */
  readonly connectRetry?: Duration.DurationInput | undefined
}): Effect.Effect<Sql, DatabaseError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.suspend(() => {
      if (options.url === "") {
        return Effect.fail(
          new DatabaseError({ backend: "postgres", operation: "connect", cause: "storage.postgres_url is empty" }),
        )
      }
      const sql = postgres(options.url, {
        max: options.max,
        idle_timeout: 60,
        connect_timeout: 10,
        onnotice: () => {},
        connection: {
          application_name: options.applicationName ?? "novacron",
          search_path: options.schema ?? "public",
        },
      })
      // Connect now so an unreachable server fails the boot instead of the first query.
      return connectWithRetry(sql, options.url, options.connectRetry ?? defaultConnectRetry).pipe(
        Effect.as(sql),
        Effect.tapError(() => Effect.promise(() => sql.end({ timeout: 0 }))),
      )
    }),
    (sql) => Effect.promise(() => sql.end({ timeout: 5 })),
  )

/**
 * Creates the schema and applies pending migrations in one transaction holding a transaction-level
 * advisory lock keyed by the schema, so concurrent boots against one server run one after another
 * and the later one finds everything applied. `lock: false` exists only to show the race in tests.
 */
export const migrate = (
  sql: Sql,
  schema: string,
  migrations: ReadonlyArray<Migration.Migration>,
  options: { readonly lock?: boolean } = {},
): Effect.Effect<number, DatabaseError | MigrationError> =>
  Effect.tryPromise({
    try: () =>
      sql.begin(async (tx) => {
        if (options.lock !== false) await tx`SELECT pg_advisory_xact_lock(hashtext(${`novacron:migrate:${schema}`}))`
        await tx.unsafe(`CREATE SCHEMA IF NOT EXISTS "${schema.replaceAll('"', '""')}"`)
        await tx.unsafe(
          "CREATE TABLE IF NOT EXISTS novacron_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at BIGINT NOT NULL)",
        )
        const applied = (await tx`SELECT version, name, checksum FROM novacron_migrations ORDER BY version`).map(
          toApplied,
        )
        const pending = planOrThrow(migrations, applied)
        for (const m of pending) {
          await tx.unsafe(m.up)
          await tx`INSERT INTO novacron_migrations (version, name, checksum, applied_at) VALUES (${m.version}, ${m.name}, ${checksum(m)}, ${Date.now()})`
        }
        return pending.length
      }),
    catch: migrationFailure("postgres"),
  })

const toNode = rowDecoder("nodes", NodeRow)
const toKv = rowDecoder("kv", KvRow)
const toKvValue = rowDecoder("kv", KvValueRow)
const toApplied = rowDecoder("novacron_migrations", AppliedRow)

export const make = (options: {
  readonly url: string
  readonly max: number
  readonly schema?: string | undefined
  readonly applicationName?: string | undefined
  readonly connectRetry?: Duration.DurationInput | undefined
  readonly migrations?: ReadonlyArray<Migration.Migration> | undefined
}): Effect.Effect<Repository, DatabaseError | MigrationError, Scope.Scope> =>
  Effect.gen(function* () {
    const schema = options.schema ?? "public"
    const sql = yield* acquirePool(options)
    yield* migrate(sql, schema, options.migrations ?? Migration.postgres)

    const repo: Repository = {
      backend: "postgres",
      nodes: {
        put: (n) =>
          attempt("nodes.put", async () => {
            await sql`INSERT INTO nodes (id, address, state, labels, updated_at) VALUES (${n.id}, ${n.address}, ${n.state}, ${JSON.stringify(n.labels)}, ${n.updated_at})
              ON CONFLICT (id) DO UPDATE SET address = excluded.address, state = excluded.state, labels = excluded.labels, updated_at = excluded.updated_at`
          }),
        get: (id) =>
          attempt("nodes.get", async () =>
            Option.map(Option.fromNullable((await sql`SELECT * FROM nodes WHERE id = ${id}`)[0]), toNode),
          ),
        list: attempt("nodes.list", async () => (await sql`SELECT * FROM nodes ORDER BY id COLLATE "C"`).map(toNode)),
        remove: (id) => attempt("nodes.remove", async () => (await sql`DELETE FROM nodes WHERE id = ${id}`).count > 0),
      },
      tasks: {
        put: (t) =>
          attempt("tasks.put", async () => {
            await sql`INSERT INTO tasks (id, kind, status, node_id, payload, created_at, updated_at)
              VALUES (${t.id}, ${t.kind}, ${t.status}, ${t.node_id}, ${toJson(t.payload)}, ${t.created_at}, ${t.updated_at})
              ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, status = excluded.status, node_id = excluded.node_id,
                payload = excluded.payload, created_at = excluded.created_at, updated_at = excluded.updated_at`
          }),
        get: (id) =>
          attempt("tasks.get", async () =>
            Option.map(Option.fromNullable((await sql`SELECT * FROM tasks WHERE id = ${id}`)[0]), toTask),
          ),
        list: (filter = {}) =>
          attempt("tasks.list", async () =>
            (
              await sql`SELECT * FROM tasks WHERE (${filter.status ?? null}::text IS NULL OR status = ${filter.status ?? null})
                AND (${filter.node_id ?? null}::text IS NULL OR node_id = ${filter.node_id ?? null})
                ORDER BY created_at, id COLLATE "C"`
            ).map(toTask),
          ),
        setStatus: (id, status, at) =>
          attempt(
            "tasks.setStatus",
            async () => (await sql`UPDATE tasks SET status = ${status}, updated_at = ${at} WHERE id = ${id}`).count > 0,
          ),
        remove: (id) => attempt("tasks.remove", async () => (await sql`DELETE FROM tasks WHERE id = ${id}`).count > 0),
      },
      checkpoints: {
        append: (name, data, at) =>
          attempt("checkpoints.append", async (): Promise<CheckpointRecord> => {
            const json = toJson(data)
            // Appends to one series take turns (transaction-level advisory lock), so concurrent
            // appenders get consecutive sequences instead of a unique violation.
            const [row] = await sql.begin(async (tx) => {
              await tx`SELECT pg_advisory_xact_lock(hashtext(${`novacron:checkpoint:${schema}:${name}`}))`
              return tx`INSERT INTO checkpoints (name, sequence, data, created_at)
                SELECT ${name}, COALESCE(MAX(sequence), 0) + 1, ${json}, ${at} FROM checkpoints WHERE name = ${name}
                RETURNING sequence`
            })
            return { name, sequence: Number(row!.sequence), data: JSON.parse(json), created_at: at }
          }),
        latest: (name) =>
          attempt("checkpoints.latest", async () =>
            Option.map(
              Option.fromNullable(
                (await sql`SELECT * FROM checkpoints WHERE name = ${name} ORDER BY sequence DESC LIMIT 1`)[0],
              ),
              toCheckpoint,
            ),
          ),
        list: (name) =>
          attempt("checkpoints.list", async () =>
            (await sql`SELECT * FROM checkpoints WHERE name = ${name} ORDER BY sequence`).map(toCheckpoint),
          ),
        prune: (name, keep) =>
          attempt(
            "checkpoints.prune",
            async () =>
              (
                await sql`DELETE FROM checkpoints WHERE name = ${name}
                  AND sequence <= (SELECT COALESCE(MAX(sequence), 0) FROM checkpoints WHERE name = ${name}) - ${Math.max(0, keep)}`
              ).count,
          ),
      },
      kv: {
        get: (key) =>
          attempt("kv.get", async () =>
            Option.map(
              Option.fromNullable((await sql`SELECT value FROM kv WHERE key = ${key}`)[0]),
              (r) => toKvValue(r).value,
            ),
          ),
        set: (key, value) =>
          attempt("kv.set", async () => {
            await sql`INSERT INTO kv (key, value, updated_at) VALUES (${key}, ${value}, ${Date.now()})
              ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`
          }),
        delete: (key) => attempt("kv.delete", async () => (await sql`DELETE FROM kv WHERE key = ${key}`).count > 0),
        list: (prefix) =>
          attempt("kv.list", async () =>
            (await sql`SELECT key, value FROM kv WHERE starts_with(key, ${prefix}) ORDER BY key COLLATE "C"`).map(
              (row) => {
                const r = toKv(row)
                return [r.key, r.value] as const
              },
            ),
          ),
      },
      maintenance: attempt("maintenance", async () => {
        // Only this schema's tables (search_path), and only statistics: no lock that stops writers.
        await sql`ANALYZE nodes, tasks, checkpoints, kv`
        return { backend: "postgres" as const, actions: ["ANALYZE nodes, tasks, checkpoints, kv"], details: { schema } }
      }),
      health: attempt("health", async () => {
        const start = performance.now()
        const [row] = await sql`SELECT current_setting('server_version') AS version`
        return {
          backend: "postgres" as const,
          latency_ms: performance.now() - start,
          details: { schema, server_version: row!.version, max_connections: options.max },
        }
      }),
    }
    return repo
  })
