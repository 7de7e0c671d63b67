// Tasks as @effect/workflow workflows on @effect/cluster: one workflow execution per task (its
// execution id is the task id), one activity per step. The cluster's message storage persists the
// execution and each finished activity's result, so after a crash the runner replays the workflow
// and skips finished steps; a step that was running is run again, and its idempotency key in
// `orch_effects` keeps its effect from happening twice.
import { SqlClient } from "@effect/sql"
import { Activity, Workflow, type WorkflowEngine } from "@effect/workflow"
import type { Placement } from "@novacron/dwcp-itp"
import { Vm, type VmManager } from "@novacron/vm"
import { Clock, Duration, Effect, type Layer, Option, Schedule, Schema } from "effect"
import type { AgentManagerApi } from "../AgentManager.js"
import type { CoordinatorApi } from "../Coordinator.js"
import { StepFailed } from "../OrchestrationError.js"
import type { OrchestrationSettings } from "../OrchestrationSettings.js"
import { isFinal, type PlacementDecision, type TaskRecord } from "../Task.js"
import type { VmMoverApi, VmOnNode } from "../VmMover.js"
import * as Store from "./store.js"

export const TaskWorkflow = Workflow.make({
  name: "NovacronTask",
  payload: { taskId: Schema.String },
  idempotencyKey: (p) => p.taskId,
})

export interface EngineOptions {
  readonly settings: OrchestrationSettings
  readonly vm: Option.Option<VmManager.Manager>
  readonly placement: Option.Option<{ readonly service: Placement.PlacementService; readonly node: string }>
  /** The coordinator and its agent manager: drains act through them; placement skips ineligible agents. */
  readonly cluster: Option.Option<{
    readonly coordinator: CoordinatorApi
    readonly agents: Pick<AgentManagerApi, "list" | "setDraining">
  }>
  /** How a drain moves VMs. */
  readonly mover: Option.Option<VmMoverApi>
}

/** A failure that no retry can fix: the task is dead-lettered at once. */
class Unretryable extends Error {}

interface Step {
  readonly name: string
  /** Runs inside the transaction that records the step's key (its effect is in the same database). */
  readonly local: boolean
  readonly action: Effect.Effect<string, unknown, SqlClient.SqlClient>
}

class Attempt extends Schema.TaggedError<Attempt>()("Attempt", {
  reason: Schema.String,
  terminal: Schema.optional(Schema.Literal("dead", "cancelled")),
}) {}

const describe = (e: unknown): string =>
  e instanceof Error ? e.message : typeof e === "object" && e !== null && "message" in e ? String(e.message) : String(e)

const now = Clock.currentTimeMillis

/**
 * Hosts placement must not choose: the agent manager's draining, suspect, failed and left agents,
 * and `also` (a drain's own node), with the reason.
 */
const ineligible = (options: EngineOptions, also: ReadonlyArray<readonly [string, string]>) =>
  Option.match(options.cluster, {
    onNone: () => Effect.succeed(new Map(also)),
    onSome: ({ agents }) =>
      Effect.map(agents.list, (records) => {
        const out = new Map<string, string>(also)
        for (const r of records) {
          if (out.has(r.node)) continue
          if (r.draining || r.state === "draining") out.set(r.node, "draining")
          else if (r.state === "suspect" || r.state === "failed" || r.state === "left") out.set(r.node, r.state)
        }
        return out
      }),
  })

/**
 * Asks placement for the whole ranking (`explain`, not `place`: the allocation shows in the
 * capacity the target publishes once the VM runs, so committing here would count it twice) and
 * takes the best host that is not excluded; the decision keeps the ranking and why hosts were
 * passed over.
 */
const decide = (
  service: Placement.PlacementService,
  request: { readonly id: string; readonly cpuMilli: number; readonly memoryMib: number },
  exclude: ReadonlyMap<string, string>,
) =>
  Effect.map(
    Effect.suspend(() => service.explain(request, { top: 1024 })),
    (e): PlacementDecision => {
      const eligible = e.ranking.filter((r) => !exclude.has(r.host))
      const passed = e.ranking.filter((r) => exclude.has(r.host))
      return {
        chosen: eligible[0]?.host ?? null,
        policy: e.policy,
        hosts: e.hosts,
        feasible: e.feasible,
        ranking: [...passed, ...eligible.slice(0, 5)]
          .sort((a, b) => b.total - a.total)
          .map((r) => ({ host: r.host, total: r.total, scores: { ...r.scores } })),
        filters: e.filters.map((f) => ({ name: f.name, removed: f.removed })),
        excluded: passed.map((r) => ({ host: r.host, reason: exclude.get(r.host)! })),
      }
    },
  )

const plan = (task: TaskRecord, options: EngineOptions): ReadonlyArray<Step> => {
  const vm = options.vm
  const withVm = <A>(f: (m: VmManager.Manager) => Effect.Effect<A, unknown>) =>
    Option.match(vm, {
      onNone: () => Effect.fail(new Error("no VM manager on this node (the vm component is not running)")),
      // built when the step runs, not when the task is planned
      onSome: (m) => Effect.suspend(() => f(m)),
    })
  const spec = task.spec
  // VM steps act outside the database: each first looks at the VM's state, so a step replayed
  // after a crash between acting and recording its key finds the work done and does not redo it.
  const start = (id: string): Step => ({
    name: "start",
    local: false,
    action: withVm((m) =>
      m
        .status(id)
        .pipe(
          Effect.flatMap((s) =>
            s.record.state === "running" || s.record.state === "starting"
              ? Effect.succeed("already running")
              : m.start(id).pipe(Effect.as("started")),
          ),
        ),
    ),
  })
  const stop = (id: string, absentIsDone: boolean): Step => ({
    name: "stop",
    local: false,
    action: withVm((m) =>
      m.stop(id).pipe(
        Effect.map((r) => r.method),
        Effect.catchTag("VmNotFound", (e) => (absentIsDone ? Effect.succeed("absent") : Effect.fail(e))),
      ),
    ),
  })
  switch (spec._tag) {
    case "Noop":
      return Array.from({ length: spec.steps }, (_, i): Step => {
        const name = `noop-${i + 1}`
        return {
          name,
          local: true,
          action: Effect.gen(function* () {
            if (spec.fail_steps.includes(i + 1)) return yield* Effect.fail(new Error(`${name} fails by request`))
            return yield* Store.noopEffect(task.id, name, yield* now).pipe(Effect.as("ok"))
          }),
        }
      })
    case "VmCreate":
      return [
        ...Option.match(options.placement, {
          onNone: () => [],
          onSome: ({ service, node }): ReadonlyArray<Step> => [
            {
              name: "place",
              local: false,
              // explain, not place: the allocation shows up in the capacity the chosen agent
              // publishes once the VM runs (PlacementSync), so committing it here would count it twice.
              action: Effect.gen(function* () {
                const decision = yield* decide(
                  service,
                  { id: spec.spec.id, cpuMilli: spec.spec.vcpus * 1000, memoryMib: spec.spec.memory_mb },
                  yield* ineligible(options, []),
                ).pipe(Effect.mapError((err) => new Unretryable(`placement: ${describe(err)}`)))
                const json = JSON.stringify(decision)
                yield* Store.setPlacement(task.id, json)
                if (decision.chosen !== node)
                  return yield* Effect.fail(
                    new Unretryable(
                      `placed on ${decision.chosen ?? "no host"}; VM steps run on the node running the task (${node}): remote steps are not built`,
                    ),
                  )
                return json
              }),
            },
          ],
        }),
        {
          name: "define",
          local: false,
          action: withVm((m) =>
            m.status(spec.spec.id).pipe(
              Effect.as("already defined"),
              Effect.catchTag("VmNotFound", () =>
                m.define(Schema.encodeSync(Vm.VmSpec)(spec.spec)).pipe(Effect.as("defined")),
              ),
            ),
          ),
        },
        ...(spec.start ? [start(spec.spec.id)] : []),
      ]
    case "VmStart":
      return [start(spec.vm)]
    case "VmStop":
      return [stop(spec.vm, false)]
    case "Drain":
      // a drain's steps depend on what its inventory found: see drainBody
      return []
    case "VmDelete":
      return [
        stop(spec.vm, true),
        {
          name: "remove",
          local: false,
          action: withVm((m) =>
            m.remove(spec.vm).pipe(
              Effect.as("removed"),
              Effect.catchTag("VmNotFound", () => Effect.succeed("already removed")),
            ),
          ),
        },
      ]
  }
}

// Span attributes: ids and names from the task's plan (bounded by the plan, not by input).
const stepAttributes = (task: TaskRecord, step: Step) => ({
  "task.id": task.id,
  "task.kind": task.spec._tag,
  "task.step": step.name,
})

/** The activity of one step: checks, attempts on the retry schedule, history rows. */
const stepActivity = (task: TaskRecord, step: Step, options: EngineOptions) =>
  Activity.make({
    name: step.name,
    success: Schema.String,
    error: StepFailed,
    execute: Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const key = `${task.id}/${step.name}`
      const done = yield* Store.effectOf(key).pipe(Effect.orDie)
      if (Option.isSome(done))
        // A step whose effect was recorded before a crash: one "replayed" attempt, no action.
        return yield* Effect.gen(function* () {
          const attempt = yield* Store.nextAttempt(task.id, step.name).pipe(Effect.orDie)
          const at = yield* now
          yield* Store.stepStarted(task.id, step.name, attempt, at).pipe(Effect.orDie)
          yield* Store.stepFinished(task.id, step.name, attempt, at, "replayed", null).pipe(Effect.orDie)
          yield* Effect.annotateCurrentSpan({ "task.attempt": attempt, "task.outcome": "replayed" })
          return done.value
        }).pipe(Effect.withSpan("orchestration.step", { attributes: stepAttributes(task, step) }))
      const once = Effect.gen(function* () {
        const fresh = yield* Store.getTask(task.id).pipe(Effect.mapError((e) => new Attempt({ reason: e.message })))
        const started = yield* now
        if (Option.isSome(fresh) && fresh.value.cancel_requested)
          return yield* new Attempt({ reason: "cancelled", terminal: "cancelled" })
        if (started >= task.deadline_at)
          return yield* new Attempt({
            reason: `timed out (deadline ${new Date(task.deadline_at).toISOString()})`,
            terminal: "dead",
          })
        const attempt = yield* Store.nextAttempt(task.id, step.name).pipe(Effect.orDie)
        yield* Effect.annotateCurrentSpan("task.attempt", attempt)
        yield* Store.stepStarted(task.id, step.name, attempt, started).pipe(Effect.orDie)
        const act = Effect.gen(function* () {
          const result = yield* step.action
          yield* Store.recordEffect(key, task.id, step.name, yield* now, result)
          return result
        })
        const before = task.spec._tag === "Noop" ? task.spec.sleep_ms : 0
        const after = task.spec._tag === "Noop" ? task.spec.sleep_after_ms : 0
        const remaining = Duration.millis(Math.max(1, task.deadline_at - started))
        return yield* Effect.sleep(Duration.millis(before)).pipe(
          Effect.zipRight(step.local ? sql.withTransaction(act) : act),
          Effect.zipLeft(Effect.sleep(Duration.millis(after))),
          Effect.timeoutFail({ duration: remaining, onTimeout: () => new Error("timed out during the step") }),
          Effect.tapBoth({
            onFailure: (e) =>
              Effect.flatMap(now, (at) => Store.stepFinished(task.id, step.name, attempt, at, "failed", describe(e))),
            onSuccess: () =>
              Effect.flatMap(now, (at) => Store.stepFinished(task.id, step.name, attempt, at, "ok", null)),
          }),
          Effect.mapError(
            (e) => new Attempt({ reason: describe(e), terminal: e instanceof Unretryable ? "dead" : undefined }),
          ),
          Effect.catchAllDefect((d) => new Attempt({ reason: `defect: ${describe(d)}` })),
        )
      }).pipe(
        // One span per attempt: its outcome is what the step history row says.
        Effect.tapBoth({
          onFailure: (e) => Effect.annotateCurrentSpan("task.outcome", e.terminal ?? "failed"),
          onSuccess: () => Effect.annotateCurrentSpan("task.outcome", "ok"),
        }),
        Effect.withSpan("orchestration.step", { attributes: stepAttributes(task, step) }),
      )
      const schedule = Schedule.exponential(options.settings.retry_base).pipe(
        Schedule.intersect(Schedule.recurs(options.settings.max_attempts - 1)),
      )
      return yield* once.pipe(
        Effect.retry({ schedule, while: (e) => e.terminal === undefined }),
        Effect.mapError(
          (e) =>
            new StepFailed({
              step: step.name,
              outcome: e.terminal ?? "dead",
              reason:
                e.terminal === undefined
                  ? `failed ${options.settings.max_attempts} attempts; last: ${e.reason}`
                  : e.reason,
            }),
        ),
      )
    }),
  })

/** Waits (bounded) until this node is coordinator: a drain acts only from the coordinator. */
const asCoordinator = (coordinator: CoordinatorApi, settings: OrchestrationSettings) =>
  coordinator.elected.pipe(
    Effect.timeoutFail({
      duration: Duration.sum(Duration.times(settings.coordinator_ttl, 2), Duration.seconds(1)),
      onTimeout: () => new Error(`${coordinator.node} is not the coordinator (a drain acts only from the coordinator)`),
    }),
  )

/**
 * A drain: `mark` (the agent manager's draining flag, a write fenced by the coordinator's term),
 * `inventory` (the node's VMs, recorded so a resumed drain moves the same list), then one
 * `move <vm>` step per VM, at most `max_parallel` at once, each choosing its target through
 * placement (never the drained node, nor a draining, suspect, failed or left agent) and moving the
 * VM through the `VmMover`. Each move is its own activity: after a crash or a failover the
 * finished ones are not run again. The drain fails with what is left when a move fails for good
 * or the deadline passes.
 */
const drainBody = (
  task: TaskRecord,
  spec: { readonly node: string; readonly max_parallel?: number | undefined },
  options: EngineOptions,
) =>
  Effect.gen(function* () {
    const missing = Option.isNone(options.cluster)
      ? "no coordinator on this node"
      : Option.isNone(options.mover)
        ? "no VM mover on this node"
        : undefined
    if (missing !== undefined) return yield* new StepFailed({ step: "mark", outcome: "dead", reason: missing })
    const { coordinator, agents } = Option.getOrThrow(options.cluster)
    const mover = Option.getOrThrow(options.mover)
    const node = spec.node
    yield* stepActivity(
      task,
      {
        name: "mark",
        local: false,
        action: Effect.gen(function* () {
          yield* asCoordinator(coordinator, options.settings)
          yield* agents.setDraining(node, true)
          return `${node} marked draining (ineligible for placement)`
        }),
      },
      options,
    )
    const listed = yield* stepActivity(
      task,
      {
        name: "inventory",
        local: false,
        action: Effect.map(mover.vmsOn(node), (vms) => JSON.stringify(vms)),
      },
      options,
    )
    const vms = JSON.parse(listed) as ReadonlyArray<VmOnNode>
    const moveStep = (vm: VmOnNode): Step => ({
      name: `move ${vm.id}`,
      local: false,
      action: Effect.gen(function* () {
        yield* asCoordinator(coordinator, options.settings)
        const { service } = yield* Option.match(options.placement, {
          onNone: () => Effect.fail(new Unretryable("no placement service (dwcp-itp) on this node to choose a target")),
          onSome: Effect.succeed,
        })
        const exclude = yield* ineligible(options, [[node, "being drained"]])
        const decision = yield* decide(
          service,
          { id: `drain/${vm.id}`, cpuMilli: vm.vcpus * 1000, memoryMib: vm.memory_mb },
          exclude,
        ).pipe(Effect.mapError((e) => new Error(`placement: ${describe(e)}`)))
        if (decision.chosen === null)
          return yield* Effect.fail(
            new Error(
              `no eligible host for ${vm.id} (${decision.feasible} feasible of ${decision.hosts}; excluded: ${
                decision.excluded.map((x) => `${x.host} ${x.reason}`).join(", ") || "none"
              })`,
            ),
          )
        const did = yield* mover.move({ vm: vm.id, from: node, to: decision.chosen, start: vm.running })
        return JSON.stringify({
          vm: vm.id,
          from: node,
          to: decision.chosen,
          method: mover.method,
          did,
          placement: decision,
        })
      }),
    })
    const max = spec.max_parallel ?? options.settings.drain_max_parallel
    const outcomes = yield* Effect.forEach(vms, (vm) => Effect.either(stepActivity(task, moveStep(vm), options)), {
      concurrency: max,
    })
    const failed = outcomes.flatMap((o, i) => (o._tag === "Left" ? [[vms[i]!.id, o.left] as const] : []))
    if (failed.length === 0) return
    const left = failed.map(([id]) => id)
    const cancelled = failed.some(([, e]) => e.outcome === "cancelled")
    const timedOut = failed.some(([, e]) => e.reason.includes("timed out"))
    const why = cancelled ? "cancelled" : timedOut ? "deadline passed" : "moves failed"
    return yield* new StepFailed({
      step: "drain",
      outcome: cancelled ? "cancelled" : "dead",
      reason: `${why}: ${vms.length - left.length} of ${vms.length} VMs moved off ${node}; left: ${left.join(", ")} (${failed
        .map(([id, e]) => `${id}: ${e.reason}`)
        .join("; ")})`,
    })
  })

const body = (taskId: string, options: EngineOptions) =>
  Effect.gen(function* () {
    const found = yield* Store.getTask(taskId)
    if (Option.isNone(found) || isFinal(found.value.status)) return
    const task = found.value
    yield* Effect.annotateCurrentSpan("task.kind", task.spec._tag)
    yield* Store.setStatus(taskId, "running", yield* now)
    if (task.spec._tag === "Drain") yield* drainBody(task, task.spec, options)
    else for (const step of plan(task, options)) yield* stepActivity(task, step, options)
    yield* Store.setStatus(taskId, "succeeded", yield* now)
    yield* Effect.annotateCurrentSpan("task.outcome", "succeeded")
  }).pipe(
    Effect.catchTag("StepFailed", (e) =>
      Effect.flatMap(now, (at) =>
        Effect.zipRight(
          Store.setStatus(taskId, e.outcome, at, e.message),
          Effect.annotateCurrentSpan({ "task.outcome": e.outcome, "task.failed_step": e.step }),
        ),
      ),
    ),
    // The task store failing outside a step is a defect of this execution.
    Effect.orDie,
    // One span per execution of the task (a task resumed after a crash has one per execution).
    Effect.withSpan("orchestration.task", { attributes: { "task.id": taskId } }),
  )

export const layer = (
  options: EngineOptions,
): Layer.Layer<never, never, WorkflowEngine.WorkflowEngine | SqlClient.SqlClient> =>
  TaskWorkflow.toLayer(({ taskId }) => body(taskId, options))
