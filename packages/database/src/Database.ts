/**
 * The node's state store: one typed repository (nodes, tasks, checkpoints, key-value) over
 * SQLite (embedded default), PostgreSQL or Redis, migrated at acquisition and closed with its Scope.
 *
 * @since 0.1.0
 */
import * as path from "node:path"
import { Context, type Duration, Effect, Layer, type Option } from "effect"
import type { DatabaseError, MigrationError } from "./DatabaseError.js"
import * as Pg from "./internal/postgres.js"
import * as Rd from "./internal/redis.js"
import * as Sq from "./internal/sqlite.js"
import type { Migration } from "./Migration.js"
import type { CheckpointRecord, NodeRecord, TaskFilter, TaskRecord, TaskStatus } from "./Model.js"
import type { Backend, NodeInfo, StorageSettings } from "./StorageSettings.js"

/**
 * What a health check of the store reports.
 *
 * @since 0.1.0
 */
export interface HealthInfo {
  readonly backend: Backend
  /** Round trip of a trivial query, in milliseconds. */
  readonly latency_ms: number
  readonly details: Readonly<Record<string, unknown>>
}

/**
 * What a maintenance run did.
 *
 * @since 0.2.0
 */
export interface MaintenanceReport {
  readonly backend: Backend
  /** What ran, e.g. `PRAGMA optimize`, `ANALYZE`; empty when the backend needs nothing. */
  readonly actions: ReadonlyArray<string>
  readonly details: Readonly<Record<string, unknown>>
}

/**
 * The repository API the rest of the system uses; identical behaviour on every backend.
 *
 * @since 0.1.0
 */
export interface Repository {
  readonly backend: Backend
  readonly nodes: {
    /** Inserts or replaces the node with this id. */
    readonly put: (node: NodeRecord) => Effect.Effect<void, DatabaseError>
    readonly get: (id: string) => Effect.Effect<Option.Option<NodeRecord>, DatabaseError>
    /** All nodes, by id. */
    readonly list: Effect.Effect<ReadonlyArray<NodeRecord>, DatabaseError>
    /** Whether a node was removed. */
    readonly remove: (id: string) => Effect.Effect<boolean, DatabaseError>
  }
  readonly tasks: {
    /** Inserts or replaces the task with this id. */
    readonly put: (task: TaskRecord) => Effect.Effect<void, DatabaseError>
    readonly get: (id: string) => Effect.Effect<Option.Option<TaskRecord>, DatabaseError>
    /** Matching tasks, oldest first (ties by id). */
    readonly list: (filter?: TaskFilter) => Effect.Effect<ReadonlyArray<TaskRecord>, DatabaseError>
    /** Sets status and `updated_at`; false when there is no such task. */
    readonly setStatus: (id: string, status: TaskStatus, at: number) => Effect.Effect<boolean, DatabaseError>
    readonly remove: (id: string) => Effect.Effect<boolean, DatabaseError>
  }
  readonly checkpoints: {
    /** Appends to the named series with the next sequence number (1 for the first). */
    readonly append: (name: string, data: unknown, at: number) => Effect.Effect<CheckpointRecord, DatabaseError>
    readonly latest: (name: string) => Effect.Effect<Option.Option<CheckpointRecord>, DatabaseError>
    /** The series, oldest first. */
    readonly list: (name: string) => Effect.Effect<ReadonlyArray<CheckpointRecord>, DatabaseError>
    /** Keeps the newest `keep` checkpoints of the series; returns how many were removed. */
    readonly prune: (name: string, keep: number) => Effect.Effect<number, DatabaseError>
  }
  readonly kv: {
    readonly get: (key: string) => Effect.Effect<Option.Option<string>, DatabaseError>
    readonly set: (key: string, value: string) => Effect.Effect<void, DatabaseError>
    readonly delete: (key: string) => Effect.Effect<boolean, DatabaseError>
    /** Entries whose key starts with `prefix`, by key. */
    readonly list: (prefix: string) => Effect.Effect<ReadonlyArray<readonly [string, string]>, DatabaseError>
  }
  /** A trivial round trip to the store; fails when it is unreachable. */
  readonly health: Effect.Effect<HealthInfo, DatabaseError>
  /**
   * Routine upkeep, safe while the node runs (nothing that blocks writers for long): SQLite runs
   * `PRAGMA optimize` and a passive WAL checkpoint (the WAL file stops growing between automatic
   * checkpoints under steady readers); PostgreSQL refreshes the planner statistics of its tables
   * (`ANALYZE`; vacuuming is autovacuum's); Redis needs nothing.
   *
   * @since 0.2.0
   */
  readonly maintenance: Effect.Effect<MaintenanceReport, DatabaseError>
}

/**
 * The database service.
 *
 * @since 0.1.0
 */
export class Database extends Context.Tag("@novacron/database/Database")<Database, Repository>() {}

/**
 * Options of the SQLite backend.
 *
 * @since 0.1.0
 */
export interface SqliteOptions {
  /** Database file; `":memory:"` for a private in-memory database. */
  readonly path: string
  /** Replaces the built-in migrations (tests, extensions). */
  readonly migrations?: ReadonlyArray<Migration> | undefined
}

/**
 * Options of the PostgreSQL backend.
 *
 * @since 0.1.0
 */
export interface PostgresOptions {
  readonly url: string
  /** Pool bound (`storage.max_connections`). */
  readonly max: number
  /** Schema holding the tables, created when missing; default `public`. */
  readonly schema?: string | undefined
  /** `application_name` of the pool's sessions (visible in `pg_stat_activity`); default `novacron`. */
  readonly applicationName?: string | undefined
  /**
   * How long a refused (or reset, timed-out) first connection is retried, with exponential
   * backoff, each retry logged; default 10 seconds. Keep it below the boot phase's timeout.
   */
  readonly connectRetry?: Duration.DurationInput | undefined
  readonly migrations?: ReadonlyArray<Migration> | undefined
}

/**
 * Options of the Redis backend.
 *
 * @since 0.1.0
 */
export interface RedisOptions {
  readonly url: string
  /** Prefix of every key; default `novacron:`. */
  readonly prefix?: string | undefined
  readonly migrations?: ReadonlyArray<Migration> | undefined
}

/**
 * SQLite through better-sqlite3 in WAL mode.
 *
 * @since 0.1.0
 */
export const layerSqlite = (options: SqliteOptions): Layer.Layer<Database, DatabaseError | MigrationError> =>
  Layer.scoped(Database, Sq.make(options))

/**
 * PostgreSQL through the `postgres` client, pool bounded by `max`; migrations serialized across
 * nodes by an advisory lock.
 *
 * @since 0.1.0
 */
export const layerPostgres = (options: PostgresOptions): Layer.Layer<Database, DatabaseError | MigrationError> =>
  Layer.scoped(Database, Pg.make(options))

/**
 * Redis through ioredis (see the README for what it does and does not guarantee).
 *
 * @since 0.1.0
 */
export const layerRedis = (options: RedisOptions): Layer.Layer<Database, DatabaseError | MigrationError> =>
  Layer.scoped(Database, Rd.make(options))

/**
 * The embedded SQLite file for a data directory when `storage.sqlite_path` is empty.
 *
 * @since 0.1.0
 */
export const sqlitePath = (settings: StorageSettings, node: NodeInfo): string =>
  settings.sqlite_path === "" ? path.join(node.data_dir, "novacron.db") : settings.sqlite_path

/**
 * Knobs that are not settings: where on a shared server this node's data lives.
 *
 * @since 0.1.0
 */
export interface LayerOptions {
  /** PostgreSQL schema; default `public`. */
  readonly schema?: string | undefined
  /** Redis key prefix; default `novacron:`. */
  readonly prefix?: string | undefined
  /** PostgreSQL: how long a refused first connection is retried (see {@link PostgresOptions}). */
  readonly connectRetry?: Duration.DurationInput | undefined
}

/**
 * The backend chosen by `storage.backend`.
 *
 * @since 0.1.0
 */
export const layer = (
  settings: StorageSettings,
  node: NodeInfo,
  options: LayerOptions = {},
): Layer.Layer<Database, DatabaseError | MigrationError> => {
  switch (settings.backend) {
    case "sqlite":
      return layerSqlite({ path: sqlitePath(settings, node) })
    case "postgres":
      return layerPostgres({
        url: settings.postgres_url,
        max: settings.max_connections,
        schema: options.schema,
        connectRetry: options.connectRetry,
      })
    case "redis":
      return layerRedis({ url: settings.redis_url, prefix: options.prefix })
  }
}

/**
 * The store's health as a service call.
 *
 * @since 0.1.0
 */
export const health: Effect.Effect<HealthInfo, DatabaseError, Database> = Effect.flatMap(Database, (db) => db.health)
