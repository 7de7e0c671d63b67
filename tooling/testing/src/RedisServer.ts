/**
 * Private, non-persistent redis-servers for tests that stop and restart Redis, which the shared
 * one at 127.0.0.1:6379 cannot be used for.
 *
 * @since 0.1.0
 */
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync } from "node:fs"
import * as net from "node:net"
import { Effect, type Scope } from "effect"
import { requireService } from "./Services.js"

/**
 * The redis-server binary (`NOVACRON_REDIS_SERVER` overrides `/usr/bin/redis-server`).
 *
 * @since 0.1.0
 * @category constants
 */
export const REDIS_SERVER: string = process.env.NOVACRON_REDIS_SERVER ?? "/usr/bin/redis-server"

/**
 * Whether tests can start private redis-servers ({@link requireService}: skipped outside CI, an
 * error in CI).
 *
 * @since 0.1.0
 * @category ci
 */
export const haveRedisServer = (): Promise<boolean> =>
  requireService(
    "redis-server",
    () => existsSync(REDIS_SERVER),
    `${REDIS_SERVER} not found (apt-get install redis-server)`,
  )

/** Binds `port` on loopback and closes it again: whether it was free. */
const canBind = (port: number) =>
  new Promise<boolean>((resolve) => {
    const srv = net.createServer()
    srv.once("error", () => resolve(false))
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)))
  })

/**
 * A loopback TCP port that was free a moment ago. Drawn at random from 20000..59999 rather than
 * asked of the kernel: Linux hands the same just-closed port to every worker asking at once, and
 * two test files then start their servers on one port.
 *
 * @since 0.1.0
 * @category ports
 */
export const freePort: Effect.Effect<number> = Effect.promise(async () => {
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 40000)
    if (await canBind(port)) return port
  }
})

/** The pid the redis-server on `port` reports (`INFO server`), or undefined if none answers. */
const serverPid = (port: number) =>
  new Promise<number | undefined>((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port })
    let text = ""
    const done = (pid: number | undefined) => {
      socket.destroy()
      resolve(pid)
    }
    socket.setTimeout(1000, () => done(undefined))
    socket.once("error", () => done(undefined))
    socket.once("connect", () => socket.write("INFO server\r\n"))
    socket.on("data", (chunk) => {
      text += chunk.toString()
      const m = /process_id:(\d+)/.exec(text)
      if (m) done(Number(m[1]))
    })
  })

/**
 * Starts a redis-server on `port` (loopback, no persistence) and waits until it answers as
 * itself (its pid, so another test's server on the same port is not mistaken for it); dies if
 * it exits first (port taken) or takes over 10 s.
 *
 * @since 0.1.0
 * @category servers
 */
export const startRedis = (port: number): Effect.Effect<ChildProcess> =>
  Effect.promise(async () => {
    const child = spawn(
      REDIS_SERVER,
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      { stdio: "ignore" },
    )
    let failure: Error | undefined
    child.once("error", (e) => {
      failure = e
    })
    const deadline = Date.now() + 10_000
    while ((await serverPid(port)) !== child.pid) {
      if (failure !== undefined) throw failure
      if (child.exitCode !== null)
        throw new Error(`redis-server on ${port} exited with ${child.exitCode} (port taken?)`)
      if (Date.now() > deadline) {
        child.kill("SIGKILL")
        throw new Error(`redis-server on ${port} did not answer as pid ${child.pid} in 10 s`)
      }
      await new Promise((r) => setTimeout(r, 25))
    }
    return child
  })

/**
 * Kills a redis-server started by {@link startRedis} and waits for it to exit.
 *
 * @since 0.1.0
 * @category servers
 */
export const stopRedis = (child: ChildProcess): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
    child.once("exit", () => resume(Effect.void))
    child.kill("SIGKILL")
  })

/**
 * A redis-server on `port` for the scope (start it again on the same port to simulate recovery).
 *
 * @since 0.1.0
 * @category servers
 */
export const redisOn = (port: number): Effect.Effect<ChildProcess, never, Scope.Scope> =>
  Effect.acquireRelease(startRedis(port), stopRedis)

/**
 * A private redis-server on a free port for the scope.
 *
 * @since 0.1.0
 * @category servers
 */
export const privateRedis: Effect.Effect<
  { readonly port: number; readonly url: string; readonly child: ChildProcess },
  never,
  Scope.Scope
> = Effect.gen(function* () {
  const port = yield* freePort
  const child = yield* redisOn(port)
  return { port, url: `redis://127.0.0.1:${port}`, child }
})
