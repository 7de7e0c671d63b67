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
import { reachable, requireService } from "./Services.js"

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

/**
 * A loopback TCP port that was free a moment ago.
 *
 * @since 0.1.0
 * @category ports
 */
export const freePort: Effect.Effect<number> = Effect.async<number>((resume) => {
  const srv = net.createServer()
  srv.once("error", (e) => resume(Effect.die(e)))
  srv.listen(0, "127.0.0.1", () => {
    const { port } = srv.address() as net.AddressInfo
    srv.close(() => resume(Effect.succeed(port)))
  })
})

/**
 * Starts a redis-server on `port` (loopback, no persistence) and waits until it accepts
 * connections; dies if it exits first (port taken) or takes over 10 s.
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
    while (!(await reachable(`redis://127.0.0.1:${port}`))) {
      if (failure !== undefined) throw failure
      if (child.exitCode !== null) throw new Error(`redis-server on ${port} exited with ${child.exitCode}`)
      if (Date.now() > deadline) {
        child.kill("SIGKILL")
        throw new Error(`redis-server on ${port} did not answer in 10 s`)
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
