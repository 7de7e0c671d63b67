/**
 * The swarm coordinator: at most one node of the cluster acts as coordinator at a time. Nodes
 * campaign through the cluster state (`StateStore.campaign`: etcd's election in Raft mode, the node
 * database in local mode); the leadership's fencing token is the coordinator's *term*. Every
 * write the coordinator makes carries its term and is refused once a newer coordinator exists:
 *
 * - writes to the cluster state go with `{ fence: leadership }`: the store compares the election
 *   key's create revision in the same transaction (`Deposed` from dwcp-ass otherwise);
 * - writes to the task store run in a transaction that first compares the `orch_terms` row,
 *   raised by each new coordinator to its term ({@link CoordinatorDeposed} otherwise).
 *
 * A coordinator that stops (crash, SIGKILL, pause, partition) loses its lease after the TTL and
 * another candidate is elected.
 *
 * @since 0.1.0
 */
import { SqlClient } from "@effect/sql"
import { type StateError, StateStore } from "@novacron/dwcp-ass"
import { Context, type Duration, Effect, Layer, Option, Ref, Schedule, type Scope } from "effect"
import { CoordinatorDeposed, NotCoordinator, TaskStoreError } from "./OrchestrationError.js"

/**
 * The election the coordinators campaign in.
 *
 * @since 0.1.0
 * @category constants
 */
export const election = "orchestration/coordinator"

/**
 * @since 0.1.0
 * @category models
 */
export interface CoordinatorApi {
  readonly node: string
  /** This node's term while it is coordinator (its lease surely holds), none otherwise. */
  readonly term: Effect.Effect<Option.Option<number>>
  /** Waits until this node is coordinator; returns its leadership. */
  readonly elected: Effect.Effect<StateStore.Leadership>
  /** Writes a cluster-state key under this node's term. */
  readonly put: (key: string, value: string) => Effect.Effect<number, NotCoordinator | StateError.WriteError>
  /** Deletes a cluster-state key under this node's term (whether it existed). */
  readonly remove: (key: string) => Effect.Effect<boolean, NotCoordinator | StateError.WriteError>
  /** Runs task-store writes in one transaction that first checks this node's term is current. */
  readonly fenced: <A, E, R>(
    effect: Effect.Effect<A, E, R>,
  ) => Effect.Effect<A, E | NotCoordinator | CoordinatorDeposed | TaskStoreError, R>
}

/**
 * The coordinator service.
 *
 * @since 0.1.0
 * @category services
 */
export class Coordinator extends Context.Tag("@novacron/orchestration/Coordinator")<Coordinator, CoordinatorApi>() {}

const TERM_ROW = "coordinator"

/**
 * Raises the term row to `term` (never lowers it).
 *
 * @since 0.1.0
 * @category fencing
 */
export const raiseTerm = (term: number, holder: string): Effect.Effect<void, TaskStoreError, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const at = Date.now()
    yield* sql`INSERT INTO orch_terms (name, term, holder, at) VALUES (${TERM_ROW}, ${term}, ${holder}, ${at})
      ON CONFLICT (name) DO UPDATE SET term = excluded.term, holder = excluded.holder, at = excluded.at
      WHERE orch_terms.term < excluded.term`
  }).pipe(Effect.mapError((cause) => new TaskStoreError({ operation: "raise the coordinator term", cause })))

/**
 * Runs `effect` in a transaction of the task store that first checks the term row still holds
 * `term`; fails with {@link CoordinatorDeposed} (and writes nothing) when a newer term exists.
 *
 * @since 0.1.0
 * @category fencing
 */
export const withTerm = <A, E, R>(
  term: number,
  effect: Effect.Effect<A, E, R>,
): Effect.Effect<A, E | CoordinatorDeposed | TaskStoreError, R | SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const check = Effect.gen(function* () {
      // FOR UPDATE: a new coordinator raising the row waits for this transaction (PostgreSQL);
      // SQLite transactions are serialized anyway.
      const rows = yield* sql.onDialectOrElse({
        pg: () => sql<{ term: number | string }>`SELECT term FROM orch_terms WHERE name = ${TERM_ROW} FOR UPDATE`,
        orElse: () => sql<{ term: number | string }>`SELECT term FROM orch_terms WHERE name = ${TERM_ROW}`,
      })
      const current = rows[0] === undefined ? undefined : Number(rows[0].term)
      if (current !== term) return yield* new CoordinatorDeposed({ term, current })
    }).pipe(
      Effect.catchTag("SqlError", (cause) => new TaskStoreError({ operation: "check the coordinator term", cause })),
    )
    return yield* sql
      .withTransaction(Effect.zipRight(check, effect))
      .pipe(
        Effect.catchTag("SqlError" as never, (cause) => new TaskStoreError({ operation: "fenced write", cause })),
      ) as Effect.Effect<A, E | CoordinatorDeposed | TaskStoreError, R>
  })

/**
 * Options of {@link make}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** This node's id (the candidate's value). */
  readonly node: string
  /** Lease TTL of the candidacy. */
  readonly ttl: Duration.DurationInput
  /** Lease options (tests stall a coordinator's keepalives with `keepAlive`). */
  readonly keepAlive?: Effect.Effect<boolean> | undefined
}

/**
 * Campaigns for as long as the Scope lives: elected, it raises the term row and holds office
 * until its leadership ends, then campaigns again.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options,
): Effect.Effect<CoordinatorApi, never, StateStore.StateStore | SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function* () {
    const store = yield* StateStore.StateStore
    const sql = yield* SqlClient.SqlClient
    const current = yield* Ref.make(Option.none<StateStore.Leadership>())

    const office = Effect.scoped(
      Effect.gen(function* () {
        const lease = yield* store.lease(options.ttl, { keepAlive: options.keepAlive })
        const leadership = yield* store.campaign(election, options.node, { lease })
        yield* raiseTerm(leadership.token, options.node).pipe(Effect.provideService(SqlClient.SqlClient, sql))
        yield* Ref.set(current, Option.some(leadership))
        yield* Effect.logInfo(`coordinator: ${options.node} elected, term ${leadership.token}`)
        yield* leadership.deposed
        yield* Effect.logWarning(`coordinator: ${options.node} lost term ${leadership.token}`)
      }).pipe(Effect.ensuring(Ref.set(current, Option.none()))),
    )
    const loop = office.pipe(
      Effect.tapErrorCause((c) => Effect.logWarning("coordinator: campaign failed", c)),
      Effect.retry(Schedule.spaced("200 millis")),
      Effect.forever,
    )
    yield* Effect.forkScoped(loop)

    const leading = Effect.gen(function* () {
      const l = yield* Ref.get(current)
      if (Option.isNone(l)) return Option.none<StateStore.Leadership>()
      return (yield* l.value.isLeader) ? l : Option.none<StateStore.Leadership>()
    })

    const elected: Effect.Effect<StateStore.Leadership> = Effect.gen(function* () {
      for (;;) {
        const l = yield* leading
        if (Option.isSome(l)) return l.value
        yield* Effect.sleep("20 millis")
      }
    })

    return {
      node: options.node,
      term: Effect.map(
        leading,
        Option.map((l) => l.token),
      ),
      elected,
      put: (key, value) =>
        Effect.flatMap(
          leading,
          (l): Effect.Effect<number, NotCoordinator | StateError.WriteError> =>
            Option.isNone(l)
              ? Effect.fail(new NotCoordinator({ node: options.node }))
              : store.put(key, value, { fence: l.value }),
        ),
      remove: (key) =>
        Effect.flatMap(
          leading,
          (l): Effect.Effect<boolean, NotCoordinator | StateError.WriteError> =>
            Option.isNone(l)
              ? Effect.fail(new NotCoordinator({ node: options.node }))
              : store.delete(key, { fence: l.value }),
        ),
      fenced: <A, E, R>(effect: Effect.Effect<A, E, R>) =>
        Effect.flatMap(
          leading,
          (l): Effect.Effect<A, E | NotCoordinator | CoordinatorDeposed | TaskStoreError, R> =>
            Option.isNone(l)
              ? Effect.fail(new NotCoordinator({ node: options.node }))
              : (withTerm(l.value.token, effect).pipe(Effect.provideService(SqlClient.SqlClient, sql)) as Effect.Effect<
                  A,
                  E | CoordinatorDeposed | TaskStoreError,
                  R
                >),
        ),
    } satisfies CoordinatorApi
  })

/**
 * The coordinator as a service, campaigning for the layer's lifetime.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<Coordinator, never, StateStore.StateStore | SqlClient.SqlClient> =>
  Layer.scoped(Coordinator, make(options))
