import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Queue, Stream } from "effect"
import type * as Migration from "../src/Migration.js"
import { MigrationCancelled, MigrationPeerUnreachable } from "../src/MigrationError.js"
import * as Migrations from "../src/Migrations.js"

const progress = (phase: Migration.Phase, transferred: number): Migration.Progress => ({
  migration: "m-1",
  phase,
  transferred,
  remaining: 100 - transferred,
  total: 100,
  dirtyRate: 0,
  expectedDowntimeMs: null,
  passes: 1,
  throttle: 0,
  wireBytes: transferred,
  elapsedMs: transferred,
})

const result: Migration.Result = {
  migration: "m-1",
  vm: "web",
  to: "node-b",
  term: 7,
  mode: "precopy",
  totalMs: 900,
  qemuTotalMs: 850,
  downtimeMs: 12,
  transferred: 100,
  wireBytes: 101,
}

/** A migration whose progress and outcome the test releases. */
const fake = Effect.gen(function* () {
  const reports = yield* Queue.unbounded<Migration.Progress>()
  const outcome = yield* Deferred.make<Migration.Result, MigrationCancelled>()
  const service: Migration.Service = {
    address: { host: "127.0.0.1", port: 1 },
    migrate: (vm, to) =>
      to === "nowhere"
        ? Effect.fail(new MigrationPeerUnreachable({ vm, peer: to, detail: "no endpoint" }))
        : Effect.succeed({
            id: "m-1",
            plan: {} as never,
            progress: Stream.fromQueue(reports),
            // As the real one: the progress stream ends with the migration.
            result: Effect.ensuring(Deferred.await(outcome), Queue.shutdown(reports)),
            cancel: Deferred.fail(outcome, new MigrationCancelled({ vm })),
          }),
  }
  return { service, reports, outcome }
})

const settle = Effect.sleep("20 millis")

describe("Migrations", () => {
  it.scopedLive("a run is listed while it goes, follows its progress, and keeps its outcome", () =>
    Effect.gen(function* () {
      const { service, reports, outcome } = yield* fake
      const runs = yield* Migrations.make("node-a", service)
      const changes = yield* runs.changes
      const run = yield* runs.start("web", "node-b")
      expect(run).toMatchObject({ id: "m-1", vm: "web", source: "node-a", target: "node-b", state: "running" })
      yield* Queue.offer(reports, progress("precopy", 40))
      yield* settle
      expect((yield* runs.get("m-1")).pipe((o) => o._tag === "Some" && o.value)).toMatchObject({
        phase: "precopy",
        progress: { transferred: 40 },
      })
      // The last report comes just before the outcome: the run keeps it.
      yield* Queue.offer(reports, progress("switchover", 100))
      yield* Deferred.succeed(outcome, result)
      yield* settle
      const [done] = yield* runs.list
      expect(done).toMatchObject({
        state: "completed",
        phase: "completed",
        progress: { transferred: 100 },
        result: { term: 7, downtimeMs: 12 },
      })
      expect(done!.finishedAt).toBeGreaterThanOrEqual(done!.startedAt)
      // Every change was published, ending with the completed run.
      const seen = [...(yield* Queue.takeAll(changes))]
      expect(seen.map((r) => r.state)).toEqual(["running", "running", "running", "completed"])
    }),
  )

  it.scopedLive("a cancel ends the run cancelled with why; a migration that cannot start fails start itself", () =>
    Effect.gen(function* () {
      const { service } = yield* fake
      const runs = yield* Migrations.make("node-a", service)
      yield* runs.start("web", "node-b")
      expect(yield* runs.cancel("m-1")).toBe(true)
      yield* settle
      expect(yield* runs.list).toMatchObject([{ state: "cancelled", error: expect.stringMatching(/cancelled/) }])
      expect(yield* runs.cancel("m-1")).toBe(false)
      const refused = yield* Effect.flip(runs.start("web", "nowhere"))
      expect(refused._tag).toBe("MigrationPeerUnreachable")
      expect(yield* runs.list).toHaveLength(1)
    }),
  )
})
