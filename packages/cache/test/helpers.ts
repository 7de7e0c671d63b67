import { type ChildProcess, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as net from "node:net"
import { Effect } from "effect"
import { Redis } from "ioredis"

export const REDIS_SERVER = process.env.NOVACRON_REDIS_SERVER ?? "/usr/bin/redis-server"

/** Whether tests can start private redis-servers. In CI a missing binary is an error, never a skip. */
export const haveRedisServer = (() => {
  if (fs.existsSync(REDIS_SERVER)) return true
  if (process.env.CI) throw new Error(`${REDIS_SERVER} is required in CI (apt-get install redis-server)`)
  console.warn(`skipping redis tests: ${REDIS_SERVER} not found (set CI to make this an error)`)
  return false
})()

/** A TCP port that was free a moment ago. */
export const freePort = Effect.promise(
  () =>
    new Promise<number>((resolve, reject) => {
      const srv = net.createServer()
      srv.once("error", reject)
      srv.listen(0, "127.0.0.1", () => {
        const { port } = srv.address() as net.AddressInfo
        srv.close(() => resolve(port))
      })
    }),
)

const ping = async (port: number) => {
  const c = new Redis({ port, host: "127.0.0.1", lazyConnect: true, retryStrategy: () => null })
  c.on("error", () => {})
  try {
    await c.connect()
    return (await c.ping()) === "PONG"
  } catch {
    return false
  } finally {
    c.disconnect()
  }
}

/** Starts a private, non-persistent redis-server on `port`, answering PING before it returns. */
export const startRedis = (port: number): Effect.Effect<ChildProcess> =>
  Effect.promise(async () => {
    const child = spawn(
      REDIS_SERVER,
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      {
        stdio: "ignore",
      },
    )
    const failed = new Promise<never>((_, reject) => {
      child.once("error", reject)
      child.once("exit", (code) => reject(new Error(`redis-server exited with ${code}`)))
    })
    const deadline = Date.now() + 10_000
    while (!(await Promise.race([ping(port), failed]))) {
      if (Date.now() > deadline) throw new Error(`redis-server on ${port} did not answer`)
      await new Promise((r) => setTimeout(r, 25))
    }
    child.removeAllListeners("exit")
    return child
  })

/** Kills a redis-server started by `startRedis` and waits for it to exit. */
export const stopRedis = (child: ChildProcess): Effect.Effect<void> =>
  Effect.promise(
    () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve()
        child.once("exit", () => resolve())
        child.kill("SIGKILL")
      }),
  )

/** A private redis-server for the scope. */
export const privateRedis = Effect.gen(function* () {
  const port = yield* freePort
  const child = yield* Effect.acquireRelease(startRedis(port), stopRedis)
  return { port, url: `redis://127.0.0.1:${port}`, child }
})

/** A listener that counts connections and drops each one at once: a Redis that never answers. */
export const refusingServer = Effect.acquireRelease(
  Effect.promise(
    () =>
      new Promise<{ port: number; connections: () => number; server: net.Server }>((resolve) => {
        let n = 0
        const server = net.createServer((s) => {
          n++
          s.destroy()
        })
        server.listen(0, "127.0.0.1", () =>
          resolve({ port: (server.address() as net.AddressInfo).port, connections: () => n, server }),
        )
      }),
  ),
  ({ server }) => Effect.promise(() => new Promise<void>((r) => server.close(() => r()))),
)

export const namespace = () => `novacron-test:${process.pid}:${randomBytes(4).toString("hex")}:`

/** Polls `cond` on the real clock (for conditions driven by sockets) until it holds. */
export const eventually = (cond: () => boolean | Promise<boolean>, timeoutMs = 10_000) =>
  Effect.promise(async () => {
    const deadline = Date.now() + timeoutMs
    while (!(await cond())) {
      if (Date.now() > deadline) throw new Error("condition not reached in time")
      await new Promise((r) => setTimeout(r, 10))
    }
  })
