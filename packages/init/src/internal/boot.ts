import { randomUUID } from "node:crypto"
import {
  Cause,
  Clock,
  Context,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  Layer,
  Metric,
  Option,
  Runtime,
  Schedule,
  Scope,
  SubscriptionRef,
} from "effect"
import { ComponentFailed, PhaseTimeout, ShutdownTimeout } from "../BootError.js"
import * as BootMetrics from "../BootMetrics.js"
import type { BootReport, CheckpointName, ComponentRecord, PhaseRecord } from "../BootReport.js"
import { BootStatus } from "../BootStatus.js"
import type { CheckpointStore } from "../Checkpoint.js"
import { previousBoot } from "../Checkpoint.js"
import type { AnyComponent, Phase } from "../Component.js"
import { phases } from "../Component.js"
import * as Graph from "../Graph.js"
import type { ComponentHealth, HealthReport, Lifecycle } from "../Health.js"
import { aggregate } from "../Health.js"

export interface BootOptions {
  readonly maxConcurrency?: number | undefined
  readonly phaseTimeouts?: Partial<Record<Phase, Duration.DurationInput>> | undefined
  readonly shutdownTimeout?: Duration.DurationInput | undefined
  readonly healthCheckTimeout?: Duration.DurationInput | undefined
  readonly checkpoints?: CheckpointStore | undefined
  readonly strategy?: "eager" | "levels" | undefined
  readonly context?: Context.Context<never> | undefined
  readonly onEvent?: ((event: BootEvent) => void) | undefined
}

export type BootEvent =
  | { readonly _tag: "BootStarted"; readonly report: BootReport }
  | { readonly _tag: "PhaseStarted"; readonly phase: Phase }
  | { readonly _tag: "PhaseFinished"; readonly phase: Phase; readonly millis: number }
  | { readonly _tag: "ComponentStarting"; readonly name: string; readonly attempt: number }
  | { readonly _tag: "ComponentFinished"; readonly record: ComponentRecord }
  | { readonly _tag: "ComponentStopped"; readonly record: ComponentRecord }
  | { readonly _tag: "Checkpoint"; readonly name: CheckpointName }

export interface BootHandle {
  readonly context: Context.Context<unknown>
  readonly report: BootReport
  readonly lifecycle: SubscriptionRef.SubscriptionRef<Lifecycle>
  readonly health: Effect.Effect<HealthReport>
  readonly healthWhere: (include: (component: AnyComponent) => boolean) => Effect.Effect<HealthReport>
  readonly shutdown: Effect.Effect<void, ShutdownTimeout>
}

export const defaultPhaseTimeouts: Record<Phase, Duration.DurationInput> = {
  "pre-init": "10 seconds",
  core: "20 seconds",
  services: "20 seconds",
  "post-init": "10 seconds",
}

/** DEGRADED default: 3 retries after 1 s, 2 s and 4 s. */
export const defaultDegradedRetry = Schedule.intersect(Schedule.exponential("1 second"), Schedule.recurs(3))

const phaseCheckpoint: Record<Phase, CheckpointName> = {
  "pre-init": "pre_init_complete",
  core: "core_init_complete",
  services: "service_init_complete",
  "post-init": "init_complete",
}

interface Started {
  readonly record: ComponentRecord
  readonly scope: Scope.CloseableScope
}

const render = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.squash(cause)
  if (Cause.isInterruptedOnly(cause)) return "interrupted"
  if (failure instanceof Error) return failure.message || failure.name
  return String(failure)
}

class DependencyUnavailable {
  readonly _tag = "DependencyUnavailable"
  constructor(readonly dependencies: ReadonlyArray<string>) {}
  get message() {
    return `dependency unavailable: ${this.dependencies.join(", ")}`
  }
  toString() {
    return this.message
  }
}

export const boot = (
  components: Iterable<AnyComponent>,
  options: BootOptions = {},
): Effect.Effect<
  BootHandle,
  Graph.GraphError | ComponentFailed | PhaseTimeout | import("../Checkpoint.js").CheckpointError,
  Scope.Scope
> =>
  Effect.gen(function* () {
    const graph = yield* Graph.validate(components)
    const outer = yield* Effect.scope
    const t0 = yield* Clock.currentTimeNanos
    const now = Effect.map(Clock.currentTimeNanos, (t) => Number(t - t0) / 1e6)
    const emit = options.onEvent ?? (() => undefined)
    const store = options.checkpoints
    const hostContext = (options.context ?? Context.empty()) as Context.Context<unknown>

    const records = new Map<string, ComponentRecord>()
    for (const name of graph.order) {
      const c = graph.components.get(name)!
      records.set(name, {
        name,
        phase: c.phase,
        criticality: c.criticality,
        dependencies: c.dependencies,
        status: "pending",
        attempts: 0,
      })
    }
    const phaseRecords: Array<PhaseRecord> = phases.map((phase) => ({ phase, status: "pending" }))
    const report: BootReport = {
      bootId: randomUUID(),
      pid: process.pid,
      startedAt: new Date(Number(yield* Clock.currentTimeMillis)).toISOString(),
      outcome: "starting",
      checkpoints: [],
      phases: phaseRecords,
      components: [...records.values()],
    }
    const lifecycle = yield* SubscriptionRef.make<Lifecycle>("booting")
    emit({ _tag: "BootStarted", report })

    if (store !== undefined) {
      // A corrupt record is only lost history; one that cannot be read at all (permissions) will
      // not be writable either, so that fails the boot with its path.
      const before = yield* store.read.pipe(
        Effect.catchTag("CorruptRecord", (e) =>
          Effect.logWarning(`${e.message}; ignoring it`).pipe(
            Effect.annotateLogs({ name: "boot.previous" }),
            Effect.as(Option.none()),
          ),
        ),
      )
      if (Option.isSome(before)) {
        const prev = previousBoot(before.value)
        if (prev !== undefined) {
          report.previous = prev
          yield* Effect.logWarning(prev.summary).pipe(Effect.annotateLogs({ name: "boot.previous" }))
        }
      }
    }
    const persist = store === undefined ? Effect.void : Effect.suspend(() => store.write(report))
    const logWriteFailure = (e: { readonly message: string }) =>
      Effect.logError(e.message).pipe(Effect.annotateLogs({ name: "boot.record" }))
    const checkpoint = (name: CheckpointName) =>
      Effect.gen(function* () {
        report.checkpoints.push({ name, at: yield* now })
        yield* persist
        emit({ _tag: "Checkpoint", name })
        yield* Effect.logDebug(`checkpoint ${name}`).pipe(Effect.annotateLogs({ name: "boot.checkpoint" }))
      })

    // Started components, oldest first; shutdown and rollback walk it backwards.
    const started: Array<Started> = []
    const outputs = new Map<string, Context.Context<unknown>>()

    const booted = yield* Deferred.make<void>()
    const bootStatus = BootStatus.of({
      booted: Deferred.await(booted),
      status: (name) => records.get(name)?.status,
      isDegraded: (name) => {
        const r = records.get(name)
        return r !== undefined && (r.status === "degraded" || r.status === "failed" || r.status === "skipped")
      },
    })

    // One attempt: build the layer in a scope of its own; a failed or interrupted attempt releases
    // whatever it had acquired before the error surfaces.
    const buildOnce = (
      layer: Layer.Layer<unknown, unknown, unknown>,
      input: Context.Context<unknown>,
      c: AnyComponent,
    ) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function* () {
          const scope = yield* Scope.make()
          let build = Layer.buildWithScope(layer, scope).pipe(Effect.provide(input))
          if (c.timeout !== undefined) {
            const timeout = Duration.decode(c.timeout)
            build = build.pipe(
              Effect.timeoutFail({
                duration: timeout,
                onTimeout: () => new Error(`start timed out after ${Duration.toMillis(timeout)} ms`),
              }),
            )
          }
          const exit = yield* Effect.exit(restore(build))
          if (Exit.isFailure(exit)) {
            yield* Scope.close(scope, exit)
            return yield* Effect.failCause(exit.cause as Cause.Cause<unknown>)
          }
          return { scope, context: exit.value }
        }),
      )

    const finish = (record: ComponentRecord, c: AnyComponent) =>
      Effect.gen(function* () {
        record.finishedAt = yield* now
        const millis = record.finishedAt - (record.startedAt ?? record.finishedAt)
        // A DEGRADED component that gave up without a fallback did not start.
        const ok = record.status === "running" || (record.status === "degraded" && record.fallback === true)
        if (ok) {
          yield* Metric.set(Metric.tagged(BootMetrics.componentInitDuration, "component", c.name), millis / 1000)
          yield* Metric.increment(Metric.tagged(BootMetrics.componentInitSuccess, "component", c.name))
        }
        emit({ _tag: "ComponentFinished", record })
        const log =
          record.status === "running"
            ? Effect.logInfo(`${c.name} started`)
            : record.status === "degraded"
              ? Effect.logWarning(`${c.name} degraded${record.fallback ? " (fallback in place)" : ""}: ${record.error}`)
              : c.criticality === "WARNING"
                ? Effect.logWarning(`${c.name} ${record.status}, continuing: ${record.error}`)
                : Effect.logError(`${c.name} ${record.status}: ${record.error}`)
        yield* log.pipe(
          Effect.annotateLogs({
            name: `component.${record.status}`,
            duration: Math.round(millis * 1000) / 1000,
            attempts: record.attempts,
          }),
        )
      })

    const giveUp = (
      c: AnyComponent,
      record: ComponentRecord,
      cause: Cause.Cause<unknown>,
      input: Context.Context<unknown>,
    ) =>
      Effect.gen(function* () {
        record.error = render(cause)
        if (c.criticality === "CRITICAL") {
          record.status = "failed"
          yield* finish(record, c)
          return yield* Effect.fail(
            new ComponentFailed({
              component: c.name,
              phase: c.phase,
              attempts: record.attempts,
              reason: record.error,
              cause: Cause.squash(cause),
            }),
          )
        }
        if (c.criticality === "DEGRADED" && c.fallback !== undefined) {
          const fallback = yield* Effect.exit(buildOnce(c.fallback as Layer.Layer<unknown, unknown, unknown>, input, c))
          if (Exit.isSuccess(fallback)) {
            record.fallback = true
            record.status = "degraded"
            outputs.set(c.name, fallback.value.context)
            started.push({ record, scope: fallback.value.scope })
            return yield* finish(record, c)
          }
          record.error = `${record.error}; fallback failed: ${render(fallback.cause)}`
        }
        record.status = c.criticality === "DEGRADED" ? "degraded" : record.status === "skipped" ? "skipped" : "failed"
        yield* finish(record, c)
      })

    const baseInput = Context.add(hostContext, BootStatus, bootStatus) as Context.Context<unknown>

    // Starts one component whose dependencies have all finished; never waits for them itself.
    const startComponent = (name: string) =>
      Effect.gen(function* () {
        const c = graph.components.get(name)!
        const record = records.get(name)!
        let input = baseInput
        let missing: Array<string> | undefined
        for (const d of c.dependencies) {
          const out = outputs.get(d)
          if (out === undefined) {
            missing ??= []
            missing.push(d)
          } else input = Context.merge(input, out)
        }
        record.readyAt = yield* now
        if (missing !== undefined) {
          record.status = "skipped"
          record.startedAt = record.readyAt
          return yield* giveUp(c, record, Cause.fail(new DependencyUnavailable(missing)), input)
        }
        record.status = "starting"
        record.startedAt = record.readyAt
        const attempt = Effect.suspend(() => {
          record.attempts++
          emit({ _tag: "ComponentStarting", name, attempt: record.attempts })
          return buildOnce(c.layer as Layer.Layer<unknown, unknown, unknown>, input, c)
        }).pipe(
          Effect.tapErrorCause((cause) =>
            Cause.isInterruptedOnly(cause)
              ? Effect.void
              : Effect.zipRight(
                  Metric.increment(Metric.tagged(BootMetrics.componentInitFailure, "component", name)),
                  Effect.logDebug(`${name} attempt ${record.attempts} failed: ${render(cause)}`),
                ),
          ),
        )
        const policy = c.retry ?? (c.criticality === "DEGRADED" ? defaultDegradedRetry : undefined)
        const result = yield* Effect.exit(policy === undefined ? attempt : Effect.retry(attempt, policy))
        if (Exit.isSuccess(result)) {
          record.status = "running"
          outputs.set(name, result.value.context)
          started.push({ record, scope: result.value.scope })
          return yield* finish(record, c)
        }
        if (Cause.isInterruptedOnly(result.cause)) return yield* Effect.failCause(result.cause as Cause.Cause<never>)
        return yield* giveUp(c, record, result.cause, input)
      }).pipe(
        Effect.annotateLogs({ component: name, dependencies: graph.components.get(name)!.dependencies.join(",") }),
        // No stack capture: it costs more than the rest of a no-op start.
        Effect.withSpan(`init.component ${name}`, { attributes: { component: name }, captureStackTrace: false }),
      )

    const maxConcurrency = Math.max(1, options.maxConcurrency ?? Number.POSITIVE_INFINITY)

    // Runs a set of components whose outside dependencies are all done. Each starts the moment its
    // last dependency inside the set finishes (Terraform's walk, not level by level); when the cap
    // leaves several ready, the one with the longest chain still behind it goes first. Components
    // run on fibers of their own, counted here rather than parked on a Deferred each: a parked fiber
    // per component cost more than the rest of a no-op start.
    const runGroup = (members: ReadonlyArray<string>) =>
      Effect.gen(function* () {
        if (members.length === 0) return
        const inGroup = new Set(members)
        const waiting = new Map<string, number>()
        for (const n of members) {
          let k = 0
          for (const d of graph.components.get(n)!.dependencies) if (inGroup.has(d)) k++
          waiting.set(n, k)
        }
        const rank = chainRank(members, inGroup, graph)
        const ready = new RankQueue(rank, members)
        for (const n of members) if (waiting.get(n) === 0) ready.push(n)
        const running = new Set<Fiber.RuntimeFiber<void, ComponentFailed>>()
        const outcome = yield* Deferred.make<void, ComponentFailed>()
        const runtime = yield* Effect.runtime<never>()
        let finished = 0
        let halted = false
        let draining = false

        const onExit = (name: string, exit: Exit.Exit<void, ComponentFailed>) => {
          if (Exit.isFailure(exit)) {
            if (!halted) {
              halted = true
              Deferred.unsafeDone(outcome, exit)
            }
            return
          }
          finished++
          for (const d of graph.dependents.get(name) ?? []) {
            if (!inGroup.has(d)) continue
            const left = waiting.get(d)! - 1
            waiting.set(d, left)
            if (left === 0) ready.push(d)
          }
          if (finished === members.length) Deferred.unsafeDone(outcome, Exit.void)
          else drain()
        }
        // A fiber may finish inside runFork; the flag keeps that from re-entering the loop.
        const drain = () => {
          if (draining) return
          draining = true
          while (!halted && running.size < maxConcurrency && ready.size > 0) {
            const name = ready.pop()
            const fiber = Runtime.runFork(runtime)(startComponent(name))
            running.add(fiber)
            fiber.addObserver((exit) => {
              running.delete(fiber)
              onExit(name, exit)
            })
          }
          draining = false
        }
        drain()
        yield* Deferred.await(outcome).pipe(
          // Interrupt what is still starting, and wait: its own scope must close before rollback.
          Effect.onExit(() =>
            Effect.suspend(() => {
              halted = true
              return Fiber.interruptAll([...running])
            }),
          ),
        )
      })

    // Shutdown: newest first, each component's scope closed in turn, all within one deadline.
    const stopAll = (exit: Exit.Exit<unknown, unknown>, deadline: Duration.DurationInput) =>
      Effect.gen(function* () {
        const finished: Array<{ name: string; millis: number }> = []
        let current: string | undefined
        const loop = Effect.gen(function* () {
          while (started.length > 0) {
            const s = started.pop()!
            current = s.record.name
            const from = yield* now
            yield* Scope.close(s.scope, exit)
            s.record.stopMillis = (yield* now) - from
            s.record.status = "stopped"
            finished.push({ name: s.record.name, millis: s.record.stopMillis })
            current = undefined
            emit({ _tag: "ComponentStopped", record: s.record })
            yield* Effect.logInfo(`${s.record.name} stopped`).pipe(
              Effect.annotateLogs({
                component: s.record.name,
                name: "component.stopped",
                duration: s.record.stopMillis,
              }),
            )
          }
        })
        const timeout = Duration.decode(deadline)
        // Finalizers run uninterruptibly: disconnect so the deadline can return while one hangs.
        yield* Effect.disconnect(loop).pipe(
          Effect.timeoutFail({
            duration: timeout,
            onTimeout: () =>
              new ShutdownTimeout({
                timeoutMillis: Duration.toMillis(timeout),
                stuck: current,
                // The stuck one was already taken off `started`.
                abandoned: started.map((s) => s.record.name).reverse(),
                finished,
              }),
          }),
        )
      })

    const shutdownTimeout = options.shutdownTimeout ?? "30 seconds"
    const strategy = options.strategy ?? "eager"

    const runPhases = Effect.gen(function* () {
      yield* checkpoint("init_start")
      for (let p = 0; p < phases.length; p++) {
        const phase = phases[p]!
        const members = graph.order.filter((n) => graph.components.get(n)!.phase === phase)
        const rec = phaseRecords[p]!
        rec.status = "running"
        rec.startedAt = yield* now
        emit({ _tag: "PhaseStarted", phase })
        const run =
          strategy === "eager"
            ? runGroup(members)
            : Effect.forEach(groupByLevel(members, graph), runGroup, { discard: true })
        const timeout = Duration.decode(options.phaseTimeouts?.[phase] ?? defaultPhaseTimeouts[phase])
        yield* run.pipe(
          Effect.timeoutFail({
            duration: timeout,
            onTimeout: () =>
              new PhaseTimeout({
                phase,
                timeoutMillis: Duration.toMillis(timeout),
                stuck: members.filter((n) => {
                  const s = records.get(n)!.status
                  return s === "starting" || s === "pending"
                }),
                finished: report.components
                  .filter((c) => c.finishedAt !== undefined && c.startedAt !== undefined)
                  .map((c) => ({ name: c.name, millis: c.finishedAt! - c.startedAt! })),
              }),
          }),
          Effect.withSpan(`init.phase ${phase}`, { attributes: { phase } }),
          Effect.tapError(() =>
            Effect.sync(() => {
              rec.status = "failed"
            }),
          ),
        )
        rec.finishedAt = yield* now
        rec.status = "complete"
        yield* Metric.set(
          Metric.tagged(BootMetrics.phaseDuration, "phase", phase),
          (rec.finishedAt - rec.startedAt) / 1000,
        )
        emit({ _tag: "PhaseFinished", phase, millis: rec.finishedAt - rec.startedAt })
        yield* checkpoint(phaseCheckpoint[phase])
      }
    })

    // Failed or interrupted (a signal mid-boot), the rollback runs to the end: what started must
    // not outlive the boot, and an interrupted fiber would skip the rest of this body.
    const rollBack = (bootExit: Exit.Failure<void, unknown>) =>
      Effect.gen(function* () {
        const error = Cause.failureOption(bootExit.cause)
        report.outcome = "failed"
        report.totalMillis = yield* now
        const failed = Option.isSome(error) && error.value instanceof ComponentFailed ? error.value : undefined
        for (const r of report.components) if (r.status === "starting") r.status = "stopped"
        report.failure = {
          message: Option.isSome(error)
            ? (error.value as Error).message
            : Cause.isInterruptedOnly(bootExit.cause)
              ? "boot interrupted"
              : Cause.pretty(bootExit.cause),
          ...(failed ? { component: failed.component, phase: failed.phase } : {}),
        }
        yield* SubscriptionRef.set(lifecycle, "failed")
        const checkpoint = report.checkpoints.at(-1)?.name ?? "none"
        // An interruption is someone's request (a signal during boot), not a failure: one info line.
        yield* Option.isNone(error) && Cause.isInterruptedOnly(bootExit.cause)
          ? Effect.logInfo("boot interrupted: rolling back what had started").pipe(
              Effect.annotateLogs({ name: "boot.interrupted", checkpoint }),
            )
          : Effect.logError(`boot failed: ${report.failure.message}; rolling back`).pipe(
              Effect.annotateLogs({ name: "boot.failed", checkpoint }),
            )
        // Here everything is uninterruptible, the deadline's own interruption of the stuck wait
        // included: run the shutdown on a fiber of its own, interruptible, that no signal reaches.
        const stopping = yield* Effect.forkDaemon(Effect.interruptible(stopAll(bootExit, shutdownTimeout)))
        const rollback = yield* Fiber.await(stopping)
        if (Exit.isFailure(rollback))
          yield* Effect.logError(`rollback incomplete: ${Cause.pretty(rollback.cause)}`).pipe(
            Effect.annotateLogs({ name: "boot.rollback" }),
          )
        yield* persist.pipe(Effect.catchAll(logWriteFailure))
      })
    yield* Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(Effect.exit(restore(runPhases)), (bootExit) =>
        Exit.isFailure(bootExit) ? Effect.zipRight(rollBack(bootExit), Effect.failCause(bootExit.cause)) : Effect.void,
      ),
    )

    report.outcome = "running"
    report.totalMillis = yield* now
    let sum = 0
    for (const r of report.components)
      if (r.startedAt !== undefined && r.finishedAt !== undefined) sum += r.finishedAt - r.startedAt
    report.parallelEfficiency = report.totalMillis > 0 ? sum / report.totalMillis : 0
    yield* Metric.set(BootMetrics.totalBootTime, report.totalMillis / 1000)
    yield* Metric.set(BootMetrics.parallelEfficiency, report.parallelEfficiency)
    yield* persist

    let context = Context.add(hostContext, BootStatus, bootStatus) as Context.Context<unknown>
    for (const s of started) context = Context.merge(context, outputs.get(s.record.name)!)

    const shutdown = yield* Effect.cached(
      Effect.gen(function* () {
        yield* SubscriptionRef.set(lifecycle, "shutting-down")
        yield* Effect.logInfo("shutting down").pipe(Effect.annotateLogs({ name: "shutdown.started" }))
        const result = yield* Effect.exit(stopAll(Exit.void, shutdownTimeout))
        report.outcome = "stopped"
        yield* SubscriptionRef.set(lifecycle, "stopped")
        yield* persist.pipe(Effect.catchAll(logWriteFailure))
        return yield* result
      }),
    )
    yield* Scope.addFinalizer(outer, shutdown.pipe(Effect.catchAll((e) => Effect.logError(e.message))))

    const checkTimeout = Duration.decode(options.healthCheckTimeout ?? "5 seconds")
    const healthWhere = (include: (c: AnyComponent) => boolean) =>
      Effect.gen(function* () {
        const life = yield* SubscriptionRef.get(lifecycle)
        const list = yield* Effect.forEach(
          report.components,
          (r): Effect.Effect<ComponentHealth> => {
            const c = graph.components.get(r.name)!
            const out = outputs.get(r.name)
            const base = { name: r.name, criticality: r.criticality, status: r.status }
            if (
              c.healthCheck === undefined ||
              out === undefined ||
              (r.status !== "running" && r.status !== "degraded") ||
              !include(c)
            )
              return Effect.succeed({
                ...base,
                health: r.status === "running" ? "healthy" : r.status === "degraded" ? "degraded" : "unknown",
                message: r.error,
              })
            return c.healthCheck.pipe(
              Effect.provide(Context.merge(Context.add(hostContext, BootStatus, bootStatus), out)),
              Effect.timeoutFail({ duration: checkTimeout, onTimeout: () => new Error("health check timed out") }),
              Effect.map((h) => ({
                ...base,
                health: h?.status ?? (r.status === "degraded" ? "degraded" : "healthy"),
                message: h?.message ?? r.error,
                details: h?.details,
              })),
              Effect.catchAllCause((cause) =>
                Effect.succeed({ ...base, health: "unhealthy" as const, message: render(cause) }),
              ),
            ) as Effect.Effect<ComponentHealth>
          },
          { concurrency: "unbounded" },
        )
        return { status: aggregate(list), ready: life === "ready", lifecycle: life, components: list }
      })
    const health = healthWhere(() => true)

    yield* SubscriptionRef.set(lifecycle, "ready")
    yield* Deferred.succeed(booted, undefined)
    yield* Effect.logInfo(`READY in ${report.totalMillis.toFixed(1)} ms`).pipe(
      Effect.annotateLogs({
        name: "boot.ready",
        duration: report.totalMillis,
        parallel_efficiency: report.parallelEfficiency,
      }),
    )
    return { context, report, lifecycle, health, healthWhere, shutdown } satisfies BootHandle
  }).pipe(Effect.withSpan("init.boot"))

const groupByLevel = (members: ReadonlyArray<string>, graph: Graph.Graph): Array<Array<string>> => {
  const groups = new Map<number, Array<string>>()
  for (const n of members) {
    const lv = graph.level.get(n)!
    const g = groups.get(lv)
    if (g === undefined) groups.set(lv, [n])
    else g.push(n)
  }
  return [...groups.entries()].sort(([a], [b]) => a - b).map(([, g]) => g)
}

// Longest chain (in expected milliseconds, at least 1 per component) from each member to the end
// of the group: the list-scheduling priority under a concurrency cap.
const chainRank = (
  members: ReadonlyArray<string>,
  inGroup: ReadonlySet<string>,
  graph: Graph.Graph,
): Map<string, number> => {
  const rank = new Map<string, number>()
  for (let i = members.length - 1; i >= 0; i--) {
    const n = members[i]!
    const expected = graph.components.get(n)!.expectedDuration
    const own = Math.max(1, expected === undefined ? 0 : Duration.toMillis(Duration.decode(expected)))
    let tail = 0
    for (const d of graph.dependents.get(n) ?? []) if (inGroup.has(d)) tail = Math.max(tail, rank.get(d)!)
    rank.set(n, own + tail)
  }
  return rank
}

// Binary heap of names, highest rank first; ties go to the earlier member, so runs repeat.
class RankQueue {
  private readonly heap: Array<string> = []
  private readonly index = new Map<string, number>()
  constructor(
    private readonly rank: ReadonlyMap<string, number>,
    members: ReadonlyArray<string>,
  ) {
    for (let i = 0; i < members.length; i++) this.index.set(members[i]!, i)
  }
  private before(a: string, b: string): boolean {
    const ra = this.rank.get(a)!
    const rb = this.rank.get(b)!
    return ra > rb || (ra === rb && this.index.get(a)! < this.index.get(b)!)
  }
  get size(): number {
    return this.heap.length
  }
  push(name: string): void {
    const h = this.heap
    h.push(name)
    let i = h.length - 1
    while (i > 0) {
      const up = (i - 1) >> 1
      if (!this.before(h[i]!, h[up]!)) break
      ;[h[up], h[i]] = [h[i]!, h[up]!]
      i = up
    }
  }
  pop(): string {
    const h = this.heap
    const top = h[0]!
    const last = h.pop()!
    if (h.length > 0) {
      h[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < h.length && this.before(h[l]!, h[m]!)) m = l
        if (r < h.length && this.before(h[r]!, h[m]!)) m = r
        if (m === i) break
        ;[h[m], h[i]] = [h[i]!, h[m]!]
        i = m
      }
    }
    return top
  }
}
