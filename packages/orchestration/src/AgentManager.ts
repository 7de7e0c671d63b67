/**
 * The agent manager: the cluster's view of its agents, kept by the coordinator from what the
 * agents publish in the cluster state. An agent's `capacity/<node>` record (written under its
 * lease every `vm.capacity_interval`) says it lives; the manager's `agents/<node>` records say what
 * the cluster thinks of it:
 *
 * | state      | when                                                                      |
 * | ---------- | ------------------------------------------------------------------------- |
 * | `joined`   | its capacity record was seen for the first time                           |
 * | `healthy`  | its capacity record is younger than `suspect_after`                       |
 * | `suspect`  | older than `suspect_after`                                                |
 * | `failed`   | older than `failed_after`, or gone (its lease lapsed)                      |
 * | `left`     | it said it leaves ({@link AgentManagerApi.leave})                          |
 * | `draining` | a drain was asked ({@link AgentManagerApi.setDraining}) and it still lives |
 *
 * A `failed` or `left` agent is deregistered (its record deleted) once it has been so for
 * `deregister_after` (Consul's `deregister_critical_service_after`). Every write is the
 * coordinator's, fenced by its term.
 *
 * @since 0.1.0
 */
import { ClusterState, Keyspace, type StateError, StateStore } from "@novacron/dwcp-ass"
import { Clock, Context, Duration, Effect, Layer, Option, Schedule, Schema } from "effect"
import { type Coordinator, Coordinator as CoordinatorService } from "./Coordinator.js"
import type { NotCoordinator } from "./OrchestrationError.js"
import type { OrchestrationSettings } from "./OrchestrationSettings.js"

/**
 * @since 0.1.0
 * @category schemas
 */
export const AgentState = Schema.Literal("joined", "healthy", "suspect", "failed", "left", "draining")

/**
 * @since 0.1.0
 * @category models
 */
export type AgentState = typeof AgentState.Type

/**
 * @since 0.1.0
 * @category schemas
 */
export const AgentRecord = Schema.Struct({
  node: Schema.String,
  state: AgentState,
  /** When it entered this state (epoch ms). */
  since: Schema.Number,
  /** `updated_at` of the last capacity record seen, if any. */
  last_seen: Schema.NullOr(Schema.Number),
  /** Asked to drain (kept while the agent is suspect or failed, so it drains again when back). */
  draining: Schema.Boolean,
})

/**
 * @since 0.1.0
 * @category models
 */
export type AgentRecord = typeof AgentRecord.Type

/**
 * `agents/<node>`: the manager's record of each agent.
 *
 * @since 0.1.0
 * @category keyspaces
 */
export const agents = Keyspace.make("agents/", AgentRecord)

/**
 * What the manager does with one agent.
 *
 * @since 0.1.0
 * @category models
 */
export type Decision =
  | { readonly _tag: "Keep" }
  | { readonly _tag: "Write"; readonly record: AgentRecord }
  | { readonly _tag: "Deregister" }

const keep: Decision = { _tag: "Keep" }

/**
 * The next record of one agent from its last record and its capacity record (pure).
 *
 * @since 0.1.0
 * @category classification
 */
export const classify = (
  previous: Option.Option<AgentRecord>,
  capacity: Option.Option<ClusterState.NodeCapacity>,
  now: number,
  settings: Pick<OrchestrationSettings, "suspect_after" | "failed_after" | "deregister_after">,
  node: string,
): Decision => {
  const prev = Option.getOrUndefined(previous)
  const to = (state: AgentState, lastSeen: number | null, draining: boolean): Decision =>
    prev !== undefined && prev.state === state && prev.last_seen === lastSeen && prev.draining === draining
      ? keep
      : {
          _tag: "Write",
          record: {
            node,
            state,
            since: prev !== undefined && prev.state === state ? prev.since : now,
            last_seen: lastSeen,
            draining,
          },
        }
  const expired = (p: AgentRecord) => now - p.since >= Duration.toMillis(settings.deregister_after)
  if (prev !== undefined && prev.state === "left") return expired(prev) ? { _tag: "Deregister" } : keep
  if (Option.isNone(capacity)) {
    if (prev === undefined) return keep
    if (prev.state === "failed") return expired(prev) ? { _tag: "Deregister" } : keep
    return to("failed", prev.last_seen, prev.draining)
  }
  const seen = capacity.value.updated_at
  const age = now - seen
  const draining = prev?.draining ?? false
  if (age > Duration.toMillis(settings.failed_after)) {
    if (prev?.state === "failed" && expired(prev)) return { _tag: "Deregister" }
    return to("failed", seen, draining)
  }
  if (age > Duration.toMillis(settings.suspect_after)) return to("suspect", seen, draining)
  if (draining) return to("draining", seen, true)
  return to(prev === undefined ? "joined" : "healthy", seen, false)
}

/**
 * @since 0.1.0
 * @category models
 */
export interface AgentManagerApi {
  /** Reads capacity and agent records and writes the changes (as coordinator); returns them. */
  readonly reconcile: Effect.Effect<
    ReadonlyArray<{ readonly node: string; readonly decision: Decision }>,
    StateError.StateError | StateError.DecodeError | StateError.WriteError | NotCoordinator
  >
  /** The agents as last recorded. */
  readonly list: Effect.Effect<ReadonlyArray<AgentRecord>, StateError.StateError | StateError.DecodeError>
  /** Marks an agent `left` (deregistered after `deregister_after`). */
  readonly leave: (
    node: string,
  ) => Effect.Effect<void, StateError.StateError | StateError.DecodeError | StateError.WriteError | NotCoordinator>
  /** Sets or clears an agent's drain request. */
  readonly setDraining: (
    node: string,
    draining: boolean,
  ) => Effect.Effect<void, StateError.StateError | StateError.DecodeError | StateError.WriteError | NotCoordinator>
}

/**
 * The manager for a coordinator on a state store.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  coordinator: Coordinator["Type"],
  store: StateStore.StateStoreApi,
  settings: Pick<OrchestrationSettings, "suspect_after" | "failed_after" | "deregister_after">,
): AgentManagerApi => {
  const provide = <A, E>(e: Effect.Effect<A, E, StateStore.StateStore>) =>
    Effect.provideService(e, StateStore.StateStore, store)
  const write = (record: AgentRecord) =>
    coordinator.put(agents.key(record.node), JSON.stringify(Schema.encodeSync(AgentRecord)(record)))
  const list = provide(agents.list).pipe(Effect.map((l) => l.items.map((i) => i.value)))
  const reconcile = Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    const caps = yield* provide(ClusterState.capacity.list)
    const known = yield* provide(agents.list)
    const capacity = new Map(caps.items.map((i) => [i.id, i.value]))
    const records = new Map(known.items.map((i) => [i.id, i.value]))
    const nodes = [...new Set([...capacity.keys(), ...records.keys()])].sort()
    const out: Array<{ readonly node: string; readonly decision: Decision }> = []
    for (const node of nodes) {
      const decision = classify(
        Option.fromNullable(records.get(node)),
        Option.fromNullable(capacity.get(node)),
        now,
        settings,
        node,
      )
      if (decision._tag === "Write") yield* write(decision.record)
      if (decision._tag === "Deregister") yield* coordinator.remove(agents.key(node))
      if (decision._tag !== "Keep") out.push({ node, decision })
    }
    return out
  })
  const update = (node: string, f: (r: AgentRecord, now: number) => AgentRecord) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const item = yield* provide(agents.get(node))
      const base: AgentRecord = Option.match(item, {
        onNone: () => ({ node, state: "joined", since: now, last_seen: null, draining: false }),
        onSome: (i) => i.value,
      })
      yield* write(f(base, now))
    })
  return {
    reconcile,
    list,
    leave: (node) => update(node, (r, now) => ({ ...r, state: "left", since: now })),
    setDraining: (node, draining) =>
      update(node, (r, now) => ({
        ...r,
        draining,
        ...(draining && (r.state === "healthy" || r.state === "joined") ? { state: "draining", since: now } : {}),
        ...(!draining && r.state === "draining" ? { state: "healthy", since: now } : {}),
      })),
  }
}

/**
 * The agent manager service.
 *
 * @since 0.1.0
 * @category services
 */
export class AgentManager extends Context.Tag("@novacron/orchestration/AgentManager")<
  AgentManager,
  AgentManagerApi
>() {}

/**
 * The service, reconciling in the background while this node is coordinator (every third of
 * `suspect_after`, at least every 10 s); on other nodes it only reads.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  settings: Pick<OrchestrationSettings, "suspect_after" | "failed_after" | "deregister_after">,
): Layer.Layer<AgentManager, never, CoordinatorService | StateStore.StateStore> =>
  Layer.scoped(
    AgentManager,
    Effect.gen(function* () {
      const coordinator = yield* CoordinatorService
      const store = yield* StateStore.StateStore
      const manager = make(coordinator, store, settings)
      const every = Duration.min(Duration.times(settings.suspect_after, 1 / 3), Duration.seconds(10))
      const once = Effect.flatMap(coordinator.term, (term) =>
        Option.isNone(term)
          ? Effect.void
          : manager.reconcile.pipe(
              Effect.catchAll((e) =>
                e._tag === "NotCoordinator" ? Effect.void : Effect.logWarning(`agent manager: ${e.message}`),
              ),
            ),
      )
      yield* Effect.forkScoped(Effect.repeat(once, Schedule.spaced(every)))
      return manager
    }),
  )
