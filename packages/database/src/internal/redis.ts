import { randomUUID } from "node:crypto"
import { RedisConnection } from "@novacron/redis"
import { Effect, Option, Schedule, Schema, type Scope } from "effect"
import type { Redis } from "ioredis"
import type { Repository } from "../Database.js"
import { DatabaseError, type MigrationError } from "../DatabaseError.js"
import * as Migration from "../Migration.js"
import { CheckpointRecord, NodeRecord, TaskRecord } from "../Model.js"
import { checksum, toJson, tryPromise } from "./common.js"
import { rowDecoder } from "./rows.js"

const attempt = tryPromise("redis")

// INCR and ZADD in one script so a sequence number is never lost between them.
const APPEND = `local s = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], s, s .. '|' .. ARGV[1])
return s`
const SET_STATUS = `if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'updated_at', ARGV[2])
return 1`
const UNLOCK = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`

/** Connects, failing fast when the server is unreachable at boot, reconnecting on the shared schedule afterwards. */
export const acquireClient = (url: string, backend = "redis"): Effect.Effect<Redis, DatabaseError, Scope.Scope> =>
  url === ""
    ? Effect.fail(new DatabaseError({ backend, operation: "connect", cause: "storage.redis_url is empty" }))
    : RedisConnection.connect(url, { maxRetriesPerRequest: 2 }).pipe(
        Effect.mapError((e) => new DatabaseError({ backend, operation: "connect", cause: e.cause })),
      )

// Hash fields are strings: node_id and payload hold JSON, times decimal text.
const decodeTask = rowDecoder(
  "tasks",
  Schema.Struct({
    ...TaskRecord.fields,
    node_id: Schema.parseJson(TaskRecord.fields.node_id),
    payload: Schema.parseJson(Schema.Unknown),
    created_at: Schema.NumberFromString,
    updated_at: Schema.NumberFromString,
  }),
)

const decodeNode = rowDecoder("nodes", Schema.parseJson(NodeRecord))

const checkpointBody = rowDecoder(
  "checkpoints",
  Schema.parseJson(Schema.Struct({ data: Schema.Unknown, created_at: CheckpointRecord.fields.created_at })),
)

const decodeCheckpoint = (name: string, member: string): CheckpointRecord => {
  const bar = member.indexOf("|")
  const body = checkpointBody(member.slice(bar + 1))
  return { name, sequence: Number(member.slice(0, bar)), data: body.data, created_at: body.created_at }
}

const appliedMigration = rowDecoder(
  "migrations",
  Schema.parseJson(Schema.Struct({ name: Schema.String, checksum: Schema.String })),
)

/** Decodes what a command returned; a stored value that does not decode is a typed failure of `operation`. */
const decoded =
  <A, B>(operation: string, f: (a: A) => B) =>
  <E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<B, E | DatabaseError, R> =>
    Effect.flatMap(self, (a) =>
      Effect.try({ try: () => f(a), catch: (cause) => new DatabaseError({ backend: "redis", operation, cause }) }),
    )

/** Applies pending migrations while holding `<prefix>migrations:lock` (SET NX with expiry). */
export const migrate = (client: Redis, prefix: string, migrations: ReadonlyArray<Migration.Migration>) =>
  Effect.gen(function* () {
    const lockKey = `${prefix}migrations:lock`
    const token = randomUUID()
    const take = attempt("migrate.lock", () => client.set(lockKey, token, "PX", 60_000, "NX"))
    yield* take.pipe(
      Effect.filterOrFail(
        (r) => r === "OK",
        () => "busy" as const,
      ),
      Effect.retry({ while: (e) => e === "busy", schedule: Schedule.spaced("50 millis"), times: 1200 }),
      Effect.catchIf(
        (e) => e === "busy",
        () =>
          Effect.fail(
            new DatabaseError({ backend: "redis", operation: "migrate.lock", cause: "lock held for over a minute" }),
          ),
      ),
    )
    return yield* Effect.gen(function* () {
      const recorded = yield* attempt("migrate.read", () => client.hgetall(`${prefix}migrations`))
      const applied = yield* Effect.succeed(Object.entries(recorded)).pipe(
        decoded("migrate.read", (entries) =>
          entries.map(([v, json]): Migration.Applied => ({ version: Number(v), ...appliedMigration(json) })),
        ),
      )
      const pending = yield* Migration.plan(migrations, applied)
      for (const m of pending) {
        yield* attempt(`migrate.${m.version}`, () => client.eval(m.up, 0, prefix))
        yield* attempt("migrate.record", () =>
          client.hset(
            `${prefix}migrations`,
            String(m.version),
            JSON.stringify({ name: m.name, checksum: checksum(m), applied_at: Date.now() }),
          ),
        )
      }
      return pending.length
    }).pipe(Effect.ensuring(Effect.promise(() => client.eval(UNLOCK, 1, lockKey, token).catch(() => 0))))
  })

export const make = (options: {
  readonly url: string
  readonly prefix?: string | undefined
  readonly migrations?: ReadonlyArray<Migration.Migration> | undefined
}): Effect.Effect<Repository, DatabaseError | MigrationError, Scope.Scope> =>
  Effect.gen(function* () {
    const p = options.prefix ?? "novacron:"
    const client = yield* acquireClient(options.url)
    yield* migrate(client, p, options.migrations ?? Migration.redis)
    const k = {
      nodes: `${p}nodes`,
      task: (id: string) => `${p}task:${id}`,
      taskIds: `${p}taskids`,
      kv: `${p}kv`,
      cp: (name: string) => `${p}cp:${name}`,
      cpSeq: (name: string) => `${p}cpseq:${name}`,
    }
    const getTask = (id: string) =>
      attempt("tasks.get", () => client.hgetall(k.task(id))).pipe(
        decoded("tasks.get", (h) => (h.id === undefined ? Option.none() : Option.some(decodeTask(h)))),
      )

    const repo: Repository = {
      backend: "redis",
      nodes: {
        put: (n) => attempt("nodes.put", () => client.hset(k.nodes, n.id, JSON.stringify(n))).pipe(Effect.asVoid),
        get: (id) =>
          attempt("nodes.get", () => client.hget(k.nodes, id)).pipe(
            decoded("nodes.get", (s) => Option.map(Option.fromNullable(s), decodeNode)),
          ),
        list: attempt("nodes.list", () => client.hgetall(k.nodes)).pipe(
          decoded("nodes.list", (h) =>
            Object.values(h)
              .map((s) => decodeNode(s))
              .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
          ),
        ),
        remove: (id) => attempt("nodes.remove", () => client.hdel(k.nodes, id)).pipe(Effect.map((n) => n > 0)),
      },
      tasks: {
        put: (t) =>
          attempt("tasks.put", () =>
            client
              .multi()
              .del(k.task(t.id))
              .hset(k.task(t.id), {
                id: t.id,
                kind: t.kind,
                status: t.status,
                node_id: JSON.stringify(t.node_id),
                payload: toJson(t.payload),
                created_at: String(t.created_at),
                updated_at: String(t.updated_at),
              })
              .sadd(k.taskIds, t.id)
              .exec(),
          ).pipe(Effect.asVoid),
        get: getTask,
        list: (filter = {}) =>
          Effect.gen(function* () {
            const ids = yield* attempt("tasks.list", () => client.smembers(k.taskIds))
            const pipe = client.pipeline()
            for (const id of ids) pipe.hgetall(k.task(id))
            const rows = ids.length === 0 ? [] : ((yield* attempt("tasks.list", () => pipe.exec())) ?? [])
            const tasks = yield* Effect.succeed(rows).pipe(
              decoded("tasks.list", (rows) =>
                rows
                  .map(([err, h]) => {
                    if (err) throw err
                    return h
                  })
                  // An id deleted between SMEMBERS and HGETALL reads back as an empty hash.
                  .filter((h) => typeof h === "object" && h !== null && "id" in h)
                  .map((h) => decodeTask(h)),
              ),
            )
            return tasks
              .filter(
                (t) =>
                  (filter.status === undefined || t.status === filter.status) &&
                  (filter.node_id === undefined || t.node_id === filter.node_id),
              )
              .sort((a, b) => a.created_at - b.created_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
          }),
        setStatus: (id, status, at) =>
          attempt("tasks.setStatus", () => client.eval(SET_STATUS, 1, k.task(id), status, String(at))).pipe(
            Effect.map((r) => r === 1),
          ),
        remove: (id) =>
          attempt("tasks.remove", () => client.multi().del(k.task(id)).srem(k.taskIds, id).exec()).pipe(
            Effect.map((r) => (r?.[0]?.[1] as number) > 0),
          ),
      },
      checkpoints: {
        append: (name, data, at) =>
          Effect.gen(function* () {
            const json = toJson(data)
            const seq = yield* attempt("checkpoints.append", () =>
              client.eval(
                APPEND,
                2,
                k.cp(name),
                k.cpSeq(name),
                JSON.stringify({ data: JSON.parse(json), created_at: at }),
              ),
            )
            return { name, sequence: Number(seq), data: JSON.parse(json), created_at: at }
          }),
        latest: (name) =>
          attempt("checkpoints.latest", () => client.zrange(k.cp(name), -1, -1)).pipe(
            decoded("checkpoints.latest", (m) =>
              Option.map(Option.fromNullable(m[0]), (s) => decodeCheckpoint(name, s)),
            ),
          ),
        list: (name) =>
          attempt("checkpoints.list", () => client.zrange(k.cp(name), 0, -1)).pipe(
            decoded("checkpoints.list", (ms) => ms.map((s) => decodeCheckpoint(name, s))),
          ),
        prune: (name, keep) =>
          attempt("checkpoints.prune", () => client.zremrangebyrank(k.cp(name), 0, -Math.max(0, keep) - 1)),
      },
      kv: {
        get: (key) => attempt("kv.get", () => client.hget(k.kv, key)).pipe(Effect.map(Option.fromNullable)),
        set: (key, value) => attempt("kv.set", () => client.hset(k.kv, key, value)).pipe(Effect.asVoid),
        delete: (key) => attempt("kv.delete", () => client.hdel(k.kv, key)).pipe(Effect.map((n) => n > 0)),
        list: (prefix) =>
          attempt("kv.list", () => client.hgetall(k.kv)).pipe(
            Effect.map((h) =>
              Object.entries(h)
                .filter(([key]) => key.startsWith(prefix))
                .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
                .map(([key, value]) => [key, value] as const),
            ),
          ),
      },
      maintenance: attempt("maintenance", async () => ({
        backend: "redis" as const,
        actions: [],
        details: { prefix: p, note: "redis compacts and persists on its own" },
      })),
      health: attempt("health", async () => {
        const start = performance.now()
        await client.ping()
        const latency_ms = performance.now() - start
        const info = await client.info("persistence")
        const field = (name: string) => new RegExp(`^${name}:(.*)$`, "m").exec(info)?.[1]?.trim()
        return {
          backend: "redis" as const,
          latency_ms,
          details: {
            prefix: p,
            aof_enabled: field("aof_enabled") === "1",
            rdb_last_bgsave_status: field("rdb_last_bgsave_status"),
          },
        }
      }),
    }
    return repo
  })
