/**
 * The node's migrations as runs an operator can list and follow: each `start` runs a migration in
 * the background (in the service's scope, not the caller's: an API request or a CLI that goes away
 * does not stop it), keeps its last progress and its outcome, and publishes every change. A bounded
 * number of finished runs is kept, newest last.
 *
 * @since 0.1.0
 */
import {
  Clock,
  Context,
  Deferred,
  Effect,
  Fiber,
  Layer,
  Option,
  PubSub,
  type Queue,
  Ref,
  type Scope,
  Stream,
} from "effect"
import * as Migration from "./Migration.js"
import type { MigrationError } from "./MigrationError.js"

/**
 * One migration as this node (its source) sees it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Run {
  readonly id: string
  readonly vm: string
  readonly source: string
  readonly target: string
  readonly state: "running" | "completed" | "failed" | "cancelled"
  readonly phase: Migration.Phase
  readonly startedAt: number
  readonly finishedAt: number | null
  /** The last progress report. */
  readonly progress: Migration.Progress | null
  readonly result: Migration.Result | null
  /** Why it failed or was cancelled. */
  readonly error: string | null
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** Starts migrating `vm` to `to`; succeeds once the destination is ready and QEMU was asked to migrate. */
  readonly start: (vm: string, to: string, options?: Migration.MigrateOptions) => Effect.Effect<Run, MigrationError>
  readonly list: Effect.Effect<ReadonlyArray<Run>>
  readonly get: (id: string) => Effect.Effect<Option.Option<Run>>
  /** Asks a running migration to stop; `false` when there is none of that id running. */
  readonly cancel: (id: string) => Effect.Effect<boolean>
  /** Subscribes (until the scope closes) to every change of every run. */
  readonly changes: Effect.Effect<Queue.Dequeue<Run>, never, Scope.Scope>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Migrations extends Context.Tag("@novacron/migration/Migrations")<Migrations, Service>() {}

/**
 * The service over a node's {@link Migration.Service}, in the current scope (closing it
 * interrupts the runs, which roll back as their migration does).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  nodeId: string,
  migration: Migration.Service,
  options: { readonly keep?: number | undefined } = {},
): Effect.Effect<Service, never, Scope.Scope> =>
  Effect.gen(function* () {
    const keep = options.keep ?? 100
    const scope = yield* Effect.scope
    const runs = yield* Ref.make(new Map<string, Run>())
    const handles = new Map<string, Migration.Handle>()
    // Sliding: a slow subscriber loses old progress, never slows a migration.
    const hub = yield* Effect.acquireRelease(PubSub.sliding<Run>(1024), PubSub.shutdown)
    const update = (id: string, f: (r: Run) => Run) =>
      Effect.flatMap(
        Ref.modify(runs, (m) => {
          const r = m.get(id)
          if (r === undefined) return [undefined, m] as const
          const next = f(r)
          const out = new Map(m).set(id, next)
          // Finished runs beyond `keep` go, oldest first.
          const finished = [...out.values()].filter((x) => x.state !== "running")
          for (const old of finished.slice(0, Math.max(0, finished.length - keep))) out.delete(old.id)
          return [next, out] as const
        }),
        (next) => (next === undefined ? Effect.void : PubSub.publish(hub, next)),
      )

    const start: Service["start"] = (vm, to, options) =>
      Effect.gen(function* () {
        const started = yield* Deferred.make<Run, MigrationError>()
        const follow = Effect.scoped(
          Effect.gen(function* () {
            const handle = yield* migration.migrate(vm, to, options)
            const now = yield* Clock.currentTimeMillis
            const run: Run = {
              id: handle.id,
              vm,
              source: nodeId,
              target: to,
              state: "running",
              phase: "preparing",
              startedAt: now,
              finishedAt: null,
              progress: null,
              result: null,
              error: null,
            }
            handles.set(handle.id, handle)
            yield* Ref.update(runs, (m) => new Map(m).set(run.id, run))
            yield* PubSub.publish(hub, run)
            yield* Deferred.succeed(started, run)
            const progress = yield* Effect.fork(
              Stream.runForEach(handle.progress, (p) => update(run.id, (r) => ({ ...r, phase: p.phase, progress: p }))),
            )
            const outcome = yield* Effect.either(handle.result)
            // The stream ends with the migration: its last report (e.g. completed) is kept.
            yield* Fiber.join(progress).pipe(Effect.timeout("2 seconds"), Effect.ignore)
            yield* Fiber.interrupt(progress)
            const end = yield* Clock.currentTimeMillis
            handles.delete(run.id)
            yield* update(run.id, (r) =>
              outcome._tag === "Right"
                ? { ...r, state: "completed", phase: "completed", finishedAt: end, result: outcome.right }
                : {
                    ...r,
                    state: outcome.left._tag === "MigrationCancelled" ? "cancelled" : "failed",
                    finishedAt: end,
                    error: outcome.left.message,
                  },
            )
          }),
        ).pipe(Effect.catchAll((e) => Deferred.fail(started, e)))
        yield* Effect.forkIn(follow, scope)
        return yield* Deferred.await(started)
      })

    return {
      start,
      list: Effect.map(Ref.get(runs), (m) => [...m.values()].sort((a, b) => a.startedAt - b.startedAt)),
      get: (id) => Effect.map(Ref.get(runs), (m) => Option.fromNullable(m.get(id))),
      cancel: (id) =>
        Effect.suspend(() => {
          const h = handles.get(id)
          return h === undefined ? Effect.succeed(false) : Effect.as(h.cancel, true)
        }),
      changes: PubSub.subscribe(hub),
    } satisfies Service
  })

/**
 * The service over the node's `Migration`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (nodeId: string): Layer.Layer<Migrations, never, Migration.Migration> =>
  Layer.scoped(
    Migrations,
    Effect.flatMap(Migration.Migration, (m) => make(nodeId, m)),
  )
