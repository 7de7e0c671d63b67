/**
 * The gRPC surface of the API: the services of `proto/novacron/v1/*.proto` (agent, VMs, tasks and
 * the `Events` stream), served by Connect over HTTP/2 + TLS with the node's certificate on
 * `api.grpc_port`, so `@grpc/grpc-js` (and any gRPC client) can call it. Same authentication as
 * REST (client certificate of the node CA, or `authorization: Bearer` metadata), the same policy
 * table (each RPC names the REST route whose permission it takes), one `api.audit` line per
 * mutating call, errors as gRPC status codes.
 *
 * @since 0.1.0
 */

import type { IncomingMessage } from "node:http"
import * as http2 from "node:http2"
import type { TLSSocket } from "node:tls"
import { fromJson, type JsonValue, type MessageInitShape } from "@bufbuild/protobuf"
import { ValueSchema } from "@bufbuild/protobuf/wkt"
import {
  Code,
  ConnectError,
  type ConnectRouter,
  createContextKey,
  createContextValues,
  type HandlerContext,
} from "@connectrpc/connect"
import { connectNodeAdapter } from "@connectrpc/connect-node"
import { type Authorization, Security } from "@novacron/security"
import { Vm, type VmManager } from "@novacron/vm"
import {
  Cause,
  Context,
  Data,
  Deferred,
  Duration,
  Effect,
  Exit,
  Layer,
  Option,
  ParseResult,
  Runtime,
  Schema,
  Stream,
} from "effect"
import * as Api from "./Api.js"
import { Forbidden, orchestrationNotRunning, ServiceUnavailable, TooManyRequests } from "./ApiError.js"
import { routePermissions } from "./ApiServer.js"
import type { ApiSettings } from "./ApiSettings.js"
import * as EventLog from "./EventLog.js"
import { AgentService } from "./gen/novacron/v1/agent_pb.js"
import { EventService, type EventsResponseSchema } from "./gen/novacron/v1/event_pb.js"
import { TaskService } from "./gen/novacron/v1/task_pb.js"
import { VmService } from "./gen/novacron/v1/vm_pb.js"
import { authenticate } from "./internal/auth.js"
import * as RateLimit from "./internal/rateLimit.js"
import * as Sources from "./internal/sources.js"
import { vmError, vmView } from "./internal/vms.js"
import * as OrchestrationSource from "./OrchestrationSource.js"

/**
 * The gRPC server as it was bound: `url` is `https://host:port` (what a gRPC client dials with TLS).
 *
 * @since 0.1.0
 * @category services
 */
export class GrpcEndpoint extends Context.Tag("@novacron/api/GrpcEndpoint")<
  GrpcEndpoint,
  { readonly url: string; readonly host: string; readonly port: number }
>() {}

/**
 * The gRPC server could not start (its port could not be bound).
 *
 * @since 0.1.0
 * @category errors
 */
export class GrpcStartError extends Data.TaggedError("GrpcStartError")<{
  readonly address: string
  readonly port: number
  readonly reason: string
}> {
  override get message() {
    return `gRPC API on ${this.address}:${this.port}: ${this.reason}`
  }
}

/**
 * The services served, from the generated descriptors.
 *
 * @since 0.1.0
 * @category descriptors
 */
export const services = [AgentService, VmService, TaskService, EventService] as const

/**
 * Each RPC's REST twin (`METHOD path` of `Api.ts`): the RPC takes that route's permission, so the
 * policy stays one table (`@novacron/security`'s grants, read through the routes' annotations).
 *
 * @since 0.1.0
 * @category policy
 */
export const rpcRoutes: ReadonlyMap<string, string> = new Map([
  ["novacron.v1.AgentService/Self", "GET /v1/agent/self"],
  ["novacron.v1.AgentService/Members", "GET /v1/agent/members"],
  ["novacron.v1.AgentService/Health", "GET /v1/agent/health"],
  ["novacron.v1.AgentService/Leader", "GET /v1/status/leader"],
  ["novacron.v1.VmService/ListVms", "GET /v1/vms"],
  ["novacron.v1.VmService/GetVm", "GET /v1/vms/:id"],
  ["novacron.v1.VmService/CreateVm", "POST /v1/vms"],
  ["novacron.v1.VmService/StartVm", "POST /v1/vms/:id/start"],
  ["novacron.v1.VmService/StopVm", "POST /v1/vms/:id/stop"],
  ["novacron.v1.VmService/DeleteVm", "DELETE /v1/vms/:id"],
  ["novacron.v1.TaskService/ListTasks", "GET /v1/tasks"],
  ["novacron.v1.TaskService/GetTask", "GET /v1/tasks/:id"],
  ["novacron.v1.TaskService/ListMigrations", "GET /v1/migrations"],
  ["novacron.v1.TaskService/DrainNode", "POST /v1/nodes/:id/drain"],
  ["novacron.v1.VmService/MigrateVm", "POST /v1/vms/:id/migrate"],
  ["novacron.v1.EventService/Events", "GET /v1/event/stream"],
])

/**
 * The permission of every RPC (`package.Service/Method`); a module load fails when an RPC of the
 * descriptors has no REST twin or its route has no permission.
 *
 * @since 0.1.0
 * @category policy
 */
export const rpcPermissions: ReadonlyMap<string, Authorization.Permission> = (() => {
  const out = new Map<string, Authorization.Permission>()
  for (const service of services) {
    for (const method of service.methods) {
      const name = `${service.typeName}/${method.name}`
      const route = rpcRoutes.get(name)
      const needs = route === undefined ? undefined : routePermissions.get(route)
      if (needs === undefined || needs === "public") throw new Error(`RPC ${name} has no permission (route ${route})`)
      out.set(name, needs)
    }
  }
  return out
})()

// Mutating RPCs: one audit line each.
const mutating: ReadonlySet<string> = new Set(
  [...rpcRoutes].filter(([, route]) => !route.startsWith("GET ")).map(([rpc]) => rpc),
)

// What Connect hands each call: its caller, authenticated before Connect read a byte of the body.
const principalKey = createContextKey<Authorization.Principal | undefined>(undefined, { description: "principal" })

class InvalidArgument extends Data.TaggedError("InvalidArgument")<{
  readonly field: string
  readonly reason: string
}> {}

const invalid = (prefix: string, error: ParseResult.ParseError): InvalidArgument => {
  const first = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
  const field = [prefix, ...(first?.path ?? []).map(String)].filter((s) => s !== "").join(".")
  return new InvalidArgument({ field: field === "" ? "request" : field, reason: first?.message ?? error.message })
}

const decode =
  <A, I>(schema: Schema.Schema<A, I>, field: string) =>
  (input: unknown): Effect.Effect<A, InvalidArgument> =>
    Effect.mapError(Schema.decodeUnknown(schema)(input), (e) => invalid(field, e))

const TaskId = Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9._-]{1,128}$/))
const StopTimeout = Schema.Int.pipe(Schema.between(0, 3600))

// The API's typed errors as gRPC status codes.
const toConnectError = (error: unknown): ConnectError => {
  const e = error as { _tag?: string; message?: string } & Record<string, unknown>
  switch (e._tag) {
    case "InvalidArgument":
      return new ConnectError(`${e.field}: ${e.reason}`, Code.InvalidArgument)
    case "Unauthorized":
      return new ConnectError(String(e.reason), Code.Unauthenticated)
    case "Forbidden":
      return new ConnectError(
        `${e.principal} (role ${e.role}) lacks the permission ${e.permission}`,
        Code.PermissionDenied,
      )
    case "NotFound":
      return new ConnectError(`${e.kind} ${e.id} not found`, Code.NotFound)
    case "Conflict":
      return new ConnectError(String(e.reason), Code.FailedPrecondition)
    case "Unprocessable":
      return new ConnectError(String(e.reason), Code.FailedPrecondition)
    case "TooManyRequests":
      return new ConnectError(`rate limited: retry after ${e.retry_after_ms} ms`, Code.ResourceExhausted)
    case "ServiceUnavailable":
      return new ConnectError(`${e.service}: ${e.reason}`, Code.Unavailable)
    default:
      return new ConnectError("internal error", Code.Internal)
  }
}

// A grpc-message value escaped as the gRPC spec says (only '%' and bytes outside 0x20..0x7E).
const grpcMessage = (headers: unknown): unknown => {
  if (headers === null || typeof headers !== "object" || Array.isArray(headers)) return headers
  const value = (headers as Record<string, unknown>)["grpc-message"]
  if (typeof value !== "string") return headers
  let text = value
  try {
    text = decodeURIComponent(value)
  } catch {
    return headers
  }
  const escaped = Array.from(Buffer.from(text, "utf8"), (b) =>
    b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, "0")}`,
  ).join("")
  return { ...headers, "grpc-message": escaped }
}

const int64 = (n: number | null | undefined): bigint => BigInt(Math.trunc(n ?? 0))
const optional = <A, B>(value: A | null | undefined, f: (a: A) => B): B | undefined =>
  value === null || value === undefined ? undefined : f(value)

const vmMessage = (v: Api.VmView) => ({
  id: v.id,
  state: v.state,
  vcpus: v.vcpus,
  memoryMb: v.memory_mb,
  pid: optional(v.pid, (n) => n),
  accel: optional(v.accel, (s) => s),
  term: optional(v.term, int64),
  exitReason: optional(v.exit_reason, (s) => s),
  createdAtMs: int64(v.created_at),
  updatedAtMs: int64(v.updated_at),
})

const specMessage = (s: Vm.VmSpec) => ({
  id: s.id,
  vcpus: s.vcpus,
  memoryMb: s.memory_mb,
  disks: s.disks.map((d) => ({ base: d.base, sizeMb: d.size_mb })),
  nics: s.nics.map((n) => ({ kind: n.kind, hostfwd: [...n.hostfwd] })),
  boot: optional(s.boot, (b) => ({ kernel: b.kernel, initrd: b.initrd, append: b.append })),
})

const taskMessage = (t: Api.Task) => ({
  id: t.id,
  kind: t.kind,
  state: t.state,
  nodeId: optional(t.node_id, (s) => s),
  vmId: optional(t.vm_id, (s) => s),
  createdAtMs: int64(t.created_at),
  updatedAtMs: int64(t.updated_at),
  error: optional(t.error, (s) => s),
})

const migrationMessage = (m: Api.Migration) => ({
  id: m.id,
  vmId: m.vm_id,
  source: m.source,
  target: m.target,
  state: m.state,
  startedAtMs: int64(m.started_at),
  finishedAtMs: optional(m.finished_at, int64),
})

const taskDetailMessage = (t: Api.TaskDetail) => ({
  task: taskMessage(t),
  history: t.history.map((h) => ({
    step: h.step,
    attempt: h.attempt,
    startedAtMs: int64(h.started_at),
    finishedAtMs: optional(h.finished_at, int64),
    outcome: optional(h.outcome, (s) => s),
    error: optional(h.error, (s) => s),
    result: optional(h.result, (s) => s),
  })),
  progress: optional(t.progress, (p) => ({
    node: p.node,
    total: optional(p.total, (n) => n),
    moved: [...p.moved],
    left: [...p.left],
  })),
  placement: optional(t.placement, (p) => ({
    chosen: optional(p.chosen, (s) => s),
    policy: p.policy,
    hosts: p.hosts,
    feasible: p.feasible,
    ranking: p.ranking.map((r) => ({ host: r.host, total: r.total, scores: { ...r.scores } })),
    filters: p.filters.map((f) => ({ name: f.name, removed: f.removed })),
    excluded: p.excluded.map((x) => ({ host: x.host, reason: x.reason })),
  })),
})

const json = (value: unknown): JsonValue => JSON.parse(JSON.stringify(value ?? null)) as JsonValue

// A request's spec, in the encoded (JSON) form REST's body has, for the same schema to check.
const specInput = (spec: {
  id: string
  vcpus: number
  memoryMb: number
  disks: ReadonlyArray<{ base: string; sizeMb?: number | undefined }>
  nics: ReadonlyArray<{ kind: string; hostfwd: ReadonlyArray<string> }>
  boot?: { kernel: string; initrd?: string | undefined; append?: string | undefined } | undefined
}) => ({
  id: spec.id,
  vcpus: spec.vcpus,
  memory_mb: spec.memoryMb,
  disks: spec.disks.map((d) => (d.sizeMb === undefined ? { base: d.base } : { base: d.base, size_mb: d.sizeMb })),
  nics: spec.nics.map((n) => ({ kind: n.kind, hostfwd: n.hostfwd })),
  ...(spec.boot === undefined
    ? {}
    : {
        boot: {
          kernel: spec.boot.kernel,
          ...(spec.boot.initrd === undefined ? {} : { initrd: spec.boot.initrd }),
          ...(spec.boot.append === undefined ? {} : { append: spec.boot.append }),
        },
      }),
})

/**
 * The gRPC server as a Layer, beside the REST server (it reads the same `EventLog`): binds
 * `api.grpc_port` on `api.listen_address` in the Layer's scope; closing it ends `Events` streams at
 * once and gives unary calls `api.shutdown_grace` before the HTTP/2 sessions are destroyed.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  settings: ApiSettings,
  options: {
    readonly election?: string | undefined
    readonly apiUrl?: string | undefined
    /** Publishes what changed now (REST's `ApiEndpoint.refresh`), run after each VM mutation. */
    readonly refresh?: Effect.Effect<void> | undefined
  } = {},
): Layer.Layer<GrpcEndpoint, GrpcStartError, Security.Security | EventLog.EventLog> =>
  Layer.scoped(
    GrpcEndpoint,
    Effect.gen(function* () {
      const security = yield* Security.Security
      const log = yield* EventLog.EventLog
      const { vms, membership, store, agent, tasks } = Sources.fromContext(
        yield* Effect.context<never>(),
        security.nodeId,
      )
      const election = options.election ?? OrchestrationSource.election
      const runtime = yield* Effect.runtime<never>()
      const stopping = yield* Deferred.make<void>()
      const limiter = RateLimit.make(settings.rate_limit, settings.rate_burst)
      const host = settings.listen_address
      let url = ""

      const needVms = Option.match(vms, {
        onNone: () =>
          Effect.fail(new ServiceUnavailable({ service: "vm", reason: "the VM manager is not running on this node" })),
        onSome: Effect.succeed,
      })
      const needTasks = Option.match(tasks, {
        onNone: () => Effect.fail(orchestrationNotRunning()),
        onSome: Effect.succeed,
      })
      const vmCall = <A>(
        f: (m: VmManager.Manager) => Effect.Effect<A, { readonly _tag: string; readonly message: string }>,
      ) =>
        Effect.flatMap(needVms, (m) =>
          Effect.mapError(f(m), (e) => vmError(e)).pipe(Effect.ensuring(options.refresh ?? Effect.void)),
        )

      // Who calls, and may they: the same checks, in the same order, as REST's middleware.
      // Who calls: checked on the request's headers and TLS socket before Connect reads the body
      // (an unauthenticated peer gets its status without the server buffering its message).
      const authenticateCall = (socket: TLSSocket | undefined, headers: http2.IncomingHttpHeaders) =>
        authenticate(security, { socket: socket ?? {}, headers } as unknown as IncomingMessage).pipe(
          // Failed attempts count against the caller's address, so guessing tokens is slow too.
          Effect.tapError(() => {
            const wait = limiter.take(`address:${socket?.remoteAddress}`, Date.now())
            return wait > 0
              ? Effect.fail(new TooManyRequests({ principal: "unauthenticated", retry_after_ms: wait }))
              : Effect.void
          }),
        )

      // May they: the same checks, in the same order, as REST's middleware.
      const admit = (ctx: HandlerContext, authenticated: (principal: Authorization.Principal) => void = () => {}) =>
        Effect.gen(function* () {
          const principal = ctx.values.get(principalKey)
          if (principal === undefined) return yield* Effect.dieMessage("a call reached Connect unauthenticated")
          authenticated(principal)
          const wait = limiter.take(principal.name, Date.now())
          if (wait > 0) return yield* new TooManyRequests({ principal: principal.name, retry_after_ms: wait })
          const name = `${ctx.service.typeName}/${ctx.method.name}`
          const needs = rpcPermissions.get(name)
          if (needs === undefined) return yield* Effect.dieMessage(`RPC ${name} has no permission`)
          yield* security
            .authorize(principal, needs)
            .pipe(
              Effect.mapError((e) => new Forbidden({ principal: e.principal, role: e.role, permission: e.permission })),
            )
          return principal
        })

      // The audit line of a mutating call, refused ones too.
      const audit = (name: string, who: Authorization.Principal | undefined, error: ConnectError | undefined) => {
        const status = error === undefined ? "OK" : Code[error.code]
        return Effect.logInfo(`gRPC ${name} -> ${status}`).pipe(
          Effect.annotateLogs({
            name: "api.audit",
            principal: who?.name ?? "unauthenticated",
            role: who?.role ?? null,
            method: "gRPC",
            path: name,
            status,
            result: error === undefined ? "ok" : "refused",
          }),
        )
      }

      // One unary RPC: admitted, run, audited when it mutates, its failure as a gRPC status.
      const unary =
        <I, A>(body: (request: I, principal: Authorization.Principal) => Effect.Effect<A, unknown>) =>
        async (request: I, ctx: HandlerContext): Promise<A> => {
          const name = `${ctx.service.typeName}/${ctx.method.name}`
          let who: Authorization.Principal | undefined
          const exit = await Runtime.runPromiseExit(runtime)(
            Effect.flatMap(
              admit(ctx, (principal) => {
                who = principal
              }),
              (principal) => body(request, principal),
            ),
            { signal: ctx.signal },
          )
          const failure = Exit.isFailure(exit)
            ? Option.getOrElse(Cause.failureOption(exit.cause), () => Cause.squash(exit.cause))
            : undefined
          const error = failure === undefined ? undefined : toConnectError(failure)
          if (mutating.has(name)) await Runtime.runPromise(runtime)(audit(name, who, error))
          if (Exit.isSuccess(exit)) return exit.value
          if (error?.code === Code.Internal) {
            await Runtime.runPromise(runtime)(Effect.logError(`gRPC ${name} failed`, exit.cause))
          }
          throw error
        }

      const topicIndex = (topic: string) => Effect.map(log.topicIndex(topic), (i) => BigInt(Math.max(1, i)))
      const vmId = decode(Vm.VmId, "id")

      const routes = (router: ConnectRouter) => {
        router.service(AgentService, {
          self: unary((_: unknown, principal) =>
            Effect.gen(function* () {
              return {
                nodeId: Option.isSome(agent) ? agent.value.nodeId : security.nodeId,
                version: Option.isSome(agent) ? agent.value.version : "unknown",
                build: Option.isSome(agent) ? { ...agent.value.build } : {},
                lifecycle: Option.isSome(agent) ? yield* agent.value.lifecycle : "unknown",
                apiUrl: options.apiUrl ?? "",
                grpcUrl: url,
                authMethod: security.authMethod,
                principal: { name: principal.name, role: principal.role, method: principal.method },
              }
            }),
          ),
          members: unary(() =>
            Effect.gen(function* () {
              const peers = Option.isSome(membership) ? yield* membership.value.peers : []
              return {
                self: security.nodeId,
                members: peers.map((p) => ({
                  nodeId: p.node_id,
                  address: p.address,
                  side: p.side,
                  principal: p.principal,
                  role: p.role,
                  sinceMs: int64(p.since),
                })),
                index: yield* topicIndex("Member"),
              }
            }),
          ),
          health: unary(() =>
            Option.match(agent, {
              onNone: () =>
                Effect.succeed({ nodeId: security.nodeId, lifecycle: "unknown", status: "unknown", components: [] }),
              onSome: (a) =>
                Effect.map(a.status, (s) => ({
                  nodeId: String(s.node_id ?? a.nodeId),
                  lifecycle: String(s.lifecycle ?? "unknown"),
                  status: String(s.status ?? "unknown"),
                  uptimeMs: int64(Number(s.uptime_ms ?? 0)),
                  boot: s.boot === null || s.boot === undefined ? undefined : (json(s.boot) as never),
                  components: ((s.components ?? []) as ReadonlyArray<unknown>).map((c) => json(c) as never),
                })),
            }),
          ),
          leader: unary(() =>
            Option.match(store, {
              onNone: () =>
                Effect.fail(new ServiceUnavailable({ service: "state-sync", reason: "no state store on this node" })),
              onSome: (s) =>
                s.leader(election).pipe(
                  Effect.map((entry) => ({
                    mode: s.mode,
                    election,
                    leader: Option.match(entry, { onNone: () => undefined, onSome: (e) => e.value }),
                    revision: Option.match(entry, { onNone: () => undefined, onSome: (e) => int64(e.modRevision) }),
                  })),
                  Effect.mapError((e) => new ServiceUnavailable({ service: "state-sync", reason: e.message })),
                ),
            }),
          ),
        })

        router.service(VmService, {
          listVms: unary(() =>
            vmCall((m) => m.list).pipe(
              Effect.flatMap((list) =>
                Effect.map(topicIndex("VM"), (index) => ({ vms: list.map((r) => vmMessage(vmView(r))), index })),
              ),
            ),
          ),
          getVm: unary((request: { id: string }) =>
            Effect.flatMap(vmId(request.id), (id) =>
              vmCall((m) => m.status(id)).pipe(
                Effect.map((s) => ({
                  vm: vmMessage(vmView(s.record)),
                  spec: specMessage(s.record.spec),
                  qmpStatus: optional(s.qmp_status, (q) => q),
                  attached: s.attached,
                })),
              ),
            ),
          ),
          createVm: unary((request: { spec?: Parameters<typeof specInput>[0] | undefined }) =>
            Effect.gen(function* () {
              if (request.spec === undefined) {
                return yield* new InvalidArgument({ field: "spec", reason: "is missing" })
              }
              const spec = yield* decode(Vm.VmSpec, "spec")(specInput(request.spec))
              const record = yield* vmCall((m) => m.define(Schema.encodeSync(Vm.VmSpec)(spec)))
              return { vm: vmMessage(vmView(record)) }
            }),
          ),
          startVm: unary((request: { id: string }) =>
            Effect.flatMap(vmId(request.id), (id) =>
              vmCall((m) => m.start(id)).pipe(Effect.map((r) => ({ vm: vmMessage(vmView(r)) }))),
            ),
          ),
          stopVm: unary((request: { id: string; timeoutS?: number | undefined }) =>
            Effect.gen(function* () {
              const id = yield* vmId(request.id)
              const timeout =
                request.timeoutS === undefined ? undefined : yield* decode(StopTimeout, "timeout_s")(request.timeoutS)
              const r = yield* vmCall((m) =>
                m.stop(id, timeout === undefined ? {} : { timeout: Duration.seconds(timeout) }),
              )
              return { vm: vmMessage(vmView(r.record)), method: r.method }
            }),
          ),
          deleteVm: unary((request: { id: string }) =>
            Effect.flatMap(vmId(request.id), (id) =>
              Effect.as(
                vmCall((m) => m.remove(id)),
                {},
              ),
            ),
          ),
          migrateVm: unary((request: { id: string; targetNode?: string | undefined }) =>
            Effect.gen(function* () {
              const id = yield* vmId(request.id)
              const target =
                request.targetNode === undefined
                  ? undefined
                  : yield* decode(Api.NodeId, "target_node")(request.targetNode)
              const migration = yield* Effect.flatMap(needTasks, (t) =>
                t.migrate(id, target === undefined ? {} : { target_node: target }),
              )
              return { migration: migrationMessage(migration) }
            }).pipe(Effect.ensuring(options.refresh ?? Effect.void)),
          ),
        })

        router.service(TaskService, {
          listTasks: unary(() =>
            Effect.flatMap(needTasks, (t) =>
              Effect.zipWith(t.tasks, topicIndex("Task"), (list, index) => ({ tasks: list.map(taskMessage), index })),
            ),
          ),
          getTask: unary((request: { id: string }) =>
            Effect.flatMap(decode(TaskId, "id")(request.id), (id) =>
              Effect.flatMap(needTasks, (t) => Effect.map(t.task(id), taskDetailMessage)),
            ),
          ),
          listMigrations: unary(() =>
            Effect.flatMap(needTasks, (t) =>
              Effect.zipWith(t.migrations, topicIndex("Migration"), (list, index) => ({
                migrations: list.map(migrationMessage),
                index,
              })),
            ),
          ),
          drainNode: unary(
            (request: {
              nodeId: string
              deadlineS?: number | undefined
              maxParallel?: number | undefined
              force?: boolean | undefined
            }) =>
              Effect.gen(function* () {
                const node = yield* decode(Api.NodeId, "node_id")(request.nodeId)
                // REST's body schema checks the same fields, named as the .proto names them.
                const body = yield* decode(
                  Api.DrainRequest,
                  "",
                )({
                  ...(request.deadlineS === undefined ? {} : { deadline_s: request.deadlineS }),
                  ...(request.maxParallel === undefined ? {} : { max_parallel: request.maxParallel }),
                  ...(request.force === undefined ? {} : { force: request.force }),
                })
                const task = yield* Effect.flatMap(needTasks, (t) => t.drain(node, body))
                return { task: taskMessage(task) }
              }).pipe(Effect.ensuring(options.refresh ?? Effect.void)),
          ),
        })

        router.service(EventService, {
          events: (request, ctx) => {
            // Admitted and parsed before the first message; then the log's events as they come.
            const start = Effect.gen(function* () {
              yield* admit(ctx)
              // REST's query schema checks the same fields; each topic alone, so an error names it.
              const check = (field: string, input: Record<string, unknown>) =>
                Effect.mapError(Schema.decodeUnknown(Api.EventParams)(input), (e) => {
                  const bad = invalid("", e)
                  return new InvalidArgument({ field, reason: bad.reason })
                })
              for (const [i, topic] of request.topics.entries()) yield* check(`topics.${i}`, { topic })
              const params = yield* check("request", {
                topic: [...request.topics],
                ...(request.index === undefined ? {} : { index: String(request.index) }),
              })
              if (request.heartbeatS !== undefined) {
                yield* check("heartbeat_s", { heartbeat: String(request.heartbeatS) })
              }
              const filters = (params.topic === undefined ? [] : [params.topic].flat()).map(EventLog.parseFilter)
              const after = params.index ?? (yield* log.index)
              return { filters, after, heartbeat: Duration.seconds(request.heartbeatS ?? 10) }
            })
            const aborted = Effect.async<void>((resume) => {
              if (ctx.signal.aborted) return resume(Effect.void)
              const done = () => resume(Effect.void)
              ctx.signal.addEventListener("abort", done, { once: true })
              return Effect.sync(() => ctx.signal.removeEventListener("abort", done))
            })
            const stream: Stream.Stream<
              MessageInitShape<typeof EventsResponseSchema>,
              ConnectError
            > = Stream.unwrapScoped(
              Effect.gen(function* () {
                const { filters, after, heartbeat } = yield* Effect.mapError(start, toConnectError)
                const { truncated, events } = yield* log.follow(after, filters)
                const beat = (index: number) => ({
                  kind: { case: "heartbeat" as const, value: { index: BigInt(index) } },
                })
                const beats = Stream.mapEffect(Stream.tick(heartbeat), () => Effect.map(log.index, beat))
                const flow = Stream.concat(
                  truncated
                    ? Stream.make({ kind: { case: "truncated" as const, value: { after: BigInt(after) } } })
                    : Stream.empty,
                  Stream.map(events, (e) => ({
                    kind: {
                      case: "event" as const,
                      value: {
                        index: BigInt(e.index),
                        topic: e.topic,
                        type: e.type,
                        key: e.key,
                        timeMs: int64(e.time),
                        payload: fromJson(ValueSchema, json(e.payload)),
                      },
                    },
                  })),
                )
                // The first heartbeat (the tick's first, at once) says the subscription is live.
                return Stream.merge(flow, beats, { haltStrategy: "left" })
              }),
            ).pipe(Stream.interruptWhen(Deferred.await(stopping)), Stream.interruptWhen(aborted))
            return Stream.toAsyncIterableRuntime(stream, runtime)
          },
        })
      }

      const connect = connectNodeAdapter({
        routes,
        // gRPC only: what outside clients speak; Connect and gRPC-web stay off.
        grpc: true,
        grpcWeb: false,
        connect: false,
        readMaxBytes: settings.max_body_bytes,
        contextValues: (req) => createContextValues().set(principalKey, principals.get(req)),
      })

      // Connect percent-encodes grpc-message with encodeURIComponent; grpc-js decodes it with
      // decodeURI, which leaves ':' and ',' as %3A and %2C. The gRPC spec escapes only '%' and
      // bytes outside printable ASCII, which every client decodes: re-encode to that.
      const principals = new WeakMap<object, Authorization.Principal>()
      const handler = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
        const addTrailers = res.addTrailers.bind(res)
        res.addTrailers = (trailers) => addTrailers(grpcMessage(trailers) as never)
        const writeHead = res.writeHead.bind(res) as (status: number, headers?: unknown) => http2.Http2ServerResponse
        res.writeHead = ((status: number, headers?: unknown) => writeHead(status, grpcMessage(headers))) as never
        const socket = req.stream?.session?.socket as TLSSocket | undefined
        Runtime.runPromiseExit(runtime)(authenticateCall(socket, req.headers)).then(async (exit) => {
          if (Exit.isSuccess(exit)) {
            principals.set(req, exit.value)
            return connect(req, res)
          }
          // Refused as a gRPC trailers-only answer; the body is never read.
          const error = toConnectError(
            Option.getOrElse(Cause.failureOption(exit.cause), () => Cause.squash(exit.cause)),
          )
          const name = req.url.replace(/^\//, "")
          if (mutating.has(name)) await Runtime.runPromise(runtime)(audit(name, undefined, error))
          // Headers with END_STREAM: a trailers-only answer (the compat API's writeHead + end
          // would send the status in plain headers, which clients do not read as one).
          req.stream.respond(
            grpcMessage({
              ":status": 200,
              "content-type": "application/grpc",
              "grpc-status": String(error.code),
              "grpc-message": encodeURIComponent(error.rawMessage),
            }) as http2.OutgoingHttpHeaders,
            { endStream: true },
          )
        })
      }

      const server = http2.createSecureServer(
        {
          cert: security.tls.cert,
          key: security.tls.key,
          ca: security.tls.ca,
          // mtls: no certificate, no handshake. token: a certificate is asked for and used when valid.
          requestCert: security.authMethod !== "none",
          rejectUnauthorized: security.authMethod === "mtls",
          minVersion: "TLSv1.2",
          allowHTTP1: false,
          // A client that does not finish its TLS handshake within 10 s is dropped.
          handshakeTimeout: 10_000,
          // Bounds what one session may hold before and after authentication.
          maxSessionMemory: 16,
          settings: { maxConcurrentStreams: 256, maxHeaderListSize: 64 * 1024 },
        },
        handler,
      )
      const sessions = new Set<http2.ServerHttp2Session>()
      server.on("session", (session) => {
        sessions.add(session)
        session.once("close", () => sessions.delete(session))
      })

      const port = yield* Effect.async<number, GrpcStartError>((resume) => {
        const failed = (e: NodeJS.ErrnoException) =>
          resume(
            Effect.fail(
              new GrpcStartError({
                address: host,
                port: settings.grpc_port,
                reason: e.code === "EADDRINUSE" ? "port already in use" : e.message,
              }),
            ),
          )
        server.once("error", failed)
        server.listen(settings.grpc_port, host, () => {
          server.off("error", failed)
          const address = server.address()
          resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : settings.grpc_port))
        })
      })
      yield* Effect.addFinalizer(() =>
        Effect.gen(function* () {
          yield* Deferred.succeed(stopping, undefined)
          const closed = Effect.async<void>((resume) => {
            server.close(() => resume(Effect.void))
            for (const session of sessions) session.close()
          })
          // Finalizers are uninterruptible: the wait must be made interruptible for the timeout to
          // cut it (a session holding a stream the client never finished would hold it forever).
          yield* Effect.timeoutOption(Effect.interruptible(closed), Duration.toMillis(settings.shutdown_grace))
          for (const session of sessions) session.destroy()
        }),
      )
      url = `https://${host.includes(":") ? `[${host}]` : host}:${port}`
      yield* Effect.logInfo(`gRPC API on ${url} (auth ${security.authMethod})`).pipe(
        Effect.annotateLogs({ name: "api.grpc.listening", url }),
      )
      return { url, host, port }
    }),
  )
