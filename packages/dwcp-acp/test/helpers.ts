import { execFileSync } from "node:child_process"
import * as net from "node:net"
import { Effect } from "effect"

export interface Pair {
  readonly client: net.Socket
  readonly server: net.Socket
  readonly port: number
}

/** A connected loopback TCP pair, closed with its scope. */
export const loopbackPair: Effect.Effect<Pair, Error, import("effect").Scope.Scope> = Effect.acquireRelease(
  Effect.async<Pair & { readonly listener: net.Server }, Error>((resume) => {
    const listener = net.createServer()
    listener.once("error", (e) => resume(Effect.fail(e)))
    listener.once("connection", (server) => {
      const client = pending
      if (client.readyState === "open") resume(Effect.succeed({ client, server, listener, port }))
      else client.once("connect", () => resume(Effect.succeed({ client, server, listener, port })))
    })
    let port = 0
    let pending: net.Socket
    listener.listen(0, "127.0.0.1", () => {
      port = (listener.address() as net.AddressInfo).port
      pending = net.connect(port, "127.0.0.1")
      pending.once("error", (e) => resume(Effect.fail(e)))
    })
  }),
  ({ client, server, listener }) =>
    Effect.sync(() => {
      client.destroy()
      server.destroy()
      listener.close()
    }),
)

/** What `ss -ti` (iproute2, independent of the addon) reports for the connection from local `port`. */
export const ssInfo = (localPort: number): string =>
  execFileSync("ss", ["-tin", "state", "established", `( sport = :${localPort} )`], { encoding: "utf8" })
