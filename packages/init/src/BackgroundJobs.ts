/**
 * Background jobs: work a node repeats for as long as it runs (refreshing its service
 * registration, database maintenance, ...), each a supervised fiber on its own schedule. A job
 * that fails is logged, counted and run again at its next turn; it never stops the node nor the
 * other jobs. A job lives in the scope of whoever started it (usually the component that owns the
 * work), so it stops with that component. `status` lists every job, for `/status`.
 *
 * @since 0.2.0
 */
import {
  Cause,
  Clock,
  Context,
  Data,
  Effect,
  Layer,
  Metric,
  MetricBoundaries,
  Ref,
  type Schedule,
  type Scope,
} from "effect"
import * as Component from "./Component.js"

/**
 * One background job.
 *
 * @since 0.2.0
 * @category models
 */
export interface Job<R = never> {
  /** Unique among the node's jobs; the `job` label of its metrics. */
  readonly name: string
  readonly description?: string | undefined
  /** When it runs again after each run, success or failure (e.g. `Schedule.spaced("30 seconds")`). */
  readonly schedule: Schedule.Schedule<unknown, unknown>
  readonly run: Effect.Effect<unknown, unknown, R>
  /** Run once right away (default), or wait for the schedule's first delay. */
  readonly runAtStart?: boolean | undefined
}

/**
 * What `/status` shows of a job.
 *
 * @since 0.2.0
 * @category models
 */
export interface JobStatus {
  readonly name: string
  readonly description: string | undefined
  readonly state: "waiting" | "running"
  readonly runs: number
  readonly failures: number
  /** Failures since the last success; 0 when the last run succeeded. */
  readonly consecutiveFailures: number
  /** Epoch milliseconds. */
  readonly lastRunAt: number | undefined
  readonly lastDurationMillis: number | undefined
  readonly lastError: string | undefined
}

/**
 * A job of that name runs already.
 *
 * @since 0.2.0
 * @category errors
 */
export class DuplicateJob extends Data.TaggedError("DuplicateJob")<{ readonly name: string }> {
  override get message(): string {
    return `a background job named "${this.name}" is running already`
  }
}

/**
 * @since 0.2.0
 * @category models
 */
export interface BackgroundJobsApi {
  /** Starts `job` until the current scope closes. */
  readonly start: <R>(job: Job<R>) => Effect.Effect<void, DuplicateJob, R | Scope.Scope>
  /** Every running job, by name. */
  readonly status: Effect.Effect<ReadonlyArray<JobStatus>>
}

/**
 * @since 0.2.0
 * @category services
 */
export class BackgroundJobs extends Context.Tag("@novacron/init/BackgroundJobs")<BackgroundJobs, BackgroundJobsApi>() {}

/**
 * Runs of each job, tagged `job` and `outcome` (`success`, `failure`).
 *
 * @since 0.2.0
 * @category metrics
 */
export const runsTotal = Metric.counter("novacron_background_job_runs_total", {
  description: "Background job runs, by job and outcome",
  incremental: true,
})

/**
 * Seconds each run took, tagged `job`.
 *
 * @since 0.2.0
 * @category metrics
 */
export const runSeconds = Metric.histogram(
  "novacron_background_job_duration_seconds",
  MetricBoundaries.exponential({ start: 0.001, factor: 4, count: 10 }),
  "Seconds a background job run took",
)

const errorText = (cause: Cause.Cause<unknown>): string => {
  const e = Cause.squash(cause)
  return e instanceof Error ? e.message : typeof e === "string" ? e : Cause.pretty(cause).split("\n")[0]!
}

/**
 * A supervisor with no jobs yet.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make: Effect.Effect<BackgroundJobsApi> = Effect.gen(function* () {
  const jobs = yield* Ref.make(new Map<string, Ref.Ref<JobStatus>>())
  const start = <R>(job: Job<R>): Effect.Effect<void, DuplicateJob, R | Scope.Scope> =>
    Effect.gen(function* () {
      const status = yield* Ref.make<JobStatus>({
        name: job.name,
        description: job.description,
        state: "waiting",
        runs: 0,
        failures: 0,
        consecutiveFailures: 0,
        lastRunAt: undefined,
        lastDurationMillis: undefined,
        lastError: undefined,
      })
      const added = yield* Ref.modify(jobs, (m) => {
        if (m.has(job.name)) return [false, m] as const
        return [true, new Map(m).set(job.name, status)] as const
      })
      if (!added) return yield* Effect.fail(new DuplicateJob({ name: job.name }))
      yield* Effect.addFinalizer(() =>
        Ref.update(jobs, (m) => {
          const next = new Map(m)
          next.delete(job.name)
          return next
        }),
      )
      const seconds = Metric.tagged(runSeconds, "job", job.name)
      const runs = (outcome: "success" | "failure") =>
        Metric.increment(Metric.tagged(Metric.tagged(runsTotal, "job", job.name), "outcome", outcome))
      const once = Effect.gen(function* () {
        const startedAt = yield* Clock.currentTimeMillis
        yield* Ref.update(status, (s) => ({ ...s, state: "running" as const, lastRunAt: startedAt }))
        // Defects too: a job that throws is a failed run, not a dead supervisor.
        const exit = yield* Effect.exit(Effect.suspend(() => job.run))
        const millis = (yield* Clock.currentTimeMillis) - startedAt
        yield* Metric.update(seconds, millis / 1000)
        if (exit._tag === "Success") {
          yield* runs("success")
          yield* Ref.update(status, (s) => ({
            ...s,
            state: "waiting" as const,
            runs: s.runs + 1,
            consecutiveFailures: 0,
            lastDurationMillis: millis,
          }))
          return
        }
        if (Cause.isInterruptedOnly(exit.cause)) return yield* Effect.interrupt
        const error = errorText(exit.cause)
        yield* runs("failure")
        const s = yield* Ref.updateAndGet(status, (s) => ({
          ...s,
          state: "waiting" as const,
          runs: s.runs + 1,
          failures: s.failures + 1,
          consecutiveFailures: s.consecutiveFailures + 1,
          lastDurationMillis: millis,
          lastError: error,
        }))
        yield* Effect.logWarning(
          `background job ${job.name} failed (${s.consecutiveFailures} in a row), runs again on schedule: ${error}`,
        ).pipe(Effect.annotateLogs({ name: "job.failed", job: job.name, consecutive: s.consecutiveFailures }))
      })
      // `once` never fails, so the job runs until its schedule ends or its scope closes.
      const loop = job.runAtStart === false ? Effect.schedule(once, job.schedule) : Effect.repeat(once, job.schedule)
      yield* Effect.forkScoped(loop)
    })
  return { start, status: Effect.flatMap(Ref.get(jobs), (m) => Effect.all([...m.values()].map(Ref.get))) }
})

/**
 * The supervisor as a layer.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer: Layer.Layer<BackgroundJobs> = Layer.effect(BackgroundJobs, make)

/**
 * A job failing this many times in a row makes the `background-jobs` component degraded.
 *
 * @since 0.2.0
 * @category health
 */
export const failingAfter = 3

/**
 * The supervisor as an `@novacron/init` component spec (`background-jobs`): components that own
 * background work depend on it and start their jobs in their own scope. Degraded while a job has
 * failed {@link failingAfter} times in a row.
 *
 * @example
 * ```ts
 * import { BackgroundJobs } from "@novacron/init"
 * import { Effect, Schedule } from "effect"
 *
 * const cleanup = Effect.gen(function* () {
 *   const jobs = yield* BackgroundJobs.BackgroundJobs
 *   yield* jobs.start({ name: "tmp-cleanup", schedule: Schedule.spaced("1 hour"), run: Effect.log("cleaning") })
 * })
 * ```
 *
 * @since 0.2.0
 * @category components
 */
export const component = () =>
  Component.spec({
    name: "background-jobs",
    description: "supervises the node's recurring jobs",
    layer,
    expectedDuration: "1 millis",
    healthCheck: Effect.gen(function* () {
      const jobs = yield* (yield* BackgroundJobs).status
      const failing = jobs.filter((j) => j.consecutiveFailures >= failingAfter)
      const details = { jobs: jobs.map((j) => j.name) }
      return failing.length === 0
        ? { status: "healthy" as const, details }
        : {
            status: "degraded" as const,
            message: failing
              .map((j) => `${j.name}: ${j.consecutiveFailures} failures in a row (${j.lastError})`)
              .join("; "),
            details,
          }
    }),
  })
