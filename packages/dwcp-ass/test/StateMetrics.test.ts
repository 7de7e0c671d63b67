import { describe, expect, it } from "@effect/vitest"
import { Database } from "@novacron/database"
import { Duration, Effect, Layer, Metric, Ref } from "effect"
import { LocalStore, StateMetrics, StateStore } from "../src/index.js"

const live = () => LocalStore.layer().pipe(Layer.provide(Database.layerSqlite({ path: ":memory:" })))

// Metrics are process-wide: every assertion is on a difference.
const count = (op: StateMetrics.Operation, result: StateMetrics.Result) =>
  Metric.value(StateMetrics.ops.pipe(Metric.tagged("op", op), Metric.tagged("result", result))).pipe(
    Effect.map((s) => s.count),
  )
const timed = (op: StateMetrics.Operation) =>
  Metric.value(Metric.tagged(StateMetrics.opSeconds, "op", op)).pipe(Effect.map((s) => s.count))
const leading = (election: string) =>
  Metric.value(Metric.tagged(StateMetrics.leader, "election", election)).pipe(Effect.map((s) => s.value))

describe("StateMetrics", () => {
  it.live("novacron_state_ops_total counts each op by result; novacron_state_op_seconds times each call", () =>
    Effect.gen(function* () {
      const s = yield* StateStore.StateStore
      const before = {
        putOk: yield* count("put", "ok"),
        getOk: yield* count("get", "ok"),
        casOk: yield* count("compare_and_set", "ok"),
        casFailed: yield* count("compare_and_set", "compare_failed"),
        puts: yield* timed("put"),
        cas: yield* timed("compare_and_set"),
      }
      const rev = yield* s.put("m/a", "1")
      yield* s.put("m/b", "1")
      yield* s.get("m/a")
      yield* s.compareAndSet("m/a", rev, "2")
      expect((yield* Effect.flip(s.compareAndSet("m/a", rev, "3")))._tag).toBe("CompareFailed")
      expect((yield* count("put", "ok")) - before.putOk).toBe(2)
      expect((yield* count("get", "ok")) - before.getOk).toBe(1)
      expect((yield* count("compare_and_set", "ok")) - before.casOk).toBe(1)
      expect((yield* count("compare_and_set", "compare_failed")) - before.casFailed).toBe(1)
      expect((yield* timed("put")) - before.puts).toBe(2)
      expect((yield* timed("compare_and_set")) - before.cas).toBe(2)
    }).pipe(Effect.scoped, Effect.provide(live())),
  )

  it.live("novacron_state_leader is 1 while leading, 0 after resigning; a deposed write is counted deposed", () =>
    Effect.gen(function* () {
      const s = yield* StateStore.StateStore
      expect(yield* leading("metrics-resign")).toBe(0)
      yield* Effect.scoped(
        Effect.gen(function* () {
          yield* s.campaign("metrics-resign", "me", { ttl: Duration.seconds(5) })
          expect(yield* leading("metrics-resign")).toBe(1)
        }),
      )
      expect(yield* leading("metrics-resign")).toBe(0)

      // A leader whose keepalives stop: the gauge drops when the lease lapses, before its scope closes.
      const deposedBefore = yield* count("put", "deposed")
      yield* Effect.scoped(
        Effect.gen(function* () {
          const send = yield* Ref.make(true)
          const lease = yield* s.lease(Duration.seconds(1), { keepAlive: Ref.get(send) })
          const me = yield* s.campaign("metrics-stall", "me", { lease })
          expect(yield* leading("metrics-stall")).toBe(1)
          yield* Ref.set(send, false)
          yield* me.deposed
          yield* Effect.sleep(Duration.millis(20))
          expect(yield* leading("metrics-stall")).toBe(0)
          expect((yield* Effect.flip(s.put("m/owned", "x", { fence: me })))._tag).toBe("Deposed")
        }),
      )
      expect(yield* leading("metrics-stall")).toBe(0)
      expect((yield* count("put", "deposed")) - deposedBefore).toBe(1)
    }).pipe(Effect.scoped, Effect.provide(live())),
  )
})
