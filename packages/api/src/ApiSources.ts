/**
 * What the API reads that is not a package's own service: the node's identity and health (the host
 * keeps its boot state), and orchestration (tasks, drains, migrations), which the host connects
 * once it runs. Both are `Context.Tag`s the host provides in the boot's context.
 *
 * @since 0.1.0
 */
import { Context, type Effect } from "effect"
import type { DrainRequest, MigrateRequest, Migration, Task, TaskDetail } from "./Api.js"
import type { Conflict, NotFound, ServiceUnavailable, Unprocessable } from "./ApiError.js"

/**
 * The node as the host sees it: identity, build, lifecycle and the `/status` document of the
 * health endpoints (boot report, each component's status and health).
 *
 * @since 0.1.0
 * @category services
 */
export class AgentInfo extends Context.Tag("@novacron/api/AgentInfo")<
  AgentInfo,
  {
    readonly nodeId: string
    readonly version: string
    readonly build: Readonly<Record<string, string>>
    readonly lifecycle: Effect.Effect<string>
    readonly status: Effect.Effect<Readonly<Record<string, unknown>>>
  }
>() {}

/**
 * Orchestration as the API needs it. Until the host provides one, the routes backed by it answer
 * 503 `ServiceUnavailable` ("orchestration is not running on this node").
 *
 * @since 0.1.0
 * @category services
 */
export class TaskSource extends Context.Tag("@novacron/api/TaskSource")<
  TaskSource,
  {
    readonly tasks: Effect.Effect<ReadonlyArray<Task>, ServiceUnavailable>
    readonly task: (id: string) => Effect.Effect<TaskDetail, NotFound | ServiceUnavailable>
    readonly migrations: Effect.Effect<ReadonlyArray<Migration>, ServiceUnavailable>
    readonly drain: (
      nodeId: string,
      request: DrainRequest,
    ) => Effect.Effect<Task, NotFound | Conflict | Unprocessable | ServiceUnavailable>
    readonly migrate: (
      vmId: string,
      request: MigrateRequest,
    ) => Effect.Effect<Migration, NotFound | Conflict | Unprocessable | ServiceUnavailable>
  }
>() {}
