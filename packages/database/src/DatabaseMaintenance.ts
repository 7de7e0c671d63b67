/**
 * Database maintenance as a background job: every `interval` (hourly by default) the node's
 * database runs its routine upkeep (`Database.maintenance`: SQLite `PRAGMA optimize` and a passive
 * WAL checkpoint, PostgreSQL `ANALYZE` of its tables, nothing on Redis). A failed run is logged
 * and tried again at the next turn by `@novacron/init`'s `BackgroundJobs`; it never stops the node.
 *
 * @since 0.2.0
 */
import { BackgroundJobs, Component } from "@novacron/init"
import { type Duration, Effect, Layer, Schedule } from "effect"
import { Database } from "./Database.js"

/**
 * The job: one maintenance run, logged at debug with what it did.
 *
 * @since 0.2.0
 * @category jobs
 */
export const job = (db: Database["Type"], interval: Duration.DurationInput): BackgroundJobs.Job => ({
  name: "database-maintenance",
  description: `routine upkeep of the ${db.backend} database`,
  schedule: Schedule.spaced(interval),
  runAtStart: false,
  run: Effect.tap(db.maintenance, (r) =>
    Effect.logDebug(`database maintenance: ${r.actions.join(", ") || "nothing to do"}`).pipe(
      Effect.annotateLogs({ name: "database.maintenance", backend: r.backend, ...r.details }),
    ),
  ),
})

/**
 * The `database-maintenance` component spec: starts {@link job} on `BackgroundJobs` (it depends
 * on `database` and `background-jobs`).
 *
 * @example
 * ```ts
 * import { DatabaseMaintenance } from "@novacron/database"
 *
 * const spec = DatabaseMaintenance.component("1 hour")
 * console.log(spec.name) // "database-maintenance"
 * ```
 *
 * @since 0.2.0
 * @category components
 */
export const component = (interval: Duration.DurationInput = "1 hour") =>
  Component.spec({
    name: "database-maintenance",
    description: "routine database upkeep on a background job",
    layer: Layer.scopedDiscard(
      Effect.gen(function* () {
        const db = yield* Database
        const jobs = yield* BackgroundJobs.BackgroundJobs
        yield* jobs.start(job(db, interval))
      }),
    ),
    expectedDuration: "1 millis",
  })
