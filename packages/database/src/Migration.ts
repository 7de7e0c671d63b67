/**
 * Versioned schema migrations. Each applied migration is recorded with the SHA-256 of its text;
 * at boot the recorded checksums are compared with this build's, and an edited applied migration
 * stops the boot before anything is applied.
 *
 * @since 0.1.0
 */
import { createHash } from "node:crypto"
import { Either } from "effect"
import { MigrationError } from "./DatabaseError.js"

/**
 * One migration: SQL statements for SQLite/PostgreSQL, a Lua script for Redis (run with the key
 * prefix as `ARGV[1]`).
 *
 * @since 0.1.0
 */
export interface Migration {
  readonly version: number
  readonly name: string
  readonly up: string
}

/**
 * A migration as recorded in the store's migrations table.
 *
 * @since 0.1.0
 */
export interface Applied {
  readonly version: number
  readonly name: string
  readonly checksum: string
}

/**
 * SHA-256 (hex) of a migration's text: what is recorded and compared at boot.
 *
 * @since 0.1.0
 */
export const checksum = (migration: Migration): string => createHash("sha256").update(migration.up).digest("hex")

/**
 * The migrations still to apply, in version order, or why the store must not be touched.
 *
 * @since 0.1.0
 */
export const plan = (
  known: ReadonlyArray<Migration>,
  applied: ReadonlyArray<Applied>,
): Either.Either<ReadonlyArray<Migration>, MigrationError> => {
  const sorted = [...known].sort((a, b) => a.version - b.version)
  for (let i = 0; i < sorted.length; i++) {
    const m = sorted[i]!
    if (!Number.isInteger(m.version) || m.version < 1 || (i > 0 && sorted[i - 1]!.version === m.version)) {
      return Either.left(
        new MigrationError({
          reason: "invalid-list",
          version: m.version,
          detail: `migration list is invalid: version ${m.version} is duplicated or not a positive integer`,
        }),
      )
    }
  }
  const byVersion = new Map(sorted.map((m) => [m.version, m]))
  let highest = 0
  for (const a of applied) {
    const m = byVersion.get(a.version)
    if (m === undefined) {
      return Either.left(
        new MigrationError({
          reason: "unknown-applied",
          version: a.version,
          detail: `database has migration ${a.version} "${a.name}" applied, which this build does not know: the database is newer than this build`,
        }),
      )
    }
    const sum = checksum(m)
    if (sum !== a.checksum) {
      return Either.left(
        new MigrationError({
          reason: "checksum-mismatch",
          version: a.version,
          detail: `migration ${a.version} "${m.name}" was edited after it was applied (recorded checksum ${a.checksum.slice(0, 12)}, now ${sum.slice(0, 12)}); restore its original text and add a new migration instead`,
        }),
      )
    }
    highest = Math.max(highest, a.version)
  }
  const done = new Set(applied.map((a) => a.version))
  const pending = sorted.filter((m) => !done.has(m.version))
  const early = pending.find((m) => m.version < highest)
  if (early !== undefined) {
    return Either.left(
      new MigrationError({
        reason: "out-of-order",
        version: early.version,
        detail: `migration ${early.version} "${early.name}" is not applied but ${highest} is: new migrations must take a version above the last applied one`,
      }),
    )
  }
  return Either.right(pending)
}

/**
 * The SQLite schema.
 *
 * @since 0.1.0
 */
export const sqlite: ReadonlyArray<Migration> = [
  {
    version: 1,
    name: "initial",
    up: `
CREATE TABLE nodes (id TEXT PRIMARY KEY, address TEXT NOT NULL, state TEXT NOT NULL, labels TEXT NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE tasks (id TEXT PRIMARY KEY, kind TEXT NOT NULL, status TEXT NOT NULL, node_id TEXT, payload TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE INDEX tasks_status ON tasks (status);
CREATE INDEX tasks_node ON tasks (node_id);
CREATE TABLE checkpoints (name TEXT NOT NULL, sequence INTEGER NOT NULL, data TEXT NOT NULL, created_at INTEGER NOT NULL, PRIMARY KEY (name, sequence));
CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at INTEGER NOT NULL);
`,
  },
]

/**
 * The PostgreSQL schema (created in the configured schema, `public` by default).
 *
 * @since 0.1.0
 */
export const postgres: ReadonlyArray<Migration> = [
  {
    version: 1,
    name: "initial",
    up: `
CREATE TABLE nodes (id TEXT PRIMARY KEY, address TEXT NOT NULL, state TEXT NOT NULL, labels TEXT NOT NULL, updated_at BIGINT NOT NULL);
CREATE TABLE tasks (id TEXT PRIMARY KEY, kind TEXT NOT NULL, status TEXT NOT NULL, node_id TEXT, payload TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
CREATE INDEX tasks_status ON tasks (status);
CREATE INDEX tasks_node ON tasks (node_id);
CREATE TABLE checkpoints (name TEXT NOT NULL, sequence BIGINT NOT NULL, data TEXT NOT NULL, created_at BIGINT NOT NULL, PRIMARY KEY (name, sequence));
CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at BIGINT NOT NULL);
`,
  },
]

/**
 * The Redis layout. Version 1 creates nothing (Redis keys need no declaration); it records the
 * layout so later migrations can transform it.
 *
 * @since 0.1.0
 */
export const redis: ReadonlyArray<Migration> = [
  {
    version: 1,
    name: "initial",
    up: `-- layout 1: <p>nodes, <p>tasks, <p>kv hashes of JSON; <p>cp:<name> sorted set by sequence; <p>cpseq:<name> counter
return 1
`,
  },
]
