/**
 * One DWCP v3 part (transport, compression, prediction, state sync, consensus, placement) under
 * supervision: started in its own scope; when it fails to start or fails at run time, the work it
 * did goes to v1, the part is marked down with the cause (health `degraded`, a metric, a log
 * line), its scope is closed and it is started again on a `Schedule`; once it starts, v3 is back.
 *
 * @since 0.1.0
 */
import {
  Cause,
  Data,
  Duration,
  Effect,
  ExecutionStrategy,
  Exit,
  Metric,
  Option,
  Schedule,
  Scope,
  SynchronizedRef,
} from "effect"

/**
 * The parts: AMST (`transport`), ACP (`congestion`, on with `enable_v3_transport`), HDE
 * (`compression`), PBA (`prediction`), ASS (`state_sync`; `enable_v3_consensus` picks its
 * replicated store), ITP (`placement`).
 *
 * @since 0.1.0
 * @category models
 */
export const names = ["transport", "congestion", "compression", "prediction", "state_sync", "placement"] as const

/**
 * @since 0.1.0
 * @category models
 */
export type Name = (typeof names)[number]

/**
 * A v3 part failed at run time; the caller's work goes to v1. Engines raise it for failures of the
 * part itself (a dead worker, a lost connection to etcd), not for answers such as "no host fits".
 *
 * @since 0.1.0
 * @category errors
 */
export class PartFailure extends Data.TaggedError("PartFailure")<{ readonly part: Name; readonly reason: string }> {
  override get message(): string {
    return `DWCP v3 ${this.part} failed: ${this.reason}`
  }
}

/**
 * Where a part stands. `off`: its flag or the rollout keeps it on v1; `down`: v3 failed, on v1
 * until a retry starts it; `up`: v3.
 *
 * @since 0.1.0
 * @category models
 */
export type Status =
  | { readonly _tag: "up"; readonly part: Name; readonly since: number; readonly recoveries: number }
  | {
      readonly _tag: "down"
      readonly part: Name
      readonly since: number
      readonly cause: string
      /** `start`: v3 did not start; `run`: it failed while serving. */
      readonly phase: "start" | "run"
      readonly attempts: number
    }
  | { readonly _tag: "off"; readonly part: Name; readonly reason: string }

/**
 * Gauge per part: 1 on v3, 0 on v1.
 *
 * @since 0.1.0
 * @category metrics
 */
export const onV3 = Metric.gauge("novacron_dwcp_part_v3", {
  description: "1 when the DWCP part runs v3, 0 on the v1 fallback",
})

/**
 * Failures per part and phase.
 *
 * @since 0.1.0
 * @category metrics
 */
export const failures = Metric.counter("novacron_dwcp_part_failures_total", {
  description: "DWCP v3 part failures (start or run), each followed by v1",
})

/**
 * Calls served by v1 because the v3 part was down.
 *
 * @since 0.1.0
 * @category metrics
 */
export const fallbacks = Metric.counter("novacron_dwcp_v1_fallback_total", {
  description: "DWCP operations served by v1 while their v3 part was down",
})

/**
 * A supervised part.
 *
 * @since 0.1.0
 * @category models
 */
export interface Part<A> {
  readonly name: Name
  readonly status: Effect.Effect<Status>
  /** The v3 engine when it is up. */
  readonly current: Effect.Effect<Option.Option<A>>
  /**
   * Runs `v3` with the part when it is up; when it is down or off, or when `v3` fails with a
   * {@link PartFailure} (the part then goes down and is retried), runs `v1`.
   */
  readonly use: <B3, B1, E, R, E1, R1>(
    v3: (engine: A) => Effect.Effect<B3, E | PartFailure, R>,
    v1: Effect.Effect<B1, E1, R1>,
  ) => Effect.Effect<B3 | B1, Exclude<E, PartFailure> | E1, R | R1>
}

type State<A> =
  | { readonly _tag: "up"; readonly engine: A; readonly scope: Scope.CloseableScope; readonly generation: number }
  | { readonly _tag: "down"; readonly generation: number }
  | { readonly _tag: "off" }

/**
 * Retry of a failed part: 1 s doubling to 1 min, forever (the design's DEGRADED policy starts
 * 1 s, 2 s, 4 s; a run-time part keeps trying, since v1 serves meanwhile).
 *
 * @since 0.1.0
 */
export const defaultRetry: Schedule.Schedule<unknown, unknown> = Schedule.exponential("1 second", 2).pipe(
  Schedule.union(Schedule.spaced("1 minute")),
)

/**
 * 10 s: the design's boot targets are seconds; a part slower than this starts on a retry.
 *
 * @since 0.1.0
 */
export const defaultStartTimeout: Duration.DurationInput = "10 seconds"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options<A = unknown> {
  /** `undefined`: on; a string: off (v1) for that reason, e.g. the flag or the rollout. */
  readonly off?: string | undefined
  readonly retry?: Schedule.Schedule<unknown, unknown> | undefined
  /** Longest one start attempt may take (default {@link defaultStartTimeout}). */
  readonly startTimeout?: Duration.DurationInput | undefined
  /** Run when a retry brings v3 back, before calls use it (e.g. replay what v1 did meanwhile). */
  readonly onRecover?: ((engine: A) => Effect.Effect<void>) | undefined
}

const describe = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) {
    const e = failure.value
    if (e instanceof PartFailure) return e.reason
    if (e instanceof Error) return e.message
    if (typeof e === "object" && e !== null && "_tag" in e) return `${String(e._tag)}: ${JSON.stringify(e)}`
    return String(e)
  }
  return Cause.pretty(cause).split("\n")[0] ?? "defect"
}

/**
 * Starts a part in the current scope. A start failure does not fail this: the part is down and
 * retried.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <A>(
  name: Name,
  acquire: Effect.Effect<A, unknown, Scope.Scope>,
  options: Options<A> = {},
): Effect.Effect<Part<A>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const outer = yield* Effect.scope
    const gauge = onV3.pipe(Metric.tagged("part", name))
    const failed = (phase: "start" | "run") => failures.pipe(Metric.tagged("part", name), Metric.tagged("phase", phase))
    const now = Effect.clockWith((c) => c.currentTimeMillis)
    // Off by flag or rollout: v1 is the configured path, not a fallback; not counted.
    const v1Off = <B1, E1, R1>(v1: Effect.Effect<B1, E1, R1>) => v1
    if (options.off !== undefined) {
      yield* Metric.set(gauge, 0)
      const status: Status = { _tag: "off", part: name, reason: options.off }
      return {
        name,
        status: Effect.succeed(status),
        current: Effect.succeed(Option.none()),
        use: (_v3, v1) => v1Off(v1),
      } satisfies Part<A>
    }
    const state = yield* SynchronizedRef.make<State<A>>({ _tag: "down", generation: 0 })
    const status = yield* SynchronizedRef.make<Status>({
      _tag: "down",
      part: name,
      since: yield* now,
      cause: "starting",
      phase: "start",
      attempts: 0,
    })
    let recoveries = 0

    // One start attempt: the engine lives in its own scope so a failed part's resources are freed.
    const attempt = Effect.gen(function* () {
      const scope = yield* Scope.fork(outer, ExecutionStrategy.sequential)
      // A start that hangs must not hold the boot: past the timeout it counts as failed.
      const exit = yield* Effect.exit(
        Scope.extend(acquire, scope).pipe(
          Effect.timeoutFail({
            duration: options.startTimeout ?? defaultStartTimeout,
            onTimeout: () => `did not start within ${Duration.format(options.startTimeout ?? defaultStartTimeout)}`,
          }),
        ),
      )
      if (Exit.isFailure(exit)) {
        yield* Scope.close(scope, exit)
        return yield* Effect.fail(describe(exit.cause))
      }
      return { engine: exit.value, scope }
    })

    const up = (engine: A, scope: Scope.CloseableScope, generation: number, first: boolean) =>
      Effect.gen(function* () {
        if (!first && options.onRecover) yield* options.onRecover(engine)
        yield* SynchronizedRef.set(state, { _tag: "up", engine, scope, generation })
        if (!first) recoveries += 1
        yield* SynchronizedRef.set(status, { _tag: "up", part: name, since: yield* now, recoveries })
        yield* Metric.set(gauge, 1)
        if (!first) {
          yield* Effect.logInfo(`DWCP ${name}: v3 recovered, leaving v1`).pipe(
            Effect.annotateLogs({ name: "dwcp.part_recovered", part: name }),
          )
        }
      })

    // The first retry waits for the schedule's first delay: the part just failed.
    const retryLoop = (generation: number, cause: string) =>
      Effect.gen(function* () {
        const driver = yield* Schedule.driver(options.retry ?? defaultRetry)
        let last = cause
        for (let attempts = 1; ; attempts++) {
          const more = yield* Effect.either(driver.next(last))
          if (more._tag === "Left") {
            return yield* Effect.logWarning(`DWCP ${name}: v3 retries exhausted (${last}); staying on v1`).pipe(
              Effect.annotateLogs({ name: "dwcp.part_gave_up", part: name }),
            )
          }
          const r = yield* Effect.either(attempt)
          if (r._tag === "Right") return yield* up(r.right.engine, r.right.scope, generation, false)
          last = r.left
          yield* SynchronizedRef.update(status, (s) => (s._tag === "down" ? { ...s, attempts, cause: last } : s))
          yield* Effect.logDebug(`DWCP ${name}: v3 retry ${attempts} failed: ${last}`)
        }
      })

    const down = (phase: "start" | "run", cause: string, generation: number) =>
      Effect.gen(function* () {
        yield* SynchronizedRef.set(status, {
          _tag: "down",
          part: name,
          since: yield* now,
          cause,
          phase,
          attempts: 0,
        })
        yield* Metric.set(gauge, 0)
        yield* Metric.update(failed(phase), 1)
        yield* Effect.logWarning(`DWCP ${name}: v3 failed at ${phase} (${cause}); continuing on v1, retrying`).pipe(
          Effect.annotateLogs({ name: "dwcp.part_failed", part: name, phase, cause }),
        )
        yield* Effect.forkIn(retryLoop(generation, cause), outer)
      })

    const first = yield* Effect.either(attempt)
    if (first._tag === "Right") yield* up(first.right.engine, first.right.scope, 0, true)
    else yield* down("start", first.left, 0)

    // Marks generation `g` down once, however many callers saw it fail.
    const failRun = (g: number, reason: string) =>
      SynchronizedRef.updateEffect(state, (s) =>
        s._tag === "up" && s.generation === g
          ? Effect.gen(function* () {
              yield* Scope.close(s.scope, Exit.void)
              yield* down("run", reason, g + 1)
              return { _tag: "down" as const, generation: g + 1 }
            })
          : Effect.succeed(s),
      )

    const v1Counted = <B1, E1, R1>(v1: Effect.Effect<B1, E1, R1>) =>
      Effect.zipRight(Metric.update(fallbacks.pipe(Metric.tagged("part", name)), 1), v1)

    const part: Part<A> = {
      name,
      status: Effect.suspend(() => SynchronizedRef.get(status)),
      current: Effect.map(SynchronizedRef.get(state), (s) => (s._tag === "up" ? Option.some(s.engine) : Option.none())),
      use: <B3, B1, E, R, E1, R1>(
        v3: (engine: A) => Effect.Effect<B3, E | PartFailure, R>,
        v1: Effect.Effect<B1, E1, R1>,
      ): Effect.Effect<B3 | B1, Exclude<E, PartFailure> | E1, R | R1> =>
        Effect.flatMap(SynchronizedRef.get(state), (s) => {
          if (s._tag !== "up") return v1Counted(v1)
          // A PartFailure or a defect of the engine sends this call to v1; other errors are answers.
          return v3(s.engine).pipe(
            Effect.catchAllCause((cause): Effect.Effect<B3 | B1, Exclude<E, PartFailure> | E1, R | R1> => {
              const f = Cause.failureOption(cause)
              const partFailed = Option.isSome(f) && f.value instanceof PartFailure
              if (!partFailed && !Cause.isDie(cause))
                return Effect.failCause(cause as Cause.Cause<Exclude<E, PartFailure>>)
              return Effect.zipRight(failRun(s.generation, describe(cause)), v1Counted(v1))
            }),
          )
        }),
    }
    return part
  })
