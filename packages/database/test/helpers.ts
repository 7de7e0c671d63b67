import { type ChildProcess, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fsSync from "node:fs"
import * as fs from "node:fs/promises"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { Effect } from "effect"
import { Redis } from "ioredis"
import postgres from "postgres"

export const pgUrl = process.env.NOVACRON_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test"
export const redisUrl = process.env.NOVACRON_TEST_REDIS_URL ?? "redis://127.0.0.1:6379"
export const REDIS_SERVER = process.env.NOVACRON_REDIS_SERVER ?? "/usr/bin/redis-server"

/** Whether tests can start a private redis-server; in CI a missing binary is an error. */
export const haveRedisServer = (): boolean => {
  if (fsSync.existsSync(REDIS_SERVER)) return true
  if (process.env.CI) throw new Error(`${REDIS_SERVER} is required in CI`)
  console.warn(`skipping private redis-server tests: ${REDIS_SERVER} not found`)
  return false
}

import { reachable } from "@novacron/vitest-config/services"

export { service } from "@novacron/vitest-config/services"

/** A name unique to this test run, usable as a schema name or key prefix. */
export const unique = (base: string) => `${base}_${process.pid}_${randomBytes(4).toString("hex")}`

/** A fresh directory, removed when the scope closes. */
export const tempDir = Effect.acquireRelease(
  Effect.promise(() => fs.mkdtemp(path.join(os.tmpdir(), "novacron-database-"))),
  (dir) => Effect.promise(() => fs.rm(dir, { recursive: true, force: true })),
)

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

/** A private, non-persistent redis-server on a free port, answering PING; killed when the scope closes. */
export const privateRedis = Effect.gen(function* () {
  const port = yield* Effect.promise(
    () =>
      new Promise<number>((resolve) => {
        const s = net.createServer().listen(0, "127.0.0.1", () => {
          const { port } = s.address() as net.AddressInfo
          s.close(() => resolve(port))
        })
      }),
  )
  const start = Effect.promise(async () => {
    const child = spawn(
      REDIS_SERVER,
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      {
        stdio: "ignore",
      },
    )
    const deadline = Date.now() + 10_000
    while (!(await reachable(`redis://127.0.0.1:${port}`))) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`redis-server on ${port} did not start`)
      await new Promise((r) => setTimeout(r, 25))
    }
    return child
  })
  const stop = (child: ChildProcess) =>
    Effect.promise(
      () =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve()
          child.once("exit", () => resolve())
          child.kill("SIGKILL")
        }),
    )
  return { port, url: `redis://127.0.0.1:${port}`, start: Effect.acquireRelease(start, stop), stop }
})
