/**
 * A small HTTP server in a Scope, for endpoints that answer GET and HEAD with a computed body
 * (health, metrics). node:http directly: these endpoints need no routing or middleware, and the
 * agent's start-up pays for every module it loads.
 *
 * @since 0.1.0
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { WireError } from "@novacron/wire"
import { Effect, Runtime, type Scope } from "effect"

/**
 * The port could not be bound: the wire module's one `ListenError` (`address`, `port`, `reason`),
 * as the cluster listener and the transfer receiver report it.
 *
 * @since 0.1.0
 * @category errors
 */
export const ListenError = WireError.ListenError

/**
 * @since 0.1.0
 * @category errors
 */
export type ListenError = WireError.ListenError

const listenReason = (cause: NodeJS.ErrnoException): string =>
  cause.code === "EADDRINUSE" ? "port already in use" : cause.message

/**
 * One answer.
 *
 * @since 0.1.0
 * @category models
 */
export interface Response {
  readonly status: number
  readonly type: string
  readonly body: string
}

/**
 * Answers one request (method already checked: GET or HEAD).
 *
 * @since 0.1.0
 * @category models
 */
export type Handler = (url: URL, request: IncomingMessage) => Effect.Effect<Response>

/**
 * The server as bound (`port` is the real one when 0 was asked).
 *
 * @since 0.1.0
 * @category models
 */
export interface Bound {
  readonly host: string
  readonly port: number
}

/**
 * Binds `host:port` in the current Scope; closing the scope stops accepting, lets open requests
 * finish for at most `drainMillis`, then closes what is left. Handlers run on the caller's runtime.
 *
 * @example
 * ```ts
 * import { HttpServer } from "@novacron/monitoring"
 * import { Effect } from "effect"
 *
 * const program = Effect.scoped(
 *   Effect.gen(function* () {
 *     const bound = yield* HttpServer.serve("127.0.0.1", 0, (url) =>
 *       Effect.succeed({ status: 200, type: "text/plain", body: `${url.pathname}\n` }),
 *     )
 *     yield* Effect.log(`on port ${bound.port}`)
 *   }),
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const serve = (
  host: string,
  port: number,
  handler: Handler,
  drainMillis = 2000,
): Effect.Effect<Bound, ListenError, Scope.Scope> =>
  Effect.flatMap(Effect.runtime<never>(), (runtime) => {
    const run = Runtime.runPromise(runtime)
    return Effect.map(
      Effect.acquireRelease(
        Effect.async<{ server: Server; port: number }, ListenError>((resume) => {
          const server = createServer((req: IncomingMessage, res: ServerResponse) => {
            if (req.method !== "GET" && req.method !== "HEAD") {
              res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("method not allowed\n")
              return
            }
            run(handler(new URL(req.url ?? "/", "http://localhost"), req)).then(
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
          server.once("error", (cause) =>
            resume(Effect.fail(new ListenError({ address: host, port, reason: listenReason(cause), cause }))),
          )
          server.listen(port, host, () =>
            resume(Effect.succeed({ server, port: (server.address() as AddressInfo).port })),
          )
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
      ),
      (s): Bound => ({ host, port: s.port }),
    )
  })
