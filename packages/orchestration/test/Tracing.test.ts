// Task and step spans exported to a fake OTLP collector: one span per task execution, one per
// step attempt, its child, with the task id, kind, step, attempt and outcome.
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { otlpReceiver, tempDir } from "@novacron/testing"
import { Effect, Layer } from "effect"
// By path, not by name: a devDependency on @novacron/monitoring needs a lockfile change, which
// waits for the lockfile to be free of other work in flight.
import * as Tracing from "../../monitoring/src/Tracing.js"
import * as OrchestrationSettings from "../src/OrchestrationSettings.js"
import * as Tasks from "../src/Tasks.js"

const settings = OrchestrationSettings.decode({ retry_base: "5ms", max_attempts: 2 })

const until = (what: string, ok: () => boolean, timeoutMs = 15_000) =>
  Effect.promise(async () => {
    const deadline = Date.now() + timeoutMs
    while (!ok()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
      await new Promise((r) => setTimeout(r, 50))
    }
  })

describe("Tasks tracing", () => {
  it.scopedLive("a task execution is one span; each step attempt is its child, with attempt and outcome", () =>
    Effect.gen(function* () {
      const receiver = yield* otlpReceiver
      const ids = yield* Effect.scoped(
        Effect.gen(function* () {
          const dir = yield* tempDir
          const store = { _tag: "sqlite", filename: path.join(dir, "orch.db") } as const
          const ctx = yield* Layer.build(Tasks.layer(store, { settings }))
          const tasks = ctx.unsafeMap.get(Tasks.Tasks.key) as Tasks.TasksApi
          // Submitted inside a span (an API request's, in the agent): the task joins its trace.
          const [ok, submitter] = yield* Effect.zip(tasks.submit({ _tag: "Noop", steps: 2 }), Effect.currentSpan).pipe(
            Effect.withSpan("submitter"),
          )
          expect((yield* tasks.await(ok.id)).status).toBe("succeeded")
          const bad = yield* tasks.submit({ _tag: "Noop", steps: 1, fail_steps: [1] })
          expect((yield* tasks.await(bad.id)).status).toBe("dead")
          return { ok: ok.id, bad: bad.id, submitter: submitter.traceId }
        }),
      ).pipe(
        Effect.provide(
          Tracing.layer(
            { tracing: true, tracing_endpoint: receiver.endpoint },
            { serviceName: "novacron-node", instanceId: "node-a" },
            { exportInterval: 60_000 },
          ),
        ),
      )
      const of = (name: string, id: string) =>
        receiver.spans.filter((s) => s.name === name && s.attributes["task.id"] === id)
      const parentOf = (s: { parentSpanId: string | undefined }) =>
        receiver.spans.find((p) => p.spanId === s.parentSpanId)
      yield* until("the spans of both tasks", () => of("orchestration.task", ids.bad).length === 1)

      const [task] = of("orchestration.task", ids.ok)
      expect(task!.attributes).toMatchObject({ "task.kind": "Noop", "task.outcome": "succeeded" })
      expect(task!.traceId).toBe(ids.submitter)
      const steps = of("orchestration.step", ids.ok)
      expect(
        steps.map((s) => [s.attributes["task.step"], s.attributes["task.attempt"], s.attributes["task.outcome"]]),
      ).toEqual([
        ["noop-1", 1, "ok"],
        ["noop-2", 1, "ok"],
      ])
      for (const s of steps) {
        expect(s.traceId).toBe(task!.traceId)
        // The workflow engine's activity span (named by the step) sits between them.
        expect(parentOf(s)).toMatchObject({ name: s.attributes["task.step"], parentSpanId: task!.spanId })
        expect(s.attributes["task.kind"]).toBe("Noop")
      }

      const [dead] = of("orchestration.task", ids.bad)
      expect(dead!.attributes).toMatchObject({ "task.outcome": "dead", "task.failed_step": "noop-1" })
      const attempts = of("orchestration.step", ids.bad)
      expect(attempts.map((s) => [s.attributes["task.attempt"], s.attributes["task.outcome"]])).toEqual([
        [1, "failed"],
        [2, "failed"],
      ])
      for (const s of attempts) expect(parentOf(s)?.parentSpanId).toBe(dead!.spanId)
      expect(receiver.rejected).toEqual([])
    }),
  )
})
