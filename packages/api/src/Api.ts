/**
 * The API's definition: every route with its Schemas, errors and required permission. The server
 * (`ApiServer`) implements it, the OpenAPI document is derived from it, and the role check reads
 * each route's {@link RequiredPermission} from here: one place says what a route needs.
 *
 * @since 0.1.0
 */
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiMiddleware, HttpApiSchema, OpenApi } from "@effect/platform"
import type { Authorization } from "@novacron/security"
import { Vm } from "@novacron/vm"
import { Context, Schema } from "effect"
import {
  Conflict,
  Forbidden,
  NotFound,
  ServiceUnavailable,
  TooManyRequests,
  Unauthorized,
  Unprocessable,
} from "./ApiError.js"

/**
 * The permission (from `@novacron/security`'s one policy table) a route requires. Every endpoint
 * carries one; `public` marks the two that describe the API itself (its OpenAPI document and page).
 *
 * @since 0.1.0
 * @category annotations
 */
export class RequiredPermission extends Context.Tag("@novacron/api/RequiredPermission")<
  RequiredPermission,
  Authorization.Permission | "public"
>() {}

/**
 * The authenticated caller of the current request.
 *
 * @since 0.1.0
 * @category services
 */
export class CurrentPrincipal extends Context.Tag("@novacron/api/CurrentPrincipal")<
  CurrentPrincipal,
  Authorization.Principal
>() {}

/**
 * Authentication, rate limit and role check, on every route: the server implements it (the
 * route's permission is its {@link RequiredPermission}).
 *
 * @since 0.1.0
 * @category middleware
 */
export class Authentication extends HttpApiMiddleware.Tag<Authentication>()("@novacron/api/Authentication", {
  provides: CurrentPrincipal,
  failure: Schema.Union(Unauthorized, Forbidden, TooManyRequests),
}) {}

// ---- models --------------------------------------------------------------------------------------

/**
 * Blocking-query parameters of list endpoints (Consul's): `index` is the `X-Novacron-Index` of an
 * earlier answer; the call returns when the list changes past it or after `wait` (default 5 min,
 * at most 10 min, plus up to 1/16 jitter).
 *
 * @since 0.1.0
 * @category schemas
 */
export const BlockingParams = Schema.Struct({
  index: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.nonNegative())),
  wait: Schema.optional(
    Schema.String.pipe(
      Schema.pattern(/^\d+(ms|s|m)$/),
      Schema.annotations({ message: () => 'expected a wait such as "500ms", "30s" or "5m"' }),
    ),
  ),
})

/**
 * @since 0.1.0
 * @category schemas
 */
export const AgentSelf = Schema.Struct({
  node_id: Schema.String,
  version: Schema.String,
  build: Schema.Record({ key: Schema.String, value: Schema.String }),
  lifecycle: Schema.String,
  api: Schema.Struct({ url: Schema.String, auth_method: Schema.String }),
  principal: Schema.Struct({ name: Schema.String, role: Schema.String, method: Schema.String }),
}).annotations({ identifier: "AgentSelf" })

/**
 * @since 0.1.0
 * @category schemas
 */
export const Member = Schema.Struct({
  node_id: Schema.String,
  address: Schema.String,
  side: Schema.String,
  principal: Schema.String,
  role: Schema.String,
  since: Schema.Number,
}).annotations({ identifier: "Member" })

/**
 * @since 0.1.0
 * @category schemas
 */
export const Members = Schema.Struct({
  self: Schema.String,
  members: Schema.Array(Member),
  index: Schema.Number,
}).annotations({ identifier: "Members" })

/**
 * The node's boot and health, as `/status` of the health endpoints renders it.
 *
 * @since 0.1.0
 * @category schemas
 */
export const AgentHealth = Schema.Struct({
  node_id: Schema.String,
  lifecycle: Schema.String,
  status: Schema.String,
  uptime_ms: Schema.Number,
  boot: Schema.NullOr(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
  components: Schema.Array(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
}).annotations({ identifier: "AgentHealth" })

/**
 * @since 0.1.0
 * @category schemas
 */
export const Leader = Schema.Struct({
  mode: Schema.String,
  election: Schema.String,
  leader: Schema.NullOr(Schema.String),
  revision: Schema.NullOr(Schema.Number),
}).annotations({ identifier: "Leader" })

/**
 * A VM as the API shows it.
 *
 * @since 0.1.0
 * @category schemas
 */
export const VmView = Schema.Struct({
  id: Schema.String,
  state: Vm.VmState,
  vcpus: Schema.Number,
  memory_mb: Schema.Number,
  pid: Schema.NullOr(Schema.Number),
  accel: Schema.NullOr(Schema.String),
  term: Schema.NullOr(Schema.Number),
  exit_reason: Schema.NullOr(Schema.String),
  created_at: Schema.Number,
  updated_at: Schema.Number,
}).annotations({ identifier: "Vm" })

/**
 * @since 0.1.0
 * @category schemas
 */
export type VmView = typeof VmView.Type

/**
 * @since 0.1.0
 * @category schemas
 */
export const VmList = Schema.Struct({ vms: Schema.Array(VmView), index: Schema.Number }).annotations({
  identifier: "VmList",
})

/**
 * @since 0.1.0
 * @category schemas
 */
export const VmDetail = Schema.Struct({
  vm: VmView,
  spec: Vm.VmSpec,
  qmp_status: Schema.NullOr(Schema.String),
  attached: Schema.Boolean,
}).annotations({ identifier: "VmDetail" })

/**
 * @since 0.1.0
 * @category schemas
 */
export const StopParams = Schema.Struct({
  /** Seconds to wait for a guest power-down before QEMU is told to quit. */
  timeout: Schema.optional(
    Schema.NumberFromString.pipe(Schema.int(), Schema.between(0, 3600)).annotations({
      message: () => "expected whole seconds 0..3600",
    }),
  ),
})

/**
 * @since 0.1.0
 * @category schemas
 */
export const StopResult = Schema.Struct({ vm: VmView, method: Schema.String }).annotations({
  identifier: "StopResult",
})

/**
 * @since 0.1.0
 * @category schemas
 */
export const Task = Schema.Struct({
  id: Schema.String,
  kind: Schema.String,
  state: Schema.Literal("pending", "running", "succeeded", "failed", "cancelled"),
  node_id: Schema.NullOr(Schema.String),
  vm_id: Schema.NullOr(Schema.String),
  created_at: Schema.Number,
  updated_at: Schema.Number,
  error: Schema.NullOr(Schema.String),
}).annotations({ identifier: "Task" })

/**
 * @since 0.1.0
 * @category schemas
 */
export type Task = typeof Task.Type

/**
 * One attempt of one step of a task, as its history shows it.
 *
 * @since 0.1.0
 * @category schemas
 */
export const TaskStep = Schema.Struct({
  step: Schema.String,
  attempt: Schema.Int,
  started_at: Schema.Number,
  finished_at: Schema.NullOr(Schema.Number),
  /** `ok`, `replayed` (done before a crash, not acted again), `failed`, or null while running. */
  outcome: Schema.NullOr(Schema.String),
  error: Schema.NullOr(Schema.String),
  /** What the step recorded when it acted (a drain's move: target, method, placement decision). */
  result: Schema.NullOr(Schema.String),
}).annotations({ identifier: "TaskStep" })

/**
 * A drain's progress: the VMs found on the node, those moved away, those left.
 *
 * @since 0.1.0
 * @category schemas
 */
export const DrainProgress = Schema.Struct({
  node: Schema.String,
  total: Schema.NullOr(Schema.Int),
  moved: Schema.Array(Schema.String),
  left: Schema.Array(Schema.String),
}).annotations({ identifier: "DrainProgress" })

/**
 * Where placement put a VM and why (`VmCreate` tasks with placement).
 *
 * @since 0.1.0
 * @category schemas
 */
export const PlacementDecision = Schema.Struct({
  chosen: Schema.NullOr(Schema.String),
  policy: Schema.String,
  hosts: Schema.Int,
  feasible: Schema.Int,
  ranking: Schema.Array(
    Schema.Struct({
      host: Schema.String,
      total: Schema.Number,
      scores: Schema.Record({ key: Schema.String, value: Schema.Number }),
    }),
  ),
  filters: Schema.Array(Schema.Struct({ name: Schema.String, removed: Schema.Int })),
  excluded: Schema.Array(Schema.Struct({ host: Schema.String, reason: Schema.String })),
}).annotations({ identifier: "PlacementDecision" })

/**
 * A task with its history (`GET /v1/tasks/{id}`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const TaskDetail = Schema.Struct({
  ...Task.fields,
  history: Schema.Array(TaskStep),
  progress: Schema.NullOr(DrainProgress),
  placement: Schema.NullOr(PlacementDecision),
}).annotations({ identifier: "TaskDetail" })

/**
 * @since 0.1.0
 * @category schemas
 */
export type TaskDetail = typeof TaskDetail.Type

/**
 * @since 0.1.0
 * @category schemas
 */
export const TaskList = Schema.Struct({ tasks: Schema.Array(Task), index: Schema.Number }).annotations({
  identifier: "TaskList",
})

/**
 * @since 0.1.0
 * @category schemas
 */
export const Migration = Schema.Struct({
  id: Schema.String,
  vm_id: Schema.String,
  source: Schema.String,
  target: Schema.String,
  state: Schema.String,
  started_at: Schema.Number,
  finished_at: Schema.NullOr(Schema.Number),
}).annotations({ identifier: "Migration" })

/**
 * @since 0.1.0
 * @category schemas
 */
export type Migration = typeof Migration.Type

/**
 * @since 0.1.0
 * @category schemas
 */
export const MigrationList = Schema.Struct({ migrations: Schema.Array(Migration), index: Schema.Number }).annotations({
  identifier: "MigrationList",
})

/**
 * @since 0.1.0
 * @category schemas
 */
export const NodeId = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/),
  Schema.annotations({ message: () => "expected a node id: letters, digits, '.', '_' and '-', 1..128 characters" }),
)

/**
 * @since 0.1.0
 * @category schemas
 */
export const DrainRequest = Schema.Struct({
  /** Give up on moving VMs off after this many seconds (default: orchestration's `task_timeout`). */
  deadline_s: Schema.optional(Schema.Int.pipe(Schema.between(1, 86_400))),
  /** VMs moved at once (default: `orchestration.drain_max_parallel`). */
  max_parallel: Schema.optional(Schema.Int.pipe(Schema.between(1, 1024))),
  /**
   * Stop VMs that cannot be moved by the deadline instead of failing the drain: not built, `true`
   * is refused (422) rather than ignored.
   */
  force: Schema.optional(Schema.Boolean),
}).annotations({ identifier: "DrainRequest" })

/**
 * @since 0.1.0
 * @category schemas
 */
export type DrainRequest = typeof DrainRequest.Type

/**
 * @since 0.1.0
 * @category schemas
 */
export const MigrateRequest = Schema.Struct({
  /** Target node; omitted: placement picks one. */
  target_node: Schema.optional(NodeId),
}).annotations({ identifier: "MigrateRequest" })

/**
 * @since 0.1.0
 * @category schemas
 */
export type MigrateRequest = typeof MigrateRequest.Type

/**
 * @since 0.1.0
 * @category schemas
 */
export const MetricsParams = Schema.Struct({
  format: Schema.optional(Schema.Literal("prometheus")),
})

/**
 * Event stream parameters: `topic` (repeatable) is `Topic` or `Topic:name` (`VM:web-1`);
 * `index` replays the retained events after it; `heartbeat` in seconds (default 10).
 *
 * @since 0.1.0
 * @category schemas
 */
export const EventParams = Schema.Struct({
  topic: Schema.optional(
    Schema.Union(
      Schema.String.pipe(Schema.pattern(/^[A-Za-z]+(:[^\s]{1,128})?$/)),
      Schema.Array(Schema.String.pipe(Schema.pattern(/^[A-Za-z]+(:[^\s]{1,128})?$/))),
    ).annotations({ message: () => 'expected topics such as "VM" or "VM:web-1"' }),
  ),
  index: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.nonNegative())),
  heartbeat: Schema.optional(Schema.NumberFromString.pipe(Schema.between(1, 300))),
})

/**
 * One event of the stream (one NDJSON line); heartbeats are `{"heartbeat": <index>}` lines.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Event = Schema.Struct({
  index: Schema.Number,
  topic: Schema.String,
  type: Schema.String,
  key: Schema.String,
  time: Schema.Number,
  payload: Schema.Unknown,
}).annotations({ identifier: "Event" })

/**
 * @since 0.1.0
 * @category schemas
 */
export type Event = typeof Event.Type

// ---- routes --------------------------------------------------------------------------------------

const needs = RequiredPermission
const VmPath = Schema.Struct({ id: Vm.VmId })
const text = (description: string) =>
  Schema.String.pipe(HttpApiSchema.withEncoding({ kind: "Text", contentType: "text/plain" })).annotations({
    description,
  })

/**
 * `/v1/agent/*`: this node.
 *
 * @since 0.1.0
 * @category groups
 */
export const AgentGroup = HttpApiGroup.make("agent")
  .add(HttpApiEndpoint.get("self", "/v1/agent/self").addSuccess(AgentSelf).annotate(needs, "cluster:read"))
  .add(
    HttpApiEndpoint.get("members", "/v1/agent/members")
      .setUrlParams(BlockingParams)
      .addSuccess(Members)
      .annotate(needs, "cluster:read"),
  )
  .add(HttpApiEndpoint.get("health", "/v1/agent/health").addSuccess(AgentHealth).annotate(needs, "cluster:read"))
  .annotate(OpenApi.Description, "This node: identity, members it is connected to, boot and health.")

/**
 * `/v1/status/*`: the cluster state store.
 *
 * @since 0.1.0
 * @category groups
 */
export const StatusGroup = HttpApiGroup.make("status")
  .add(
    HttpApiEndpoint.get("leader", "/v1/status/leader")
      .addSuccess(Leader)
      .addError(ServiceUnavailable)
      .annotate(needs, "cluster:read"),
  )
  .annotate(OpenApi.Description, "The cluster state store.")

/**
 * `/v1/vms`: VMs on this node.
 *
 * @since 0.1.0
 * @category groups
 */
export const VmsGroup = HttpApiGroup.make("vms")
  .add(
    HttpApiEndpoint.get("list", "/v1/vms").setUrlParams(BlockingParams).addSuccess(VmList).annotate(needs, "vm:read"),
  )
  .add(
    HttpApiEndpoint.post("create", "/v1/vms")
      .setPayload(Vm.VmSpec)
      .addSuccess(VmView, { status: 201 })
      .annotate(needs, "vm:write"),
  )
  .add(HttpApiEndpoint.get("show", "/v1/vms/:id").setPath(VmPath).addSuccess(VmDetail).annotate(needs, "vm:read"))
  .add(
    HttpApiEndpoint.post("start", "/v1/vms/:id/start").setPath(VmPath).addSuccess(VmView).annotate(needs, "vm:write"),
  )
  .add(
    HttpApiEndpoint.post("stop", "/v1/vms/:id/stop")
      .setPath(VmPath)
      .setUrlParams(StopParams)
      .addSuccess(StopResult)
      .annotate(needs, "vm:write"),
  )
  .add(
    HttpApiEndpoint.del("delete", "/v1/vms/:id")
      .setPath(VmPath)
      .addSuccess(HttpApiSchema.NoContent)
      .annotate(needs, "vm:write"),
  )
  .add(
    HttpApiEndpoint.post("migrate", "/v1/vms/:id/migrate")
      .setPath(VmPath)
      .setPayload(MigrateRequest)
      .addSuccess(Migration, { status: 202 })
      .annotate(needs, "vm:migrate"),
  )
  .addError(NotFound)
  .addError(Conflict)
  .addError(Unprocessable)
  .addError(ServiceUnavailable)
  .annotate(OpenApi.Description, "VMs on this node (QEMU through the VM manager).")

/**
 * Orchestration: tasks, migrations, drains. They answer 503 until the host provides a `TaskSource`.
 *
 * @since 0.1.0
 * @category groups
 */
export const OrchestrationGroup = HttpApiGroup.make("orchestration")
  .add(
    HttpApiEndpoint.get("tasks", "/v1/tasks")
      .setUrlParams(BlockingParams)
      .addSuccess(TaskList)
      .annotate(needs, "cluster:read"),
  )
  .add(
    HttpApiEndpoint.get("task", "/v1/tasks/:id")
      .setPath(Schema.Struct({ id: Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9._-]{1,128}$/)) }))
      .addSuccess(TaskDetail)
      .addError(NotFound)
      .annotate(needs, "cluster:read"),
  )
  .add(
    HttpApiEndpoint.get("migrations", "/v1/migrations")
      .setUrlParams(BlockingParams)
      .addSuccess(MigrationList)
      .annotate(needs, "vm:read"),
  )
  .add(
    HttpApiEndpoint.post("drain", "/v1/nodes/:id/drain")
      .setPath(Schema.Struct({ id: NodeId }))
      .setPayload(DrainRequest)
      .addSuccess(Task, { status: 202 })
      .addError(NotFound)
      .addError(Conflict)
      .addError(Unprocessable)
      .annotate(needs, "node:drain"),
  )
  .addError(ServiceUnavailable)
  .annotate(OpenApi.Description, "Tasks, migrations and drains (orchestration).")

/**
 * `/v1/metrics` and `/v1/event/stream`.
 *
 * @since 0.1.0
 * @category groups
 */
export const ObserveGroup = HttpApiGroup.make("observe")
  .add(
    HttpApiEndpoint.get("metrics", "/v1/metrics")
      .setUrlParams(MetricsParams)
      .addSuccess(text("every metric of the process, Prometheus text format 0.0.4"))
      .annotate(needs, "cluster:read"),
  )
  .add(
    HttpApiEndpoint.get("events", "/v1/event/stream")
      .setUrlParams(EventParams)
      .addSuccess(
        Schema.String.pipe(
          HttpApiSchema.withEncoding({ kind: "Text", contentType: "application/x-ndjson" }),
        ).annotations({ description: "one Event per line (NDJSON), heartbeat lines while idle" }),
      )
      .annotate(needs, "cluster:read"),
  )
  .annotate(OpenApi.Description, "Metrics and the event stream.")

/**
 * The whole API. Every route may also answer 401, 403 and 429 (authentication, role, rate).
 *
 * @since 0.1.0
 * @category api
 */
export const api = HttpApi.make("novacron")
  .add(AgentGroup)
  .add(StatusGroup)
  .add(VmsGroup)
  .add(OrchestrationGroup)
  .add(ObserveGroup)
  .middleware(Authentication)
  .annotate(OpenApi.Title, "NovaCron node API")
  .annotate(OpenApi.Version, "1")
  .annotate(
    OpenApi.Description,
    "Operators and tools drive a NovaCron node through this API. Authenticate with a client certificate of the node CA (role in OU=) or a token (Authorization: Bearer or X-Novacron-Token).",
  )

/**
 * The routes the server adds beside the HttpApi ones (they are not JSON endpoints).
 *
 * @since 0.1.0
 * @category api
 */
export const extraRoutes = [
  { method: "GET", path: "/v1/openapi.json" },
  { method: "GET", path: "/v1/docs" },
  { method: "GET", path: "/v1/docs/scalar.js" },
] as const
