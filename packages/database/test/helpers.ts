import { randomBytes } from "node:crypto"
import { Effect } from "effect"
import { Redis } from "ioredis"
import postgres from "postgres"

export const pgUrl = process.env.NOVACRON_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test"
export const redisUrl = process.env.NOVACRON_TEST_REDIS_URL ?? "redis://127.0.0.1:6379"
/** A name unique to this test run, usable as a schema name or key prefix. */
export const unique = (base: string) => `${base}_${process.pid}_${randomBytes(4).toString("hex")}`

/** A PostgreSQL schema for one test, dropped when the scope closes. */
export const pgSchema = Effect.acquireRelease(
  Effect.sync(() => unique("novacron_test")),
  (schema) =>
    Effect.promise(async () => {
      const sql = postgres(pgUrl, { max: 1, onnotice: () => {} })
      await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
      await sql.end()
    }),
)

/** A Redis key prefix for one test; its keys are deleted when the scope closes. */
export const redisPrefix = Effect.acquireRelease(
  Effect.sync(() => `${unique("novacron-test")}:`),
  (prefix) =>
    Effect.promise(async () => {
      const client = new Redis(redisUrl)
      let cursor = "0"
      do {
        const [next, keys] = await client.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 500)
        if (keys.length > 0) await client.del(...keys)
        cursor = next
      } while (cursor !== "0")
      await client.quit()
    }),
)
