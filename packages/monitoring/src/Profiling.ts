/**
 * On-demand profiling of the agent (`monitoring.enable_profiling` on `profiling_port`): a CPU
 * profile over N seconds and a heap snapshot, taken with `node:inspector` in the agent's own
 * process, served to admins only (a bearer token of `security.tokens` whose role is `admin`;
 * checked by `@novacron/security`), on loopback unless `monitoring.listen_address` says otherwise.
 *
 * - `GET /debug/pprof/profile?seconds=N` (1 to 60, default 10): a `.cpuprofile` (JSON; open it in
 *   Chrome DevTools or VS Code).
 * - `GET /debug/pprof/heap`: a `.heapsnapshot` (JSON; the V8 heap, strings included: secrets in
 *   memory are in it, hence admin only).
 *
 * One capture at a time (409 while one runs): a profile slows the process while it runs.
 *
 * @since 0.2.0
 */
import { Session } from "node:inspector"
import { Component } from "@novacron/init"
import { Security } from "@novacron/security"
import { Context, Duration, Effect, Layer } from "effect"
import { type Handler, type ListenError, type Response, serve } from "./HttpServer.js"

/**
 * The profiling endpoint as bound.
 *
 * @since 0.2.0
 * @category services
 */
export class ProfilingEndpoint extends Context.Tag("@novacron/monitoring/ProfilingEndpoint")<
  ProfilingEndpoint,
  { readonly url: string }
>() {}

/**
 * Longest CPU profile one request may ask for.
 *
 * @since 0.2.0
 * @category constants
 */
export const MAX_SECONDS = 60

const text = (status: number, body: string): Response => ({ status, type: "text/plain; charset=utf-8", body })

const post = <A>(session: Session, method: string, params?: object) =>
  Effect.async<A, Error>((resume) => {
    session.post(method, params ?? {}, (error, result) =>
      resume(error ? Effect.fail(error) : Effect.succeed(result as A)),
    )
  })

const withSession = <A>(use: (session: Session) => Effect.Effect<A, Error>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const session = new Session()
      session.connect()
      return session
    }),
    use,
    (session) => Effect.sync(() => session.disconnect()),
  )

/**
 * A CPU profile of the process over `seconds`, as `.cpuprofile` JSON.
 *
 * @since 0.2.0
 * @category capture
 */
export const cpuProfile = (seconds: number): Effect.Effect<string, Error> =>
  withSession((session) =>
    Effect.gen(function* () {
      yield* post(session, "Profiler.enable")
      yield* post(session, "Profiler.start")
      yield* Effect.sleep(Duration.seconds(seconds))
      const { profile } = yield* post<{ profile: unknown }>(session, "Profiler.stop")
      return JSON.stringify(profile)
    }),
  )

/**
 * A heap snapshot of the process, as `.heapsnapshot` JSON.
 *
 * @since 0.2.0
 * @category capture
 */
export const heapSnapshot: Effect.Effect<string, Error> = withSession((session) =>
  Effect.gen(function* () {
    const chunks: Array<string> = []
    session.on("HeapProfiler.addHeapSnapshotChunk", (m: { params: { chunk: string } }) => chunks.push(m.params.chunk))
    yield* post(session, "HeapProfiler.takeHeapSnapshot", { reportProgress: false })
    return chunks.join("")
  }),
)

const bearer = (header: string | undefined) => {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "")
  return m === null ? undefined : m[1]
}

/**
 * The handler: authenticates the bearer token, requires `node:admin` (the admin role), then
 * captures. Errors name what is wrong; a capture that fails is a 500 with its reason.
 *
 * @since 0.2.0
 * @category handlers
 */
export const handler = (security: Security.Security): Handler => {
  let busy = false
  const exclusive = (capture: Effect.Effect<string, Error>, name: string) =>
    Effect.suspend(() => {
      if (busy)
        return Effect.succeed(text(409, "a profile or snapshot is already being taken; try again when it ends\n"))
      busy = true
      return capture.pipe(
        Effect.map((body): Response => ({ status: 200, type: "application/json", body })),
        Effect.catchAll((e) => Effect.succeed(text(500, `${name} failed: ${e.message}\n`))),
        Effect.ensuring(Effect.sync(() => (busy = false))),
      )
    })
  return (url, request) =>
    Effect.gen(function* () {
      const token = bearer(request.headers.authorization)
      if (token === undefined)
        return text(401, "profiling needs an admin token: Authorization: Bearer <token of security.tokens>\n")
      const principal = yield* Effect.either(security.authenticateToken(token))
      if (principal._tag === "Left") return text(401, `${principal.left.message}\n`)
      const allowed = yield* Effect.either(security.authorize(principal.right, "node:admin"))
      if (allowed._tag === "Left") return text(403, `${allowed.left.message}: profiling is for the admin role\n`)
      switch (url.pathname) {
        case "/debug/pprof/profile": {
          const raw = url.searchParams.get("seconds") ?? "10"
          const seconds = /^\d+$/.test(raw) ? Number(raw) : Number.NaN
          if (!(seconds >= 1 && seconds <= MAX_SECONDS))
            return text(400, `seconds must be a whole number from 1 to ${MAX_SECONDS}, got ${JSON.stringify(raw)}\n`)
          yield* Effect.logInfo(`CPU profile for ${seconds} s asked by ${principal.right.name}`).pipe(
            Effect.annotateLogs({ name: "monitoring.profiling", principal: principal.right.name }),
          )
          return yield* exclusive(cpuProfile(seconds), "CPU profile")
        }
        case "/debug/pprof/heap":
          yield* Effect.logInfo(`heap snapshot asked by ${principal.right.name}`).pipe(
            Effect.annotateLogs({ name: "monitoring.profiling", principal: principal.right.name }),
          )
          return yield* exclusive(heapSnapshot, "heap snapshot")
        default:
          return text(404, "not found: try /debug/pprof/profile?seconds=N, /debug/pprof/heap\n")
      }
    })
}

/**
 * The profiling endpoint on `host:port` as a component spec (needs `Security`); the host places
 * it (the node: post-init, WARNING) when `monitoring.enable_profiling` is on.
 *
 * @since 0.2.0
 * @category components
 */
export const component = (
  host: string,
  port: number,
): Component.Spec<ProfilingEndpoint, ListenError, Security.Security> =>
  Component.spec({
    name: "profiling",
    layer: Layer.scoped(
      ProfilingEndpoint,
      Effect.gen(function* () {
        const security = yield* Security.Security
        const bound = yield* serve(host, port, handler(security))
        const url = `http://${host.includes(":") ? `[${host}]` : host}:${bound.port}/debug/pprof/`
        yield* Effect.logInfo(`profiling on ${url} (admin token required)`).pipe(
          Effect.annotateLogs({ name: "monitoring.profiling", url }),
        )
        return { url }
      }),
    ),
  })
