/**
 * Orchestration as a boot component: the task service and the coordinator on the node's task
 * store (`<data_dir>/orchestration.db` with SQLite storage, the storage's PostgreSQL otherwise),
 * campaigning through the cluster state. The host's boot table places it (services phase,
 * CRITICAL: a node that cannot run the cluster's work must not report ready).
 *
 * @since 0.1.0
 */

import * as path from "node:path"
import { RunnerAddress, type ShardingConfig } from "@effect/cluster"
import type { SqlClient } from "@effect/sql"
import type { StorageSettings } from "@novacron/database/StorageSettings"
import type { StateStore } from "@novacron/dwcp-ass"
import { Component } from "@novacron/init"
import { VmManager } from "@novacron/vm"
import { Effect, Layer, Option } from "effect"
import * as AgentManager from "./AgentManager.js"
import * as Coordinator from "./Coordinator.js"
import { TaskStoreError } from "./OrchestrationError.js"
import type { OrchestrationSettings } from "./OrchestrationSettings.js"
import * as Tasks from "./Tasks.js"
import * as VmMover from "./VmMover.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** `system.data_dir`. */
  readonly data_dir: string
  /** `system.node_id`: this node's candidacy for coordinator. */
  readonly node_id: string
}

/**
 * Where the task store is for these storage settings: the storage's PostgreSQL, or
 * `<data_dir>/orchestration.db`. Redis cannot hold it (no transactions across keys of the kind
 * the workflow engine needs), so a node on Redis keeps its tasks in that SQLite file: they are
 * durable on the node, and the node still boots (a refusal here would halt every Redis node).
 *
 * @since 0.1.0
 * @category constructors
 */
export const storeFor = (storage: StorageSettings, options: Options): Either<Tasks.StoreOptions> =>
  storage.backend === "postgres"
    ? { ok: true, store: { _tag: "postgres", url: storage.postgres_url, maxConnections: storage.max_connections } }
    : { ok: true, store: { _tag: "sqlite", filename: path.join(options.data_dir, "orchestration.db") } }

/**
 * The cluster runner's identity on a shared store: on PostgreSQL each node's runner has its own
 * address (its node id), so nodes split the shards between them, and a node that dies loses its
 * shards to the others once its shard locks expire (`shardLockExpiration`, 35 s). With one
 * address for all, the first node took every shard lock and the others' submits waited forever
 * for a shard they could not take. SQLite is one node's file: the default address.
 *
 * @since 0.1.0
 * @category constructors
 */
export const runnerSharding = (
  store: Tasks.StoreOptions,
  node: string,
): Partial<ShardingConfig.ShardingConfig["Type"]> | undefined =>
  store._tag === "postgres" ? { runnerAddress: Option.some(RunnerAddress.make(node, 34431)) } : undefined

type Either<A> = { readonly ok: true; readonly store: A } | { readonly ok: false; readonly reason: string }

/**
 * Healthy when the task store answers; the details say whether this node is coordinator.
 *
 * @since 0.1.0
 * @category health
 */
export const healthCheck: Effect.Effect<Component.HealthResult, never, Tasks.Tasks | Coordinator.Coordinator> =
  Effect.gen(function* () {
    const tasks = yield* Tasks.Tasks
    const coordinator = yield* Coordinator.Coordinator
    const counts = yield* Effect.either(tasks.counts)
    const term = yield* coordinator.term
    const details = { coordinator: Option.isSome(term), term: Option.getOrNull(term) }
    return counts._tag === "Right"
      ? { status: "healthy", details: { ...details, ...counts.right } }
      : { status: "unhealthy", message: counts.left.message, details }
  })

/**
 * The component spec (name `orchestration`). It needs the cluster state (`state-sync`) for the
 * coordinator's election and the VM manager (`vm`) for VM tasks. Placement is not wired here: the
 * node runs no `dwcp-itp` component yet (and its CommonJS bundle cannot load DWCP packages, which
 * are ES modules only), so the node's tasks create VMs where they run; `Tasks.layer` takes a
 * placement service when given. Drains move VMs through the `VmMover` in the boot context when the
 * host provides one (live migration), else stop/start through this node's VM manager. The design
 * also lists DWCP as a dependency: nothing here uses it until VM migration runs through it, so the
 * boot table does not name it.
 *
 * @example
 * ```ts
 * import * as StorageSettings from "@novacron/database/StorageSettings"
 * import { OrchestrationComponent, OrchestrationSettings } from "@novacron/orchestration"
 *
 * const spec = OrchestrationComponent.component(OrchestrationSettings.defaults, StorageSettings.decode({}), {
 *   data_dir: "/var/lib/novacron",
 *   node_id: "node-1",
 * })
 * console.log(spec.name) // "orchestration"
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const component = (settings: OrchestrationSettings, storage: StorageSettings, options: Options) => {
  const where = storeFor(storage, options)
  const services: Layer.Layer<
    Tasks.Tasks | Coordinator.Coordinator | AgentManager.AgentManager,
    TaskStoreError,
    StateStore.StateStore | VmManager.VmManager
  > = where.ok
    ? Layer.unwrapEffect(
        Effect.gen(function* () {
          const vm = yield* VmManager.VmManager
          // A host that can move VMs between nodes (live migration, issue 27) provides a VmMover;
          // otherwise stop/start through this node's VM manager (a move to another node fails
          // saying why: VM steps on other nodes are not built).
          const mover = Option.getOrElse(yield* Effect.serviceOption(VmMover.VmMover), () =>
            VmMover.stopStart(VmMover.localAccess(options.node_id, vm)),
          )
          const tasks = Layer.unwrapEffect(
            Effect.gen(function* () {
              const coordinator = yield* Coordinator.Coordinator
              const agents = yield* AgentManager.AgentManager
              return Tasks.layerFromSql({
                settings,
                vm,
                cluster: { coordinator, agents },
                mover,
                sharding: runnerSharding(where.store, options.node_id),
              })
            }),
          )
          return tasks.pipe(
            Layer.provideMerge(AgentManager.layer(settings)),
            Layer.provideMerge(Coordinator.layer({ node: options.node_id, ttl: settings.coordinator_ttl })),
          )
        }),
      ).pipe(Layer.provide(Tasks.layerSql(where.store) as Layer.Layer<SqlClient.SqlClient, TaskStoreError>))
    : Layer.fail(new TaskStoreError({ operation: "open", cause: new Error(where.reason) }))
  return Component.spec({
    name: "orchestration",
    layer: services,
    healthCheck,
    timeout: "20 seconds",
    expectedDuration: "100 millis",
    description: where.ok
      ? `durable tasks and the coordinator on ${where.store._tag === "sqlite" ? "SQLite" : "PostgreSQL"}`
      : where.reason,
  })
}
