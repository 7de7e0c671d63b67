// A fresh PostgreSQL database on the shared server for one test file, dropped after.
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { service } from "@novacron/testing"
import { Effect, Redacted } from "effect"

export const PG_URL = process.env.NOVACRON_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test"

export const havePostgres = () => service("postgresql", PG_URL)

const admin = PgClient.layer({ url: Redacted.make(PG_URL), maxConnections: 1 })

/** The URL of a new empty database, dropped (its sessions ended) when the Scope closes. */
export const freshDatabase = (prefix: string) =>
  Effect.acquireRelease(
    Effect.gen(function* () {
      const name = `${prefix}_${process.pid}_${Date.now().toString(36)}`
      const sql = yield* SqlClient.SqlClient
      yield* sql.unsafe(`CREATE DATABASE ${name}`)
      const url = new URL(PG_URL)
      url.pathname = `/${name}`
      return { name, url: url.toString() }
    }).pipe(Effect.provide(admin), Effect.orDie),
    ({ name }) =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      }).pipe(Effect.provide(admin), Effect.orDie),
  )
