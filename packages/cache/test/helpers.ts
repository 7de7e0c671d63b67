import { randomBytes } from "node:crypto"
import * as net from "node:net"
import { Effect } from "effect"

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
