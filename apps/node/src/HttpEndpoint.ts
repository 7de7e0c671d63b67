import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { Data, Effect } from "effect"

/** The port could not be bound. */
export class ListenError extends Data.TaggedError("ListenError")<{
  readonly host: string
  readonly port: number
  readonly cause: unknown
}> {
  override get message(): string {
    const code = (this.cause as NodeJS.ErrnoException)?.code
    return code === "EADDRINUSE"
      ? `port ${this.port} on ${this.host} is already in use`
      : `cannot listen on ${this.host}:${this.port}: ${String((this.cause as Error)?.message ?? this.cause)}`
  }
}

export type Handler = (req: IncomingMessage, url: URL) => Promise<{ status: number; type: string; body: string }>

/**
 * A small HTTP server in the current Scope: bound on acquire, closed (after open connections
 * end, at most `drainMillis`) on release.
 */
export const serve = (host: string, port: number, handler: Handler, drainMillis = 2000) =>
  Effect.acquireRelease(
    Effect.async<{ server: Server; port: number }, ListenError>((resume) => {
      const server = createServer((req: IncomingMessage, res: ServerResponse) => {
        const url = new URL(req.url ?? "/", "http://localhost")
        if (req.method !== "GET" && req.method !== "HEAD") {
          res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("method not allowed\n")
          return
        }
        handler(req, url).then(
          (r) => {
            res.writeHead(r.status, { "content-type": r.type, "cache-control": "no-store" })
            res.end(req.method === "HEAD" ? undefined : r.body)
          },
          (e) => {
            res.writeHead(500, { "content-type": "text/plain" }).end(`internal error: ${String(e?.message ?? e)}\n`)
          },
        )
      })
      server.keepAliveTimeout = 5000
      server.once("error", (cause) => resume(Effect.fail(new ListenError({ host, port, cause }))))
      server.listen(port, host, () => resume(Effect.succeed({ server, port: (server.address() as AddressInfo).port })))
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        const timer = setTimeout(() => server.closeAllConnections(), drainMillis)
        server.close(() => {
          clearTimeout(timer)
          resume(Effect.void)
        })
        server.closeIdleConnections()
      }),
  )
