import { randomBytes } from "node:crypto"
import { join } from "node:path"
import { service } from "@novacron/testing"
import Database from "better-sqlite3"
import { Redis } from "ioredis"
import postgres from "postgres"
import { afterAll, describe, expect, it } from "vitest"
import { agentsPerTest, ephemeralPorts, get, tempDataDir } from "./harness.js"

// The agent against each storage backend. PostgreSQL and Redis are the machine's shared services;
// in CI a missing one fails these tests, elsewhere they are skipped with a warning.
const pgUrl = process.env.NOVACRON_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test"
const redisUrl = process.env.NOVACRON_TEST_REDIS_URL ?? "redis://127.0.0.1:6379"

const [havePostgres, haveRedis] = await Promise.all([service("PostgreSQL", pgUrl), service("Redis", redisUrl)])

const start = agentsPerTest()

/** Boots the agent with `settings`, checks the database component came up healthy, stops it. */
const bootWith = async (settings: ReadonlyArray<string>) => {
  const dir = tempDataDir()
  const sets = settings.flatMap((s) => ["--set", s])
  const agent = start(["start", "--data-dir", dir, ...ephemeralPorts, ...sets])
  const base = String((await agent.waitFor((l) => l.name === "node.health")).url)
  await agent.waitFor((l) => l.name === "node.ready", 30_000)
  const status = JSON.parse((await get(`${base}/status`)).text)
  const database = status.components.find((c: { name: string }) => c.name === "database")
  expect(database.status).toBe("running")
  expect(database.health).toBe("healthy")
  agent.kill("SIGTERM")
  expect((await agent.exited).code).toBe(0)
  const started = agent.lines.find((l) => l.name === "component.running" && l.component === "database")
  expect(started).toBeDefined()
  expect(status.components.every((c: { status: string }) => c.status === "running")).toBe(true)
  return { agent, status, dir }
}

describe("the agent on each storage backend", () => {
  it("sqlite (the embedded default) keeps its file in the data directory", async () => {
    const { agent, dir } = await bootWith([])
    expect(agent.lines.some((l) => l.level === "error")).toBe(false)
    const db = new Database(join(dir, "novacron.db"), { readonly: true })
    const versions = db.prepare("select version from novacron_migrations").all()
    db.close()
    expect(versions.length).toBeGreaterThan(0)
  })

  describe.runIf(havePostgres)("postgres", () => {
    // A database of its own, so the shared `test` database is left as it was.
    const name = `novacron_agent_${process.pid}_${randomBytes(3).toString("hex")}`
    const admin = postgres(pgUrl, { max: 1, onnotice: () => {} })
    afterAll(async () => {
      await admin.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
      await admin.end()
    })

    it("migrates a fresh database at boot and finds it migrated on the next boot", async () => {
      await admin.unsafe(`CREATE DATABASE "${name}"`)
      const url = new URL(pgUrl)
      url.pathname = `/${name}`
      const settings = ["storage.backend=postgres", `storage.postgres_url=${url}`, "storage.max_connections=4"]
      await bootWith(settings)
      const db = postgres(url.toString(), { max: 1, onnotice: () => {} })
      const tables = await db`select table_name from information_schema.tables where table_schema = 'public'`
      await db.end()
      expect(tables.map((t) => t.table_name)).toEqual(expect.arrayContaining(["nodes", "tasks", "checkpoints"]))
      // Second boot: the recorded migrations match, nothing is re-applied.
      await bootWith(settings)
    })
  })

  describe.runIf(haveRedis)("redis", () => {
    // A logical database of its own (11, which no other test uses); the agent's keys are deleted after.
    const url = new URL(redisUrl)
    url.pathname = "/11"
    const clear = async () => {
      const client = new Redis(url.toString())
      const keys = await client.keys("novacron:*")
      if (keys.length > 0) await client.del(...keys)
      await client.quit()
    }
    afterAll(clear)

    it("keeps the node's state in Redis, and the cache shares it", async () => {
      await clear()
      const { status } = await bootWith([
        "storage.backend=redis",
        `storage.redis_url=${url}`,
        `storage.cache_redis_url=${url}`,
      ])
      const cache = status.components.find((c: { name: string }) => c.name === "cache")
      expect(cache.health).toBe("healthy")
      const client = new Redis(url.toString())
      const migrations = await client.hgetall("novacron:migrations")
      await client.quit()
      expect(Object.keys(migrations).length).toBeGreaterThan(0)
    })
  })
})
