/**
 * The API server: the {@link Api.api} definition served over HTTPS with the node's certificate,
 * every route authenticated (client certificate of the node CA, or token) and authorized from
 * `@novacron/security`'s one policy table, rate-limited per principal, bodies bounded, one audit
 * log line per mutating call, blocking queries and the event stream fed by the {@link EventLog}.
 *
 * @since 0.1.0
 */
import { readFile } from "node:fs/promises"
import * as https from "node:https"
import { createRequire } from "node:module"
import * as path from "node:path"
import {
  HttpApiBuilder,
  HttpApp,
  HttpIncomingMessage,
  HttpMiddleware,
  HttpServer,
  HttpServerRequest,
  HttpServerResponse,
  OpenApi,
} from "@effect/platform"
import { NodeHttpServer, NodeHttpServerRequest } from "@effect/platform-node"
import { MetricsEndpoint } from "@novacron/monitoring"
import { type Authorization, Security } from "@novacron/security"
import { type VmManager, Vm as VmSchemas } from "@novacron/vm"
import { Context, Data, Deferred, Duration, Effect, Layer, Option, ParseResult, Schedule, Schema, Stream } from "effect"
import * as Api from "./Api.js"
import { Forbidden, orchestrationNotRunning, ServiceUnavailable, TooManyRequests } from "./ApiError.js"
import type { ApiSettings } from "./ApiSettings.js"
import * as EventLog from "./EventLog.js"
import { authenticate } from "./internal/auth.js"
import * as RateLimit from "./internal/rateLimit.js"
import * as Sources from "./internal/sources.js"
import * as Trace from "./internal/trace.js"
import { vmError, vmView } from "./internal/vms.js"
import * as OrchestrationSource from "./OrchestrationSource.js"

/**
 * The API as it was bound.
 *
 * @since 0.1.0
 * @category services
 */
export class ApiEndpoint extends Context.Tag("@novacron/api/ApiEndpoint")<
  ApiEndpoint,
  {
    readonly url: string
    readonly host: string
    readonly port: number
    /**
     * Looks for changes now (VMs, members, leader) and publishes them as events; the server also
     * looks every `pollInterval`. A mutation made elsewhere (gRPC) runs it so its event is not late.
     */
    readonly refresh: Effect.Effect<void>
  }
>() {}

/**
 * The server could not start: `auth_method: none` beyond loopback, or the port could not be bound.
 *
 * @since 0.1.0
 * @category errors
 */
export class ApiStartError extends Data.TaggedError("ApiStartError")<{
  readonly address: string
  readonly port: number
  readonly reason: string
}> {
  override get message() {
    return `API on ${this.address}:${this.port}: ${this.reason}`
  }
}

/**
 * Options beside the settings section.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** How often VMs, members and the leader are compared for events. Default 1 s. */
  readonly pollInterval?: Duration.DurationInput | undefined
  /** Election whose holder `/v1/status/leader` reports. Default `coordinator`. */
  readonly election?: string | undefined
}

/**
 * The permission of every route, by `METHOD path`, read from the API's annotations.
 *
 * @since 0.1.0
 * @category policy
 */
export const routePermissions: ReadonlyMap<string, Authorization.Permission | "public"> = (() => {
  const out = new Map<string, Authorization.Permission | "public">()
  for (const group of Object.values(Api.api.groups)) {
    for (const endpoint of Object.values(group.endpoints)) {
      const needs = Context.getOption(endpoint.annotations, Api.RequiredPermission)
      if (Option.isNone(needs)) throw new Error(`route ${endpoint.method} ${endpoint.path} has no RequiredPermission`)
      out.set(`${endpoint.method} ${endpoint.path}`, needs.value)
    }
  }
  return out
})()

const routeMatchers = [...routePermissions].map(([route, needs]) => {
  const [method, path] = route.split(" ") as [string, string]
  const pattern = path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/:[A-Za-z_]+/g, "[^/]+")
  return { method, regex: new RegExp(`^${pattern}$`), needs }
})

/**
 * The permission a request needs, found by method and path among the API's routes (undefined:
 * no such route).
 *
 * @since 0.1.0
 * @category policy
 */
export const permissionOf = (method: string, pathname: string): Authorization.Permission | "public" | undefined =>
  routeMatchers.find((r) => r.method === method && r.regex.test(pathname))?.needs

// Routes outside the HttpApi (not JSON endpoints), with their permission.
const extraPermissions: ReadonlyMap<string, Authorization.Permission> = new Map([["/v1/event/ws", "cluster:read"]])

// The API's own description: served to anyone who reached the TLS listener.
const publicPaths: ReadonlySet<string> = new Set(Api.extraRoutes.map((r) => r.path))
const publicPrincipal: Authorization.Principal = { name: "public", role: "reader", method: "none" }

const MAX_WAIT = 10 * 60_000
const DEFAULT_WAIT = 5 * 60_000

/**
 * Milliseconds a blocking query waits for `wait` (`"30s"`, `"500ms"`, `"5m"`): default 5 min, at
 * most 10 min, plus up to 1/16 of it at random so many waiting clients do not return together.
 *
 * @since 0.1.0
 * @category blocking
 */
export const waitMillis = (wait: string | undefined, random = Math.random()): number => {
  const m = wait === undefined ? undefined : /^(\d+)(ms|s|m)$/.exec(wait)
  const asked =
    m === undefined || m === null ? DEFAULT_WAIT : Number(m[1]) * { ms: 1, s: 1000, m: 60_000 }[m[2] as "ms"]
  const base = Math.min(asked, MAX_WAIT)
  return Math.round(base + (base / 16) * random)
}

// The platform answers a body it cannot read (not JSON, cut short, over the size limit while
// streaming) with an empty 400; the API says what was wrong, as a typed error.
const explainUnreadable = (request: HttpServerRequest.HttpServerRequest, limit: number) =>
  Effect.gen(function* () {
    const text = yield* Effect.either(request.text)
    let reason = "the request body could not be read"
    if (text._tag === "Left") {
      const cause = String((text.left.cause as Error | undefined)?.message ?? text.left.cause ?? "")
      if (/max|large|size|exceed/i.test(cause)) {
        return HttpServerResponse.unsafeJson({ _tag: "PayloadTooLarge", limit_bytes: limit }, { status: 413 })
      }
      reason = `the request body could not be read: ${cause}`
    } else {
      try {
        JSON.parse(text.right)
      } catch (error) {
        reason = `the request body is not valid JSON: ${(error as Error).message}`
      }
    }
    return HttpServerResponse.unsafeJson(
      { _tag: "HttpApiDecodeError", issues: [{ _tag: "Type", path: [], message: reason }], message: reason },
      { status: 400 },
    )
  })

const encodeSpec = Schema.encodeSync(VmSchemas.VmSpec)

const jsonWithIndex = (body: unknown, index: number) =>
  HttpServerResponse.unsafeJson(body, { headers: { "x-novacron-index": String(index) } })

// The principal of each request, for the audit line the outer middleware writes after the answer.
const principals = new WeakMap<object, Authorization.Principal>()

const DOCS_HTML = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>NovaCron node API</title>
  </head>
  <body>
    <div id="app"></div>
    <script src="/v1/docs/scalar.js"></script>
    <script>
      Scalar.createApiReference("#app", { url: "/v1/openapi.json", withDefaultFonts: false, hideClientButton: true })
    </script>
  </body>
</html>
`

// The standalone bundle of @scalar/api-reference, from node_modules (never a CDN).
// Resolved from this module, or from the bundle it was built into (the agent ships as one CommonJS
// file, where `import.meta.url` is not set and `__filename` is).
const scalarBundle = Effect.tryPromise(() => {
  const from = typeof __filename === "string" ? __filename : import.meta.url
  const entry = createRequire(from).resolve("@scalar/api-reference")
  return readFile(path.join(path.dirname(entry), "browser", "standalone.js"), "utf8")
})

// Effect's JSON Schema marks `Schema.Unknown` with `$id: "/schemas/unknown"` at every use; a
// document holding the same `$id` twice is invalid (the validator refuses it), so they go.
const stripIds = (value: unknown): unknown =>
  Array.isArray(value)
    ? value.map(stripIds)
    : value !== null && typeof value === "object"
      ? Object.fromEntries(
          Object.entries(value)
            .filter(([k, v]) => !(k === "$id" && typeof v === "string" && v.startsWith("/schemas/")))
            .map(([k, v]) => [k, stripIds(v)]),
        )
      : value

/**
 * The OpenAPI 3.1 document of the API, with its security schemes (client certificate, bearer
 * token, `X-Novacron-Token`).
 *
 * @since 0.1.0
 * @category openapi
 */
export const openApi = (): OpenApi.OpenAPISpec => {
  const spec = stripIds(OpenApi.fromApi(Api.api)) as Record<string, any>
  spec.components = {
    ...spec.components,
    securitySchemes: {
      mtls: { type: "mutualTLS", description: "client certificate of the node CA; role in the subject's OU" },
      bearer: { type: "http", scheme: "bearer", description: "a token of security.tokens" },
      token: { type: "apiKey", in: "header", name: "X-Novacron-Token", description: "a token of security.tokens" },
    },
  }
  spec.security = [{ mtls: [] }, { bearer: [] }, { token: [] }]
  return spec as unknown as OpenApi.OpenAPISpec
}

/**
 * The server as a Layer: binds in the Layer's scope; closing it stops accepting, ends event
 * streams and blocking queries, lets other requests finish within `shutdown_grace`, then closes
 * the connections left (a slow client does not hold the shutdown).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  settings: ApiSettings,
  options: Options = {},
): Layer.Layer<ApiEndpoint | EventLog.EventLog, ApiStartError, Security.Security> =>
  Layer.unwrapScoped(
    Effect.gen(function* () {
      const security = yield* Security.Security
      if (security.authMethod === "none" && !Security.isLoopback(settings.listen_address)) {
        return yield* new ApiStartError({
          address: settings.listen_address,
          port: settings.port,
          reason:
            "security.auth_method is none, which the API allows only on loopback (127.0.0.1 or ::1): " +
            "set api.listen_address to a loopback address, or use mtls or token",
        })
      }
      const { vms, membership, store, agent, tasks, migrations } = Sources.fromContext(
        yield* Effect.context<never>(),
        security.nodeId,
      )
      const election = options.election ?? OrchestrationSource.election
      const log = yield* EventLog.make()
      const stopping = yield* Deferred.make<void>()
      yield* Effect.addFinalizer(() => Deferred.succeed(stopping, undefined))
      const limiter = RateLimit.make(settings.rate_limit, settings.rate_burst)
      const bundle = yield* Effect.cached(scalarBundle)
      // Each change of a migration run is an event on the Migration topic (keyed by the run's id):
      // started, progress (phase, bytes, dirty rate, expected downtime), then its outcome.
      if (Option.isSome(migrations)) {
        const changes = yield* migrations.value.changes
        yield* Effect.forkScoped(
          Stream.runForEach(Stream.fromQueue(changes), (run) =>
            log.publish(
              "Migration",
              run.state === "running"
                ? run.progress === null
                  ? "MigrationStarted"
                  : "MigrationProgress"
                : run.state === "completed"
                  ? "MigrationCompleted"
                  : run.state === "cancelled"
                    ? "MigrationCancelled"
                    : "MigrationFailed",
              run.id,
              {
                ...OrchestrationSource.migrationToApi(run),
                phase: run.phase,
                progress: run.progress,
                result: run.result,
                error: run.error,
              },
            ),
          ),
        )
      }
      let server: https.Server | undefined
      let url = ""

      // ---- events: what changed since the last look -------------------------------------------
      const seen = { vms: new Map<string, string>(), members: new Map<string, string>(), leader: "" }
      const lock = yield* Effect.makeSemaphore(1)
      const poll = lock.withPermits(1)(
        Effect.gen(function* () {
          if (Option.isSome(vms)) {
            const list = yield* Effect.option(vms.value.list)
            if (Option.isSome(list)) {
              const now = new Map(list.value.map((r) => [r.spec.id, vmView(r)] as const))
              for (const [id, view] of now) {
                const text = JSON.stringify(view)
                const before = seen.vms.get(id)
                if (before !== text) {
                  seen.vms.set(id, text)
                  yield* log.publish("VM", before === undefined ? "VmCreated" : "VmUpdated", id, view)
                }
              }
              for (const id of [...seen.vms.keys()]) {
                if (!now.has(id)) {
                  seen.vms.delete(id)
                  yield* log.publish("VM", "VmDeleted", id, { id })
                }
              }
            }
          }
          if (Option.isSome(membership)) {
            const peers = yield* membership.value.peers
            const now = new Map(peers.map((p) => [p.node_id, p] as const))
            for (const [id, peer] of now) {
              if (!seen.members.has(id)) {
                seen.members.set(id, peer.address)
                yield* log.publish("Member", "MemberJoined", id, peer)
              }
            }
            for (const id of [...seen.members.keys()]) {
              if (!now.has(id)) {
                seen.members.delete(id)
                yield* log.publish("Member", "MemberLeft", id, { node_id: id })
              }
            }
          }
          if (Option.isSome(store)) {
            const leader = yield* Effect.option(store.value.leader(election))
            const value = Option.match(Option.flatten(leader), { onNone: () => "", onSome: (e) => e.value })
            if (Option.isSome(leader) && value !== seen.leader) {
              seen.leader = value
              yield* log.publish("Leader", "LeaderChanged", election, { leader: value === "" ? null : value })
            }
          }
        }),
      )
      yield* poll
      yield* Effect.forkScoped(Effect.repeat(Effect.delay(poll, options.pollInterval ?? "1 second"), Schedule.forever))

      const until = <A>(effect: Effect.Effect<A>, fallback: A) =>
        Effect.raceFirst(effect, Effect.as(Deferred.await(stopping), fallback))
      const blocking = <A>(
        topic: string,
        params: typeof Api.BlockingParams.Type,
        read: (index: number) => Effect.Effect<A, any>,
      ) =>
        Effect.gen(function* () {
          if (params.index !== undefined) {
            yield* until(log.awaitAfter(topic, params.index, waitMillis(params.wait)), 0)
          }
          const index = Math.max(1, yield* log.topicIndex(topic))
          return jsonWithIndex(yield* read(index), index)
        })
      const needVms = Option.match(vms, {
        onNone: () =>
          Effect.fail(new ServiceUnavailable({ service: "vm", reason: "the VM manager is not running on this node" })),
        onSome: Effect.succeed,
      })
      const needTasks = Option.match(tasks, {
        onNone: () => Effect.fail(orchestrationNotRunning()),
        onSome: Effect.succeed,
      })
      const vmCall = <A, E extends { readonly _tag: string; readonly message: string }>(
        f: (m: VmManager.Manager) => Effect.Effect<A, E>,
      ) =>
        Effect.flatMap(needVms, (m) =>
          f(m).pipe(
            Effect.mapError((e) => vmError(e as never)),
            Effect.ensuring(poll),
          ),
        )

      // The event stream's lines (JSON texts): what `/v1/event/stream` sends as NDJSON and
      // `/v1/event/ws` as one WebSocket text message each.
      const eventLines = (params: typeof Api.EventParams.Type) =>
        Effect.gen(function* () {
          const topics =
            params.topic === undefined ? [] : typeof params.topic === "string" ? [params.topic] : params.topic
          const filters = topics.map(EventLog.parseFilter)
          const after = params.index ?? (yield* log.index)
          const heartbeat = Duration.seconds(params.heartbeat ?? 10)
          // The subscription lives as long as the stream is consumed.
          const events = Stream.unwrapScoped(
            Effect.map(log.follow(after, filters), ({ truncated, events }) =>
              Stream.concat(
                truncated ? Stream.make({ truncated: true, after }) : Stream.empty,
                events as Stream.Stream<unknown>,
              ),
            ),
          )
          const lines = Stream.merge(
            events,
            Stream.map(Stream.tick(heartbeat), () => ({ heartbeat: true })),
            {
              haltStrategy: "left",
            },
          ).pipe(
            Stream.map((line) => JSON.stringify(line)),
            Stream.interruptWhen(Deferred.await(stopping)),
          )
          return { after, lines }
        })

      // ---- handlers ----------------------------------------------------------------------------
      const AgentLive = HttpApiBuilder.group(Api.api, "agent", (h) =>
        h
          .handle("self", () =>
            Effect.gen(function* () {
              const principal = yield* Api.CurrentPrincipal
              const lifecycle = Option.isSome(agent) ? yield* agent.value.lifecycle : "unknown"
              return {
                node_id: Option.isSome(agent) ? agent.value.nodeId : security.nodeId,
                version: Option.isSome(agent) ? agent.value.version : "unknown",
                build: Option.isSome(agent) ? { ...agent.value.build } : {},
                lifecycle,
                api: { url, auth_method: security.authMethod },
                principal: { name: principal.name, role: principal.role, method: principal.method },
              }
            }),
          )
          .handle("members", ({ urlParams }) =>
            blocking("Member", urlParams, (index) =>
              Effect.map(
                Option.match(membership, { onNone: () => Effect.succeed([]), onSome: (m) => m.peers }),
                (peers) => ({
                  self: security.nodeId,
                  members: peers.map((p) => ({
                    node_id: p.node_id,
                    address: p.address,
                    side: p.side,
                    principal: p.principal,
                    role: p.role,
                    since: p.since,
                  })),
                  index,
                }),
              ),
            ),
          )
          .handle("health", () =>
            Option.match(agent, {
              onNone: () =>
                Effect.succeed({
                  node_id: security.nodeId,
                  lifecycle: "unknown",
                  status: "unknown",
                  uptime_ms: 0,
                  boot: null,
                  components: [],
                }),
              onSome: (a) =>
                Effect.map(a.status, (s) => ({
                  node_id: String(s.node_id ?? a.nodeId),
                  lifecycle: String(s.lifecycle ?? "unknown"),
                  status: String(s.status ?? "unknown"),
                  uptime_ms: Number(s.uptime_ms ?? 0),
                  boot: (s.boot ?? null) as Record<string, unknown> | null,
                  components: (s.components ?? []) as ReadonlyArray<Record<string, unknown>>,
                })),
            }),
          ),
      )

      const StatusLive = HttpApiBuilder.group(Api.api, "status", (h) =>
        h.handle("leader", () =>
          Option.match(store, {
            onNone: () =>
              Effect.fail(new ServiceUnavailable({ service: "state-sync", reason: "no state store on this node" })),
            onSome: (s) =>
              s.leader(election).pipe(
                Effect.map((entry) => ({
                  mode: s.mode,
                  election,
                  leader: Option.match(entry, { onNone: () => null, onSome: (e) => e.value }),
                  revision: Option.match(entry, { onNone: () => null, onSome: (e) => e.modRevision }),
                })),
                Effect.mapError((e) => new ServiceUnavailable({ service: "state-sync", reason: e.message })),
              ),
          }),
        ),
      )

      const VmsLive = HttpApiBuilder.group(Api.api, "vms", (h) =>
        h
          .handle("list", ({ urlParams }) =>
            Effect.flatMap(needVms, (m) =>
              blocking("VM", urlParams, (index) =>
                m.list.pipe(
                  Effect.map((list) => ({ vms: list.map(vmView), index })),
                  Effect.mapError((e) => vmError(e)),
                ),
              ),
            ),
          )
          .handle("create", ({ payload }) => vmCall((m) => m.define(encodeSpec(payload))).pipe(Effect.map(vmView)))
          .handle("show", ({ path }) =>
            vmCall((m) => m.status(path.id)).pipe(
              Effect.map((s) => ({
                vm: vmView(s.record),
                spec: s.record.spec,
                qmp_status: s.qmp_status,
                attached: s.attached,
              })),
            ),
          )
          .handle("start", ({ path }) => vmCall((m) => m.start(path.id)).pipe(Effect.map(vmView)))
          .handle("stop", ({ path, urlParams }) =>
            vmCall((m) =>
              m.stop(path.id, urlParams.timeout === undefined ? {} : { timeout: Duration.seconds(urlParams.timeout) }),
            ).pipe(Effect.map((r) => ({ vm: vmView(r.record), method: r.method }))),
          )
          .handle("delete", ({ path }) => vmCall((m) => m.remove(path.id)))
          .handle("migrate", ({ path, payload }) => Effect.flatMap(needTasks, (t) => t.migrate(path.id, payload))),
      )

      const OrchestrationLive = HttpApiBuilder.group(Api.api, "orchestration", (h) =>
        h
          .handle("tasks", ({ urlParams }) =>
            Effect.flatMap(needTasks, (t) =>
              blocking("Task", urlParams, (index) => Effect.map(t.tasks, (tasks) => ({ tasks, index }))),
            ),
          )
          .handle("task", ({ path }) => Effect.flatMap(needTasks, (t) => t.task(path.id)))
          .handle("migrations", ({ urlParams }) =>
            Effect.flatMap(needTasks, (t) =>
              blocking("Migration", urlParams, (index) =>
                Effect.map(t.migrations, (migrations) => ({ migrations, index })),
              ),
            ),
          )
          .handle("drain", ({ path, payload }) => Effect.flatMap(needTasks, (t) => t.drain(path.id, payload))),
      )

      const ObserveLive = HttpApiBuilder.group(Api.api, "observe", (h) =>
        h
          .handle("metrics", () =>
            Effect.map(MetricsEndpoint.exposition, (body) =>
              HttpServerResponse.text(body, { contentType: "text/plain; version=0.0.4; charset=utf-8" }),
            ),
          )
          .handle("events", ({ urlParams }) =>
            Effect.map(eventLines(urlParams), ({ after, lines }) =>
              HttpServerResponse.stream(
                lines.pipe(
                  Stream.map((l) => `${l}\n`),
                  Stream.encodeText,
                ),
                {
                  contentType: "application/x-ndjson",
                  headers: { "cache-control": "no-store", "x-novacron-index": String(after) },
                },
              ),
            ),
          ),
      )

      const AuthenticationLive = Layer.succeed(
        Api.Authentication,
        Effect.gen(function* () {
          const request = yield* HttpServerRequest.HttpServerRequest
          const incoming = NodeHttpServerRequest.toIncomingMessage(request)
          // API-wide middleware runs before routing: the route is found here from the same table.
          const pathname = new URL(request.url, "http://x").pathname
          if (publicPaths.has(pathname)) return publicPrincipal
          const principal = yield* authenticate(security, incoming).pipe(
            // Failed attempts count against the caller's address, so guessing tokens is slow too.
            Effect.tapError(() => {
              const wait = limiter.take(`address:${incoming.socket.remoteAddress}`, Date.now())
              return wait > 0
                ? Effect.fail(new TooManyRequests({ principal: "unauthenticated", retry_after_ms: wait }))
                : Effect.void
            }),
          )
          principals.set(incoming, principal)
          const wait = limiter.take(principal.name, Date.now())
          if (wait > 0) return yield* new TooManyRequests({ principal: principal.name, retry_after_ms: wait })
          // A path that is no route passes on to the router's 404.
          const needs = permissionOf(request.method, pathname) ?? extraPermissions.get(pathname)
          if (needs !== undefined && needs !== "public") {
            yield* security
              .authorize(principal, needs)
              .pipe(
                Effect.mapError(
                  (e) => new Forbidden({ principal: e.principal, role: e.role, permission: e.permission }),
                ),
              )
          }
          return principal
        }),
      )

      const ApiLive = HttpApiBuilder.api(Api.api).pipe(
        Layer.provide([AgentLive, StatusLive, VmsLive, OrchestrationLive, ObserveLive, AuthenticationLive]),
      )

      // Built on the first request: deriving the document is not boot work.
      const spec = yield* Effect.cached(Effect.sync(openApi))
      const DocsLive = HttpApiBuilder.Router.use((router) =>
        Effect.gen(function* () {
          yield* router.get(
            "/v1/openapi.json",
            Effect.map(spec, (doc) => HttpServerResponse.unsafeJson(doc)),
          )
          yield* router.get("/v1/docs", Effect.succeed(HttpServerResponse.html(DOCS_HTML)))
          // The event stream over WebSocket: the same lines, one text message each (authorized by
          // the middleware like every route: cluster:read).
          yield* router.get(
            "/v1/event/ws",
            Effect.gen(function* () {
              const request = yield* HttpServerRequest.HttpServerRequest
              const query = Object.fromEntries(
                [...new URL(request.url, "http://x").searchParams.keys()].map((k) => {
                  const all = new URL(request.url, "http://x").searchParams.getAll(k)
                  return [k, all.length > 1 ? all : all[0]]
                }),
              )
              const params = yield* Schema.decodeUnknown(Api.EventParams)(query).pipe(Effect.either)
              if (params._tag === "Left") {
                return HttpServerResponse.unsafeJson(
                  {
                    _tag: "HttpApiDecodeError",
                    issues: ParseResult.ArrayFormatter.formatErrorSync(params.left).map((i) => ({
                      _tag: i._tag,
                      path: i.path,
                      message: i.message,
                    })),
                    message: "invalid event stream parameters",
                  },
                  { status: 400 },
                )
              }
              const { lines } = yield* eventLines(params.right)
              const socket = yield* Effect.orDie(request.upgrade)
              const write = yield* socket.writer
              yield* Effect.raceFirst(
                Stream.runForEach(lines, (line) => write(line)),
                socket.runRaw(() => {}),
              ).pipe(Effect.ignore)
              return HttpServerResponse.empty()
            }),
          )
          yield* router.get(
            "/v1/docs/scalar.js",
            Effect.map(Effect.orDie(bundle), (js) =>
              HttpServerResponse.text(js, {
                contentType: "text/javascript; charset=utf-8",
                headers: { "cache-control": "public, max-age=86400" },
              }),
            ),
          )
        }),
      )

      const tlsOptions: https.ServerOptions = {
        cert: security.tls.cert,
        key: security.tls.key,
        ca: security.tls.ca,
        // mtls: no certificate, no handshake. token: a certificate is asked for and used when valid.
        requestCert: security.authMethod !== "none",
        rejectUnauthorized: security.authMethod === "mtls",
        minVersion: "TLSv1.2",
        // A client must send its headers within 10 s and its whole request within 30 s.
        headersTimeout: 10_000,
        requestTimeout: 30_000,
        keepAliveTimeout: 5_000,
      }
      const ServerLive = NodeHttpServer.layer(
        () => {
          server = https.createServer(tlsOptions)
          return server as never
        },
        { host: settings.listen_address, port: settings.port },
      ).pipe(
        Layer.mapError(
          (e) =>
            new ApiStartError({
              address: settings.listen_address,
              port: settings.port,
              reason:
                (e.cause as NodeJS.ErrnoException)?.code === "EADDRINUSE"
                  ? "port already in use"
                  : String((e.cause as Error)?.message ?? e.cause),
            }),
        ),
      )

      // Runs once per request, on the answer about to be sent (after the API's own error handling).
      const finish: HttpApp.PreResponseHandler = (request, answered) =>
        Effect.gen(function* () {
          const response =
            answered.body._tag !== "Empty"
              ? answered
              : answered.status === 400 || answered.status === 413
                ? yield* explainUnreadable(request, settings.max_body_bytes)
                : answered.status === 404
                  ? HttpServerResponse.unsafeJson(
                      { _tag: "NotFound", kind: "route", id: `${request.method} ${request.url}` },
                      { status: 404 },
                    )
                  : answered
          if (request.method !== "GET" && request.method !== "HEAD" && request.method !== "OPTIONS") {
            const who = principals.get(NodeHttpServerRequest.toIncomingMessage(request))
            yield* Effect.logInfo(`${request.method} ${request.url} -> ${response.status}`).pipe(
              Effect.annotateLogs({
                name: "api.audit",
                principal: who?.name ?? "unauthenticated",
                role: who?.role ?? null,
                method: request.method,
                path: request.url,
                status: response.status,
                result: response.status < 400 ? "ok" : "refused",
              }),
            )
          }
          return response
        })

      const outer = (app: HttpApp.Default): HttpApp.Default =>
        Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
          guarded(app, request).pipe(
            Trace.requestSpan(
              request,
              () => principals.get(NodeHttpServerRequest.toIncomingMessage(request))?.role ?? "none",
            ),
          ),
        )

      const guarded = (app: HttpApp.Default, request: HttpServerRequest.HttpServerRequest): HttpApp.Default =>
        Effect.gen(function* () {
          const length = Number(request.headers["content-length"] ?? 0)
          // Refused before a byte of the body is read (node discards the rest, within requestTimeout).
          if (length > settings.max_body_bytes) {
            return HttpServerResponse.unsafeJson(
              { _tag: "PayloadTooLarge", limit_bytes: settings.max_body_bytes },
              { status: 413 },
            )
          }
          // A body without a length is refused: the platform would destroy the socket (no answer at
          // all) when a streamed body passed the limit; with a length the limit is checked up front.
          if (request.headers["transfer-encoding"] !== undefined && request.headers["content-length"] === undefined) {
            return HttpServerResponse.unsafeJson(
              { _tag: "LengthRequired", reason: "send the body with a Content-Length (chunked bodies are refused)" },
              { status: 411 },
            )
          }
          // Bodies are JSON: other types (multipart, forms) would reach decoders the API does not use.
          const type = request.headers["content-type"]
          if (type !== undefined && type !== "" && !/^application\/(.+\+)?json\s*(;|$)/i.test(type)) {
            return HttpServerResponse.unsafeJson(
              { _tag: "UnsupportedMediaType", content_type: type, expected: "application/json" },
              { status: 415 },
            )
          }
          yield* HttpApp.appendPreResponseHandler(finish)
          return yield* HttpIncomingMessage.withMaxBodySize(app, Option.some(settings.max_body_bytes))
        })

      const EndpointLive = Layer.scoped(
        ApiEndpoint,
        Effect.gen(function* () {
          const bound = yield* HttpServer.HttpServer
          const port = bound.address._tag === "TcpAddress" ? bound.address.port : settings.port
          const host = settings.listen_address
          url = `https://${host.includes(":") ? `[${host}]` : host}:${port}`
          // On close: streams and blocking queries end now, idle keep-alive sockets close, the rest
          // get shutdown_grace before their sockets are closed under them.
          yield* Effect.addFinalizer(() =>
            Effect.gen(function* () {
              yield* Deferred.succeed(stopping, undefined)
              const s = server
              if (s === undefined) return
              s.closeIdleConnections()
              const timer = setTimeout(() => s.closeAllConnections(), Duration.toMillis(settings.shutdown_grace))
              timer.unref()
              s.once("close", () => clearTimeout(timer))
            }),
          )
          yield* Effect.logInfo(`API on ${url}/v1 (auth ${security.authMethod})`).pipe(
            Effect.annotateLogs({ name: "api.listening", url }),
          )
          return { url, host, port, refresh: poll }
        }),
      )

      const ServeLive = HttpApiBuilder.serve(outer).pipe(
        // The API's own span (Trace.requestSpan) replaces the platform's, which records raw paths and headers.
        HttpMiddleware.withTracerDisabledWhen(() => true),
        Layer.provide(DocsLive),
        Layer.provide(ApiLive),
      )
      return Layer.mergeAll(ServeLive, EndpointLive, Layer.succeed(EventLog.EventLog, log)).pipe(
        Layer.provide(ServerLive),
      )
    }),
  )
